//! The area flags of `incident declare|preview` and the rails flags, turned into the engine's
//! typed request ([`AreaSpec`], [`Rails`]); resolving the area (zones, geocoding) and the
//! rails themselves are the engine's, shared with the API.
//!
//! Inputs: `--circle`, `--polygon`, `--corridor` (see `commands::area_from_flags`),
//! `--geojson`, `--wkt`, `--zone`, `--address` (geocoded, embedded gazetteer or Nominatim)
//! and `--cap` (see `crate::cap`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD;
use outagecast_engine::views::TraceView;
use outagecast_engine::{AreaSpec, Geocoding, Preview, Rails, TopologySpec};
use outagecast_ingest::geocode::parse_gazetteer_csv;
use outagecast_ingest::geojson::Sizes;

/// The area flags `incident declare`, `preview` and `update` share (all but `--cap`, which
/// only a declaration takes). At most one area is given; declare and preview require one.
#[derive(Debug, Args)]
#[group(skip)]
pub struct AreaArgs {
    /// A circle: LON,LAT,METRES (geodesic radius).
    #[arg(long, value_name = "LON,LAT,METRES", allow_hyphen_values = true)]
    pub circle: Option<String>,
    /// A GeoJSON file with a Polygon or MultiPolygon (a Feature or FeatureCollection is fine).
    #[arg(long, value_name = "FILE.geojson")]
    pub polygon: Option<PathBuf>,
    /// A GeoJSON file with one LineString (a main or a street); needs --buffer.
    #[arg(long, value_name = "FILE.geojson", requires = "buffer")]
    pub corridor: Option<PathBuf>,
    /// Metres each side of the --corridor line (or of --geojson/--wkt lines).
    #[arg(long, value_name = "METRES")]
    pub buffer: Option<f64>,
    /// A GeoJSON file: Geometry, Feature or FeatureCollection; Points need a radius_m property
    /// (or --radius), LineStrings buffer_m (or --buffer); several shapes are their union.
    #[arg(long, value_name = "FILE.geojson")]
    pub geojson: Option<PathBuf>,
    /// A WKT geometry, longitude first, e.g. 'POLYGON((24.93 60.16, 24.95 60.16, 24.95 60.17, 24.93 60.16))';
    /// POINT needs --radius, LINESTRING --buffer.
    #[arg(long, value_name = "WKT", allow_hyphen_values = true)]
    pub wkt: Option<String>,
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
    /// A burst pipe of the imported network (`network import`): the customers fed from its
    /// isolated segment and those left with no path to a source (power: --faulted-section).
    #[arg(long, value_name = "PIPE", visible_alias = "faulted-section")]
    pub burst_pipe: Option<String>,
    /// An isolation valve that will not turn, so the trace grows to the next ones (repeatable;
    /// power: --broken-switch).
    #[arg(
        long = "broken-valve",
        value_name = "VALVE",
        requires = "burst_pipe",
        visible_alias = "broken-switch"
    )]
    pub broken_valve: Vec<String>,
}

/// The ids of the flags that each give a whole area: one at most (the `area` group of the
/// commands that take [`AreaArgs`]).
pub const AREA_FLAGS: [&str; 8] = [
    "circle",
    "polygon",
    "corridor",
    "geojson",
    "wkt",
    "zone",
    "address",
    "burst_pipe",
];

/// The safety rails of a declaration or of an update that grows the area.
#[derive(Debug, Args)]
#[group(skip)]
pub struct RailArgs {
    /// An area holding more customers than the threshold (for an update: adding more): repeat
    /// the exact count.
    #[arg(long, value_name = "N")]
    pub confirm: Option<u64>,
    /// Customers an area may hold (an update may add) before --confirm N is needed.
    #[arg(long, value_name = "N", env = "OUTAGECAST_CONFIRM_THRESHOLD", default_value_t = DEFAULT_CONFIRM_THRESHOLD)]
    pub confirm_threshold: u64,
    /// Accept an area that holds no customers.
    #[arg(long)]
    pub allow_empty: bool,
}

impl RailArgs {
    /// The engine's rails.
    pub fn rails(&self) -> Rails {
        Rails {
            allow_empty: self.allow_empty,
            confirm: self.confirm,
            confirm_threshold: self.confirm_threshold,
        }
    }
}

/// How `--address` is geocoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeocoderKind {
    /// The customers' addresses in the store (and --gazetteer): offline.
    Embedded,
    /// A Nominatim-compatible /search service (--nominatim-url).
    Nominatim,
}

pub(crate) fn read(path: &Path, flag: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
}

/// The area the flags give (all but `--cap`), as the engine's request; `None` when no area
/// flag is given (an update that changes only the details).
pub fn spec(a: &AreaArgs) -> Result<Option<AreaSpec>> {
    if let Some(area) = crate::commands::area_from_flags(
        a.circle.as_deref(),
        a.polygon.as_deref(),
        a.corridor.as_deref(),
        a.buffer,
    )? {
        return Ok(Some(area));
    }
    let sizes = Sizes {
        radius_m: a.radius,
        buffer_m: a.buffer,
    };
    if let Some(path) = &a.geojson {
        return Ok(Some(AreaSpec::GeoJson {
            text: read(path, "--geojson")?,
            sizes,
            source: Some(format!("GeoJSON {}", path.display())),
        }));
    }
    if let Some(text) = &a.wkt {
        return Ok(Some(AreaSpec::Wkt {
            text: text.clone(),
            sizes,
        }));
    }
    if let Some(name) = &a.zone {
        return Ok(Some(AreaSpec::Zone(name.clone())));
    }
    if let Some(query) = &a.address {
        let geocoding = match a.geocoder {
            GeocoderKind::Embedded => Geocoding::Embedded {
                extra: match &a.gazetteer {
                    Some(path) => parse_gazetteer_csv(&read(path, "--gazetteer")?, "--gazetteer")?,
                    None => Vec::new(),
                },
            },
            GeocoderKind::Nominatim => Geocoding::Nominatim {
                url: a.nominatim_url.clone(),
                user_agent: a.nominatim_user_agent.clone(),
            },
        };
        return Ok(Some(AreaSpec::Address {
            query: query.clone(),
            radius_m: a.radius,
            geocoding,
        }));
    }
    Ok(a.burst_pipe.as_ref().map(|burst| {
        AreaSpec::Topology(TopologySpec {
            burst: burst.clone(),
            broken: a.broken_valve.clone(),
        })
    }))
}

/// The area a declaration or preview needs.
pub fn required_spec(a: &AreaArgs) -> Result<AreaSpec> {
    spec(a)?.context(
        "area: give one of --circle, --polygon, --corridor, --geojson, --wkt, --cap, --zone, --address or --burst-pipe",
    )
}

/// Prints what declaring would do, writing nothing: the affected count, a sample of their
/// addresses, the notices planned per channel, the SMS text per language with its encoding
/// and segments (none when the kind and the cause were not given), and why declaring would
/// be refused, if it would.
pub fn print_preview(preview: &Preview, json: bool) -> Result<()> {
    use crate::commands::{emit, emit_json, selection_lines};
    let view = &preview.view;
    let refused = view.refused.as_ref().map(|r| r.message.clone());
    if json {
        let mut v = serde_json::to_value(view)?;
        // The command line has always printed the refusal as its one line of text.
        v["refused"] = serde_json::json!(refused);
        return emit_json(&v);
    }
    let texts = if !view.sms_texts.is_empty() || view.notices.sms == 0 {
        view.sms_texts
            .iter()
            .map(|t| {
                format!(
                    "\n  sms ({}, {} recipients, {}, {} segment{}): {}",
                    t.language,
                    t.recipients,
                    t.encoding,
                    t.segments,
                    if t.segments == 1 { "" } else { "s" },
                    t.text
                )
            })
            .collect::<String>()
    } else {
        "\n  texts: give --kind and --cause to see the SMS as it will go out".to_string()
    };
    emit(&format!(
        "preview (nothing written): {}{}\n{}\n  addresses: {}{}{}{}",
        view.area.describe(),
        view.area_source
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        selection_lines(&preview.selection),
        if view.sample_addresses.is_empty() {
            "none".to_string()
        } else {
            view.sample_addresses.join("; ")
        },
        if view.distinct_addresses > view.sample_addresses.len() {
            format!(
                " and {} more",
                view.distinct_addresses - view.sample_addresses.len()
            )
        } else {
            String::new()
        },
        texts,
        refused
            .map(|r| format!("\n  note: declaring would be refused: {r}"))
            .unwrap_or_default()
    ))?;
    topology_lines(view.topology.as_ref())
}

/// The trace of a declaration or preview by topology: what the crew closes, what goes dry.
pub fn topology_lines(trace: Option<&TraceView>) -> Result<()> {
    let Some(t) = trace else { return Ok(()) };
    let valves: Vec<String> = t
        .valves_to_close
        .iter()
        .map(|v| format!("{} ({:.6},{:.6})", v.id, v.lon, v.lat))
        .collect();
    crate::commands::emit(&format!(
        "  close: {}\n  segment pipes: {}\n  dry pipes: {}",
        if valves.is_empty() {
            "nothing (no working valve isolates it)".to_string()
        } else {
            valves.join(", ")
        },
        t.segment_pipes.join(", "),
        if t.dry_pipes.is_empty() {
            "none".to_string()
        } else {
            t.dry_pipes.join(", ")
        },
    ))
}
