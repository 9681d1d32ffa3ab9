//! Where an incident is, from every way a front end can say it: a shape already built
//! (circle, polygon, corridor), GeoJSON, WKT, an imported zone or a street address. Parsing
//! is `outagecast-ingest`'s; this module asks the store (zones, the customers' addresses) and
//! the geocoder, and names the front end's input in every error (see [`Spelling`]).

use outagecast_core::area::{Area, Circle};
use outagecast_ingest::geocode::{Gazetteer, GazetteerRow, pick};
use outagecast_ingest::geojson::{self, Sizes};
use outagecast_ingest::limits::Limits;
use outagecast_ingest::zone::ZoneName;
use outagecast_store::Provenance;

use crate::{Engine, EngineError, Result, Spelling};

/// Radius around a geocoded address when none is given.
pub const DEFAULT_ADDRESS_RADIUS_M: f64 = 300.0;

/// An area as a front end received it.
#[derive(Debug, Clone)]
pub enum AreaSpec {
    /// A shape the front end built itself (`--circle`, `--polygon`, `--corridor`).
    Shape(Area),
    /// GeoJSON text: a Geometry, Feature or FeatureCollection. `source` says where it came
    /// from when that is worth recording (a file name).
    GeoJson {
        /// The text.
        text: String,
        /// Radius for points and buffer for lines that carry none.
        sizes: Sizes,
        /// Where it came from, recorded with the incident.
        source: Option<String>,
    },
    /// GeoJSON holding Polygon and MultiPolygon geometries only (`--polygon FILE`).
    PolygonGeoJson {
        /// The text.
        text: String,
    },
    /// GeoJSON holding exactly one line, buffered (`--corridor FILE --buffer M`).
    CorridorGeoJson {
        /// The text.
        text: String,
        /// Metres either side of the line.
        buffer_m: f64,
    },
    /// A WKT geometry, longitude first.
    Wkt {
        /// The text.
        text: String,
        /// Radius for a POINT, buffer for a LINESTRING.
        sizes: Sizes,
    },
    /// An imported zone, by name.
    Zone(String),
    /// A street address, geocoded to a circle of `radius_m` (default
    /// [`DEFAULT_ADDRESS_RADIUS_M`]).
    Address {
        /// The address as typed.
        query: String,
        /// Metres around it.
        radius_m: Option<f64>,
        /// Who geocodes it.
        geocoding: Geocoding,
    },
    /// A burst pipe (or faulted section) in the imported network, traced to the valves to
    /// close: the selection is the trace's customers, the area the outline of their pipes.
    Topology(crate::network::TopologySpec),
}

/// Who turns an address into a point.
#[derive(Debug, Clone)]
pub enum Geocoding {
    /// The customers' addresses in the store, plus `extra` rows (offline).
    Embedded {
        /// Addresses beyond the customers' own (`--gazetteer FILE`).
        extra: Vec<GazetteerRow>,
    },
    /// A Nominatim-compatible `/search` service.
    Nominatim {
        /// Its base URL.
        url: String,
        /// The user agent its usage policy asks for.
        user_agent: String,
    },
}

impl Default for Geocoding {
    fn default() -> Self {
        Geocoding::Embedded { extra: Vec::new() }
    }
}

/// An area and how it was given.
#[derive(Debug, Clone)]
pub struct ResolvedArea {
    /// The area.
    pub area: Area,
    /// How it was given, for operators ("zone DMA 7"); `None` for plain shapes.
    pub source: Option<String>,
}

impl ResolvedArea {
    /// What to record with the incident.
    pub fn provenance(&self) -> Option<Provenance> {
        self.source.as_ref().map(|s| Provenance {
            area_source: Some(s.clone()),
            cap: None,
        })
    }
}

impl Engine {
    /// The area `spec` describes; every error names the input in `spelling`'s words.
    /// Areas over the vertex limit and addresses over the length limit (`Settings::limits`)
    /// are refused before any selection or geocoding.
    pub async fn resolve_area(&self, spec: AreaSpec, spelling: &Spelling) -> Result<ResolvedArea> {
        let limits = self.settings.limits;
        let field = match &spec {
            AreaSpec::GeoJson { .. } => spelling.geojson,
            AreaSpec::Wkt { .. } => spelling.wkt,
            AreaSpec::PolygonGeoJson { .. } => spelling.polygon,
            AreaSpec::CorridorGeoJson { .. } => spelling.corridor,
            AreaSpec::Address { query, .. } => {
                limits.address(query, spelling.address)?;
                spelling.address
            }
            AreaSpec::Shape(_) | AreaSpec::Zone(_) | AreaSpec::Topology(_) => "area",
        };
        let resolved = self.resolve_unlimited(spec, spelling, &limits).await?;
        limits.area(&resolved.area, field)?;
        Ok(resolved)
    }

    /// The area itself; parsers refuse documents over `limits` before building their areas.
    async fn resolve_unlimited(
        &self,
        spec: AreaSpec,
        spelling: &Spelling,
        limits: &Limits,
    ) -> Result<ResolvedArea> {
        Ok(match spec {
            AreaSpec::Shape(area) => ResolvedArea { area, source: None },
            AreaSpec::GeoJson {
                text,
                sizes,
                source,
            } => ResolvedArea {
                area: geojson::area(&text, spelling.geojson, sizes, limits)?,
                source,
            },
            AreaSpec::PolygonGeoJson { text } => ResolvedArea {
                area: Area::Polygon(geojson::polygon_area(&text, spelling.polygon, limits)?),
                source: None,
            },
            AreaSpec::CorridorGeoJson { text, buffer_m } => ResolvedArea {
                area: Area::Corridor(geojson::corridor_area(
                    &text,
                    spelling.corridor,
                    buffer_m,
                    limits,
                )?),
                source: None,
            },
            AreaSpec::Wkt { text, sizes } => ResolvedArea {
                area: outagecast_ingest::wkt::area(&text, spelling.wkt, sizes, limits)?,
                source: None,
            },
            AreaSpec::Zone(name) => self.zone_area(&name, spelling).await?,
            AreaSpec::Topology(spec) => {
                let traced = self.trace_selection(&spec).await?;
                ResolvedArea {
                    area: traced.area,
                    source: Some(traced.source),
                }
            }
            AreaSpec::Address {
                query,
                radius_m,
                geocoding,
            } => {
                self.address_area(&query, radius_m, geocoding, spelling)
                    .await?
            }
        })
    }

    /// The area of an imported zone; an unknown name lists some that exist.
    async fn zone_area(&self, name: &str, s: &Spelling) -> Result<ResolvedArea> {
        let name = ZoneName::parse(name, s.zone)?;
        if let Some(z) = self.store.zone(&name.key()).await? {
            return Ok(ResolvedArea {
                area: z.area,
                source: Some(format!("zone {}", z.name)),
            });
        }
        let known: Vec<String> = self
            .store
            .zones()
            .await?
            .into_iter()
            .map(|z| z.name)
            .collect();
        let message = if known.is_empty() {
            format!(
                "{}: no zone is named {:?}, and no zones are imported; import them with {}",
                s.zone,
                name.as_str(),
                s.zones_import
            )
        } else {
            const SHOWN: usize = 10;
            let shown = known
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if known.len() > SHOWN {
                format!(" and {} more", known.len() - SHOWN)
            } else {
                String::new()
            };
            format!(
                "{}: no zone is named {:?}; known zones: {shown}{more} (see {})",
                s.zone,
                name.as_str(),
                s.zones_list
            )
        };
        Err(EngineError::Invalid {
            field: s.zone.to_string(),
            message,
        })
    }

    async fn address_area(
        &self,
        query: &str,
        radius_m: Option<f64>,
        geocoding: Geocoding,
        s: &Spelling,
    ) -> Result<ResolvedArea> {
        let radius = radius_m.unwrap_or(DEFAULT_ADDRESS_RADIUS_M);
        let candidates = match geocoding {
            Geocoding::Embedded { extra } => {
                let gazetteer = Gazetteer::new(self.store.address_points().await?);
                let gazetteer = if extra.is_empty() {
                    gazetteer
                } else {
                    gazetteer.with_rows(extra)
                };
                gazetteer.search(query)
            }
            Geocoding::Nominatim { url, user_agent } => {
                use outagecast_ingest::geocode::Geocoder;
                use outagecast_nominatim::{Config, Nominatim};
                let client = Nominatim::new(Config::new(&url, &user_agent)?)?;
                client.candidates(query).await?
            }
        };
        let found = pick(s.address, query, candidates)?;
        let circle = Circle::new(found.point, radius).map_err(|e| e.renamed("radius", s.radius))?;
        Ok(ResolvedArea {
            area: Area::Circle(circle),
            source: Some(format!(
                "address {query:?}: {} ({:.0}% match)",
                found.label,
                found.confidence * 100.0
            )),
        })
    }
}
