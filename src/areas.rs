//! Where an incident is, from every way an operator or another system can say it, and the
//! safety rails checked before anything is written.
//!
//! Inputs: `--circle`, `--polygon`, `--corridor` (see `commands::area_from_flags`),
//! `--geojson`, `--wkt`, `--zone`, `--address` (geocoded, embedded gazetteer or Nominatim)
//! and `--cap` (see `crate::cap`). Parsing lives in `outagecast-ingest`; this module reads the
//! files, asks the store and the geocoder, and names the flag in every error.
//!
//! Rails, in order: an area that holds nobody but would with longitude and latitude swapped
//! is refused as swapped; an empty area is refused unless `--allow-empty`; an area holding
//! more customers than the confirmation threshold is refused unless `--confirm N` repeats the
//! exact count.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use outagecast_core::area::{Area, Circle};
use outagecast_ingest::geocode::{Gazetteer, Geocoder, parse_gazetteer_csv, pick};
use outagecast_ingest::geojson::Sizes;
use outagecast_ingest::zone::ZoneName;
use outagecast_nominatim::{Config, Nominatim};
use outagecast_store::Provenance;

use crate::cli::DeclareArgs;
use outagecast_engine::Engine;

use outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD;
use outagecast_engine::{Rails, Spelling};
/// Radius around a geocoded `--address` when `--radius` is not given.
pub const DEFAULT_ADDRESS_RADIUS_M: f64 = 300.0;

/// The area inputs and rails added to `incident declare` and `incident preview`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// A GeoJSON file: Geometry, Feature or FeatureCollection; Points need a radius_m property
    /// (or --radius), LineStrings buffer_m (or --buffer); several shapes are their union.
    #[arg(long, value_name = "FILE.geojson")]
    pub geojson: Option<PathBuf>,
    /// A WKT geometry, longitude first, e.g. 'POLYGON((24.93 60.16, 24.95 60.16, 24.95 60.17, 24.93 60.16))';
    /// POINT needs --radius, LINESTRING --buffer.
    #[arg(long, value_name = "WKT", allow_hyphen_values = true)]
    pub wkt: Option<String>,
    /// A CAP 1.2 alert (XML): msgType Alert declares, Update and Cancel act on the incident
    /// that the message in its <references> declared.
    #[arg(long, value_name = "FILE.xml")]
    pub cap: Option<PathBuf>,
    /// An imported zone, by name (see `outagecast zones list`).
    #[arg(long, value_name = "NAME")]
    pub zone: Option<String>,
    /// A street address ("Kaivokatu 1, Helsinki"), geocoded to a circle of --radius metres.
    #[arg(long, value_name = "TEXT")]
    pub address: Option<String>,
    /// Metres around --address (default 300), or around a --wkt/--geojson point.
    #[arg(long, value_name = "METRES", allow_hyphen_values = true)]
    pub radius: Option<f64>,
    /// Extra addresses for the embedded geocoder: CSV with street,housenumber,postcode,city,lon,lat.
    #[arg(long, value_name = "FILE.csv", env = "OUTAGECAST_GAZETTEER")]
    pub gazetteer: Option<PathBuf>,
    /// Which geocoder resolves --address.
    #[arg(
        long,
        value_enum,
        env = "OUTAGECAST_GEOCODER",
        default_value = "embedded"
    )]
    pub geocoder: GeocoderKind,
    /// Base URL of a Nominatim-compatible service (with --geocoder nominatim).
    #[arg(
        long,
        env = "OUTAGECAST_NOMINATIM_URL",
        default_value = "https://nominatim.openstreetmap.org"
    )]
    pub nominatim_url: String,
    /// User agent sent to Nominatim; its usage policy asks for one that identifies you.
    #[arg(
        long,
        env = "OUTAGECAST_NOMINATIM_USER_AGENT",
        default_value = concat!("outagecast/", env!("CARGO_PKG_VERSION"))
    )]
    pub nominatim_user_agent: String,
    /// Declare an area holding more customers than the threshold: repeat the exact count.
    #[arg(long, value_name = "N")]
    pub confirm: Option<u64>,
    /// Customers an area may hold before --confirm N is needed.
    #[arg(long, value_name = "N", env = "OUTAGECAST_CONFIRM_THRESHOLD", default_value_t = DEFAULT_CONFIRM_THRESHOLD)]
    pub confirm_threshold: u64,
}

/// How `--address` is geocoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeocoderKind {
    /// The customers' addresses in the store (and --gazetteer): offline.
    Embedded,
    /// A Nominatim-compatible /search service (--nominatim-url).
    Nominatim,
}

/// An area and how it was given.
#[derive(Debug, Clone)]
pub struct Built {
    /// The area.
    pub area: Area,
    /// How it was given, for operators ("zone DMA 7"); `None` for plain shapes.
    pub source: Option<String>,
}

impl Built {
    /// What to record with the incident.
    pub fn provenance(&self) -> Option<Provenance> {
        self.source.as_ref().map(|s| Provenance {
            area_source: Some(s.clone()),
            cap: None,
        })
    }
}

pub(crate) fn read(path: &Path, flag: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
}

/// The area given by the declare/preview flags (all but `--cap`).
pub async fn area(engine: &Engine, args: &DeclareArgs) -> Result<Built> {
    let i = &args.ingest;
    if let Some(area) = crate::commands::area_from_flags(
        args.circle.as_deref(),
        args.polygon.as_deref(),
        args.corridor.as_deref(),
        args.buffer,
    )? {
        return Ok(Built { area, source: None });
    }
    let sizes = Sizes {
        radius_m: i.radius,
        buffer_m: args.buffer,
    };
    if let Some(path) = &i.geojson {
        let text = read(path, "--geojson")?;
        return Ok(Built {
            area: outagecast_ingest::geojson::area(&text, "--geojson", sizes)?,
            source: Some(format!("GeoJSON {}", path.display())),
        });
    }
    if let Some(text) = &i.wkt {
        return Ok(Built {
            area: outagecast_ingest::wkt::area(text, "--wkt", sizes)?,
            source: None,
        });
    }
    if let Some(name) = &i.zone {
        return zone_area(engine, name).await;
    }
    if let Some(query) = &i.address {
        return address_area(engine, i, query).await;
    }
    bail!(
        "area: give one of --circle, --polygon, --corridor, --geojson, --wkt, --cap, --zone or --address"
    )
}

/// The area of an imported zone; an unknown name lists some that exist.
pub async fn zone_area(engine: &Engine, name: &str) -> Result<Built> {
    let name = ZoneName::parse(name, "--zone")?;
    if let Some(z) = engine.store().zone(&name.key()).await? {
        return Ok(Built {
            area: z.area,
            source: Some(format!("zone {}", z.name)),
        });
    }
    let known: Vec<String> = engine
        .store()
        .zones()
        .await?
        .into_iter()
        .map(|z| z.name)
        .collect();
    if known.is_empty() {
        bail!(
            "--zone: no zone is named {:?}, and no zones are imported; import them with `outagecast zones import FILE.geojson --name-property PROP`",
            name.as_str()
        );
    }
    let shown = known
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = if known.len() > 10 {
        format!(
            " and {} more (see `outagecast zones list`)",
            known.len() - 10
        )
    } else {
        String::new()
    };
    bail!(
        "--zone: no zone is named {:?}; known zones: {shown}{more}",
        name.as_str()
    )
}

async fn address_area(engine: &Engine, i: &IngestArgs, query: &str) -> Result<Built> {
    let radius = i.radius.unwrap_or(DEFAULT_ADDRESS_RADIUS_M);
    let found = match i.geocoder {
        GeocoderKind::Embedded => {
            let mut g = Gazetteer::new(engine.store().address_points().await?);
            if let Some(path) = &i.gazetteer {
                let rows = parse_gazetteer_csv(&read(path, "--gazetteer")?, "--gazetteer")?;
                g = g.with_rows(rows);
            }
            pick("--address", query, g.search(query))?
        }
        GeocoderKind::Nominatim => {
            let client = Nominatim::new(Config::new(&i.nominatim_url, &i.nominatim_user_agent)?)?;
            let candidates = client.candidates(query).await?;
            pick("--address", query, candidates)?
        }
    };
    let circle = Circle::new(found.point, radius).map_err(|e| e.renamed("radius", "--radius"))?;
    Ok(Built {
        area: Area::Circle(circle),
        source: Some(format!(
            "address {query:?}: {} ({:.0}% match)",
            found.label,
            found.confidence * 100.0
        )),
    })
}

/// Why declaring `area`, which holds `count` customers, must be refused, if it must, in the
/// command line's words. `order` says how the input writes coordinates, for the
/// swapped-coordinates hint. The rules are the engine's, shared with the API.
pub async fn refusal(
    engine: &Engine,
    i: &IngestArgs,
    allow_empty: bool,
    area: &Area,
    count: u64,
    order: &'static str,
) -> Result<Option<String>> {
    let rails = Rails {
        allow_empty,
        confirm: i.confirm,
        confirm_threshold: i.confirm_threshold,
    };
    Ok(engine
        .refusal(area, count, &rails)
        .await?
        .map(|r| r.explain(&Spelling::CLI.with_order(order))))
}

pub use outagecast_engine::rails::{LAT_LON, LON_LAT};

/// Prints what declaring would do, writing nothing: the affected count, a sample of their
/// addresses, the notices planned per channel, and why declaring would be refused, if it
/// would.
pub fn print_preview(
    draft: &outagecast_core::incident::IncidentDraft,
    source: Option<&str>,
    selection: &outagecast_engine::Selection,
    refused: Option<String>,
    json: bool,
) -> Result<()> {
    use outagecast_core::contact::Channel;

    use crate::commands::{emit, emit_json, merge, selection_json, selection_lines};
    const SAMPLE: usize = 10;
    let mut addresses: Vec<&str> = selection
        .customers
        .iter()
        .map(|(_, c)| c.address())
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    let sample: Vec<&str> = addresses.iter().take(SAMPLE).copied().collect();
    if json {
        let mut v = serde_json::json!({
            "area": draft.area(),
            "area_source": source,
            "notices": {
                "sms": selection.plan.count(Channel::Sms),
                "email": selection.plan.count(Channel::Email),
            },
            "sample_addresses": sample,
            "distinct_addresses": addresses.len(),
            "refused": refused,
        });
        merge(&mut v, selection_json(selection));
        return emit_json(&v);
    }
    emit(&format!(
        "preview (nothing written): {}{}\n{}\n  addresses: {}{}{}",
        draft.area().describe(),
        source.map(|s| format!(" ({s})")).unwrap_or_default(),
        selection_lines(selection),
        if sample.is_empty() {
            "none".to_string()
        } else {
            sample.join("; ")
        },
        if addresses.len() > sample.len() {
            format!(" and {} more", addresses.len() - sample.len())
        } else {
            String::new()
        },
        refused
            .map(|r| format!("\n  note: declaring would be refused: {r}"))
            .unwrap_or_default()
    ))
}
