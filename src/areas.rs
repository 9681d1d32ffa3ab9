//! The area flags of `incident declare|preview` and the rails flags, turned into the engine's
//! typed request ([`AreaSpec`], [`Rails`]); resolving the area (zones, geocoding) and the
//! rails themselves are the engine's, shared with the API.
//!
//! Inputs: `--circle`, `--polygon`, `--corridor` (see `commands::area_from_flags`),
//! `--geojson`, `--wkt`, `--zone`, `--address` (geocoded, embedded gazetteer or Nominatim)
//! and `--cap` (see `crate::cap`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use outagecast_engine::rails::DEFAULT_CONFIRM_THRESHOLD;
use outagecast_engine::views::TraceView;
use outagecast_engine::{AreaSpec, Geocoding, Preview, Rails, TopologySpec};
use outagecast_ingest::geocode::parse_gazetteer_csv;
use outagecast_ingest::geojson::Sizes;

use crate::cli::DeclareArgs;

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

pub(crate) fn read(path: &Path, flag: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
}

/// The area given by the declare/preview flags (all but `--cap`), as the engine's request.
pub fn spec(args: &DeclareArgs) -> Result<AreaSpec> {
    let i = &args.ingest;
    if let Some(area) = crate::commands::area_from_flags(
        args.circle.as_deref(),
        args.polygon.as_deref(),
        args.corridor.as_deref(),
        args.buffer,
    )? {
        return Ok(area);
    }
    let sizes = Sizes {
        radius_m: i.radius,
        buffer_m: args.buffer,
    };
    if let Some(path) = &i.geojson {
        return Ok(AreaSpec::GeoJson {
            text: read(path, "--geojson")?,
            sizes,
            source: Some(format!("GeoJSON {}", path.display())),
        });
    }
    if let Some(text) = &i.wkt {
        return Ok(AreaSpec::Wkt {
            text: text.clone(),
            sizes,
        });
    }
    if let Some(name) = &i.zone {
        return Ok(AreaSpec::Zone(name.clone()));
    }
    if let Some(query) = &i.address {
        let geocoding = match i.geocoder {
            GeocoderKind::Embedded => Geocoding::Embedded {
                extra: match &i.gazetteer {
                    Some(path) => parse_gazetteer_csv(&read(path, "--gazetteer")?, "--gazetteer")?,
                    None => Vec::new(),
                },
            },
            GeocoderKind::Nominatim => Geocoding::Nominatim {
                url: i.nominatim_url.clone(),
                user_agent: i.nominatim_user_agent.clone(),
            },
        };
        return Ok(AreaSpec::Address {
            query: query.clone(),
            radius_m: i.radius,
            geocoding,
        });
    }
    if let Some(burst) = &args.burst_pipe {
        return Ok(AreaSpec::Topology(TopologySpec {
            burst: burst.clone(),
            broken: args.broken_valve.clone(),
        }));
    }
    bail!(
        "area: give one of --circle, --polygon, --corridor, --geojson, --wkt, --cap, --zone, --address or --burst-pipe"
    )
}

/// The rails the declare/preview flags set.
pub fn rails(args: &DeclareArgs) -> Rails {
    Rails {
        allow_empty: args.allow_empty,
        confirm: args.ingest.confirm,
        confirm_threshold: args.ingest.confirm_threshold,
    }
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
