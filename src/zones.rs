//! `outagecast zones import|list`: named zones (district metered areas, pressure zones,
//! feeder service areas) that incidents can be declared on with `--zone NAME` or a CAP
//! `<geocode>`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use outagecast_ingest::zone::zones_from_geojson;
use serde_json::json;

use crate::commands::{emit, emit_json};
use outagecast_engine::Engine;

#[derive(Debug, Subcommand)]
pub enum ZonesCommand {
    /// Import zones from a GeoJSON FeatureCollection: one Polygon or MultiPolygon feature per
    /// zone, named by a property. A zone of the same name is replaced. All or nothing.
    Import {
        /// The GeoJSON file.
        file: PathBuf,
        /// The feature property that holds each zone's name.
        #[arg(long, value_name = "PROP", default_value = "name")]
        name_property: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the zones with how many customers each holds now.
    List {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(engine: &Engine, cmd: ZonesCommand) -> Result<()> {
    match cmd {
        ZonesCommand::Import {
            file,
            name_property,
            json,
        } => import(engine, &file, &name_property, json).await,
        ZonesCommand::List { json } => list(engine, json).await,
    }
}

async fn import(engine: &Engine, file: &Path, name_property: &str, json: bool) -> Result<()> {
    let text = crate::areas::read(file, "FILE")?;
    let zones = zones_from_geojson(&text, "FILE", name_property)?;
    let summary = engine
        .import_zones(
            &engine.settings().actor,
            &zones,
            &file.display().to_string(),
        )
        .await?;
    let counts: Vec<(String, usize)> = zones
        .iter()
        .map(|z| z.name.to_string())
        .zip(engine.counts(zones.iter().map(|z| &z.area)).await?)
        .collect();
    if json {
        return emit_json(&json!({
            "imported": zones.len(),
            "inserted": summary.inserted,
            "updated": summary.updated,
            "zones": counts.iter().map(|(n, c)| json!({"name": n, "customers": c})).collect::<Vec<_>>(),
        }));
    }
    emit(&format!(
        "imported {} zones ({} new, {} updated)",
        zones.len(),
        summary.inserted,
        summary.updated
    ))?;
    for (name, count) in counts {
        emit(&format!("  {name}: {count} customers"))?;
    }
    Ok(())
}

async fn list(engine: &Engine, json: bool) -> Result<()> {
    let zones = engine.store().zones().await?;
    let counts = engine.counts(zones.iter().map(|z| &z.area)).await?;
    if json {
        return emit_json(&json!({
            "zones": zones.iter().zip(&counts).map(|(z, count)| json!({
                "name": z.name,
                "customers": count,
                "area": z.area,
                "properties": z.properties,
                "source": z.source,
                "imported_at": z.imported_at,
            })).collect::<Vec<_>>(),
        }));
    }
    if zones.is_empty() {
        return emit(
            "no zones; import them with `outagecast zones import FILE.geojson --name-property PROP`",
        );
    }
    for (z, count) in zones.iter().zip(&counts) {
        emit(&format!(
            "{:<24} {:>7} customers  {}  (from {}, {})",
            z.name,
            count,
            z.area.describe(),
            z.source,
            z.imported_at.format("%Y-%m-%d %H:%M")
        ))?;
    }
    Ok(())
}
