//! `outagecast network import`: the network model (GeoJSON) and which pipe feeds each
//! customer (a services CSV, or the nearest pipe within `--attach-within` metres).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use outagecast_engine::{DEFAULT_ATTACH_WITHIN_M, Engine, NetworkImport, Services};
use outagecast_ingest::network::{network_from_geojson, services_from_csv};
use serde_json::json;

use crate::commands::{emit, emit_json};

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Import the network model from a GeoJSON FeatureCollection (nodes as Points with "id",
    /// "kind" junction|reservoir|tank; links as LineStrings with "id", "kind" pipe|pump,
    /// "from", "to"; isolation valves as Points with "id", "kind": "valve", "pipe", "node";
    /// power: substation, section, switch|fuse). Replaces the stored network; all or nothing.
    Import {
        /// The GeoJSON file.
        file: PathBuf,
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

pub async fn run(engine: &Engine, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Import {
            file,
            services,
            attach_within,
            json,
        } => import(engine, &file, services.as_deref(), attach_within, json).await,
    }
}

async fn import(
    engine: &Engine,
    file: &Path,
    services: Option<&Path>,
    attach_within: f64,
    json: bool,
) -> Result<()> {
    let name = file.display().to_string();
    let text = crate::areas::read(file, "FILE")?;
    let input = network_from_geojson(&text, &name)?;
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
