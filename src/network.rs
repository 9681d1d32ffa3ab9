//! `outagecast network import`: the network model (GeoJSON, or an EPANET `.inp` with its
//! isolation-valve layer and `--crs`) and which pipe feeds each customer (a services CSV, or
//! the nearest pipe within `--attach-within` metres).

use std::path::{Path, PathBuf};

use anyhow::Result;
use anyhow::bail;
use clap::{Subcommand, ValueEnum};
use outagecast_engine::{DEFAULT_ATTACH_WITHIN_M, Engine, NetworkImport, Services};
use outagecast_ingest::crs::Crs;
use outagecast_ingest::epanet::{
    add_valves, network_from_inp, valves_from_csv, valves_from_geojson,
};
use outagecast_ingest::network::{network_from_geojson, services_from_csv};
use outagecast_network::NetworkInput;
use serde_json::json;

use crate::commands::{emit, emit_json};

/// The network model's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkFormat {
    /// A GeoJSON FeatureCollection of nodes, links and isolation valves (lon/lat).
    Geojson,
    /// An EPANET .inp model; the isolation valves come from --valves.
    Inp,
}

impl NetworkFormat {
    /// By the file's extension: `.inp` (any case) is EPANET, anything else GeoJSON.
    fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("inp") => NetworkFormat::Inp,
            _ => NetworkFormat::Geojson,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Import the network model from a GeoJSON FeatureCollection (nodes as Points with "id",
    /// "kind" junction|reservoir|tank; links as LineStrings with "id", "kind" pipe|pump,
    /// "from", "to"; isolation valves as Points with "id", "kind": "valve", "pipe", "node";
    /// power: substation, section, switch|fuse) or from an EPANET .inp model ([JUNCTIONS],
    /// [RESERVOIRS], [TANKS], [PIPES], [PUMPS], [VALVES] as control valves that connect like
    /// pipes, [COORDINATES], [VERTICES]; every pipe connects whatever its initial status,
    /// as in WNTR's valve segments) with its isolation valves from --valves. Replaces the
    /// stored network; all or nothing.
    #[command(after_help = "Examples:
  outagecast network import net.geojson --services services.csv
  outagecast network import model.inp --crs EPSG:3067 --valves valves.csv")]
    Import {
        /// The model: GeoJSON, or EPANET when it ends in .inp (or with --format inp).
        file: PathBuf,
        /// The model's format; by default from the file's extension (.inp is EPANET).
        #[arg(long, value_enum)]
        format: Option<NetworkFormat>,
        /// EPANET: the coordinate system of [COORDINATES] and [VERTICES], as EPSG:NNNN
        /// (e.g. EPSG:3067, ETRS-TM35FIN); transformed to WGS84 lon/lat. Without it the
        /// coordinates must already be longitude and latitude.
        #[arg(long, value_name = "EPSG:NNNN")]
        crs: Option<String>,
        /// EPANET: the isolation valves, as CSV `id,pipe,node` (placed at the node) or a
        /// GeoJSON FeatureCollection of valve features (.geojson/.json, lon/lat). EPANET's own
        /// [VALVES] are control valves, not these.
        #[arg(long, value_name = "VALVES.csv")]
        valves: Option<PathBuf>,
        /// CSV `account_id,pipe_id`: which pipe feeds each customer. Without it each customer
        /// is tied to the nearest pipe within `--attach-within`.
        #[arg(long, value_name = "SERVICES.csv")]
        services: Option<PathBuf>,
        /// Without `--services`: the farthest a customer may be from its pipe, in metres.
        #[arg(long, value_name = "METRES", default_value_t = DEFAULT_ATTACH_WITHIN_M)]
        attach_within: f64,
        /// Print one JSON object (with every attachment and its distance).
        #[arg(long)]
        json: bool,
    },
}

/// Where the model comes from, as the flags give it.
struct Model<'a> {
    file: &'a Path,
    format: Option<NetworkFormat>,
    crs: Option<&'a str>,
    valves: Option<&'a Path>,
}

pub async fn run(engine: &Engine, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Import {
            file,
            format,
            crs,
            valves,
            services,
            attach_within,
            json,
        } => {
            let model = Model {
                file: &file,
                format,
                crs: crs.as_deref(),
                valves: valves.as_deref(),
            };
            import(engine, &model, services.as_deref(), attach_within, json).await
        }
    }
}

/// Reads and checks the model's files (nothing is written here).
fn read_model(m: &Model<'_>) -> Result<NetworkInput> {
    let name = m.file.display().to_string();
    let format = m.format.unwrap_or_else(|| NetworkFormat::of(m.file));
    let text = crate::areas::read(m.file, "FILE")?;
    match format {
        NetworkFormat::Geojson => {
            if m.crs.is_some() || m.valves.is_some() {
                bail!(
                    "{name}: --crs and --valves are for an EPANET .inp model; a GeoJSON model is in lon/lat and holds its valves (or pass --format inp)"
                );
            }
            Ok(network_from_geojson(&text, &name)?)
        }
        NetworkFormat::Inp => {
            let crs = m.crs.map(|c| Crs::parse(c, "--crs")).transpose()?;
            let Some(valves) = m.valves else {
                bail!(
                    "--valves: an EPANET model has no isolation valves (its [VALVES] are control valves); give the valve layer as --valves VALVES.csv (id,pipe,node) or a GeoJSON of valve points"
                );
            };
            let mut input = network_from_inp(&text, &name, crs.as_ref())?;
            let valves_name = valves.display().to_string();
            let valves_text = crate::areas::read(valves, "--valves")?;
            let csv = valves
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let layer = if csv {
                valves_from_csv(&valves_text, &valves_name)?
            } else {
                valves_from_geojson(&valves_text, &valves_name)?
            };
            add_valves(&mut input, layer, &valves_name)?;
            Ok(input)
        }
    }
}

async fn import(
    engine: &Engine,
    model: &Model<'_>,
    services: Option<&Path>,
    attach_within: f64,
    json: bool,
) -> Result<()> {
    let name = model.file.display().to_string();
    let input = read_model(model)?;
    let services = match services {
        Some(path) => {
            let text = crate::areas::read(path, "--services")?;
            Services::Listed(services_from_csv(&text, &path.display().to_string())?)
        }
        None => Services::Nearest {
            within_m: attach_within,
        },
    };
    let view = engine
        .import_network(
            &engine.settings().actor,
            NetworkImport {
                input,
                services,
                source: name,
            },
        )
        .await?;
    if json {
        return emit_json(&json!(view));
    }
    emit(&format!(
        "imported the network: {} nodes (sources: {}), {} links, {} isolation devices",
        view.nodes, view.sources, view.links, view.devices
    ))?;
    let farthest = view
        .max_distance_m
        .map(|d| format!(", the farthest {d:.1} m from its pipe"))
        .unwrap_or_default();
    emit(&format!(
        "{} customers tied to a pipe{farthest}; {} unattached",
        view.attached, view.unattached_count
    ))?;
    const SHOWN: usize = 20;
    for account in view.unattached.iter().take(SHOWN) {
        emit(&format!("  unattached: {account}"))?;
    }
    if view.unattached.len() > SHOWN {
        emit(&format!(
            "  … and {} more (--json lists all)",
            view.unattached.len() - SHOWN
        ))?;
    }
    Ok(())
}
