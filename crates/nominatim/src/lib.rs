//! A [`Geocoder`] that asks a Nominatim-compatible service (`GET {base}/search?q=…&format=jsonv2`),
//! for installations whose customers' addresses alone do not cover the area (the embedded
//! gazetteer in `outagecast-ingest` is the default and needs no network).
//!
//! The public Nominatim's usage policy asks for an identifying user agent and at most one
//! request per second; both are enforced here ([`Config`]), whatever server is configured.

use std::time::{Duration, Instant};

use outagecast_core::area::LonLat;
use outagecast_ingest::geocode::{Candidate, Geocoder};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Everything that can go wrong asking the service.
#[derive(Debug, thiserror::Error)]
pub enum NominatimError {
    /// A setting is unusable.
    #[error("{field}: {problem}")]
    Config {
        /// The setting (flag).
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The request did not complete (connection refused, timeout, TLS).
    #[error("geocoder request to {url} failed: {source}")]
    Request {
        /// Where it went.
        url: String,
        /// Why it failed.
        source: reqwest::Error,
    },
    /// The service answered with an error status.
    #[error("geocoder at {url} answered {status}{}", hint(*status))]
    Status {
        /// Where it went.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The answer was not the JSON array Nominatim sends.
    #[error("geocoder at {url} sent an answer that is not Nominatim's /search JSON: {problem}")]
    Decode {
        /// Where it went.
        url: String,
        /// What could not be read.
        problem: String,
    },
}

fn hint(status: u16) -> &'static str {
    match status {
        429 => " (too many requests: wait, or raise the interval between requests)",
        403 => " (refused: set an identifying --nominatim-user-agent with a contact address)",
        _ => "",
    }
}

/// How to reach the service.
#[derive(Debug, Clone)]
pub struct Config {
    base_url: String,
    user_agent: String,
    /// How long one request may take.
    pub timeout: Duration,
    /// The least time between two requests (1 s by default, the public service's limit).
    pub min_interval: Duration,
    /// How many results to ask for.
    pub limit: u8,
}

impl Config {
    /// Checks the base URL (http or https) and the user agent (not empty).
    pub fn new(base_url: &str, user_agent: &str) -> Result<Self, NominatimError> {
        let base = base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(NominatimError::Config {
                field: "--nominatim-url",
                problem: format!(
                    "{base_url:?} is not an http(s) URL; give the service's base, e.g. https://nominatim.openstreetmap.org"
                ),
            });
        }
        if user_agent.trim().is_empty() {
            return Err(NominatimError::Config {
                field: "--nominatim-user-agent",
                problem: "is empty; Nominatim requires an identifying user agent, e.g. \"outagecast (ops@utility.example)\"".into(),
            });
        }
        Ok(Config {
            base_url: base.to_string(),
            user_agent: user_agent.trim().to_string(),
            timeout: Duration::from_secs(10),
            min_interval: Duration::from_secs(1),
            limit: 5,
        })
    }
}

/// The client. Requests are serialised and spaced by `min_interval`.
#[derive(Debug)]
pub struct Nominatim {
    client: reqwest::Client,
    config: Config,
    last: Mutex<Option<Instant>>,
}

/// One result of `/search?format=jsonv2`; only what is used.
#[derive(Debug, Deserialize)]
struct Place {
    lat: String,
    lon: String,
    display_name: String,
    #[serde(default)]
    place_rank: Option<u32>,
}

impl Nominatim {
    /// A client for `config`.
    pub fn new(config: Config) -> Result<Self, NominatimError> {
        // reqwest is built without a default TLS crypto provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .build()
            .map_err(|e| NominatimError::Request {
                url: config.base_url.clone(),
                source: e,
            })?;
        Ok(Nominatim {
            client,
            config,
            last: Mutex::new(None),
        })
    }

    async fn search(&self, query: &str) -> Result<Vec<Candidate>, NominatimError> {
        let url = format!("{}/search", self.config.base_url);
        {
            // Held across the wait, so concurrent callers queue and stay spaced out.
            let mut last = self.last.lock().await;
            if let Some(at) = *last {
                let next = at + self.config.min_interval;
                let now = Instant::now();
                if next > now {
                    tokio::time::sleep(next - now).await;
                }
            }
            *last = Some(Instant::now());
        }
        let limit = self.config.limit.to_string();
        let response = self
            .client
            .get(&url)
            .query(&[
                ("q", query),
                ("format", "jsonv2"),
                ("addressdetails", "1"),
                ("limit", limit.as_str()),
            ])
            .send()
            .await
            .map_err(|e| NominatimError::Request {
                url: url.clone(),
                source: e,
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(NominatimError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| NominatimError::Request {
                url: url.clone(),
                source: e,
            })?;
        let places: Vec<Place> =
            serde_json::from_slice(&body).map_err(|e| NominatimError::Decode {
                url: url.clone(),
                problem: e.to_string(),
            })?;
        places
            .into_iter()
            .map(|p| {
                let bad = |what: &str| NominatimError::Decode {
                    url: url.clone(),
                    problem: format!("{what} of {:?}", p.display_name),
                };
                let lat: f64 = p.lat.parse().map_err(|_| bad("lat"))?;
                let lon: f64 = p.lon.parse().map_err(|_| bad("lon"))?;
                let point = LonLat::parse(lon, lat).map_err(|_| bad("position"))?;
                Ok(Candidate {
                    label: p.display_name,
                    point,
                    confidence: confidence(p.place_rank),
                })
            })
            .collect()
    }
}

/// Nominatim ranks results but gives no match confidence. Its `place_rank` says what was
/// found: 30 a building or house number, 26–27 a street, lower an area. Only a building is
/// precise enough to centre an outage circle on without a second look.
fn confidence(place_rank: Option<u32>) -> f64 {
    match place_rank {
        Some(r) if r >= 28 => 0.9,
        Some(r) if r >= 26 => 0.6,
        _ => 0.4,
    }
}

impl Geocoder for Nominatim {
    type Error = NominatimError;

    fn candidates(
        &self,
        query: &str,
    ) -> impl std::future::Future<Output = Result<Vec<Candidate>, NominatimError>> + Send {
        self.search(query)
    }
}
