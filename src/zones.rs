//! `outagecast zones import|list`: named zones (district metered areas, pressure zones,
//! feeder service areas) that incidents can be declared on with `--zone NAME` or a CAP
//! `<geocode>`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;
use outagecast_engine::ZonesFile;
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
    let zones = ZonesFile {
        text: &text,
        field: "FILE",
        name_property,
    };
    let imported = engine
        .import_zones(&engine.settings().actor, zones, &file.display().to_string())
        .await?;
    if json {
        return emit_json(&json!(imported));
    }
    emit(&format!(
        "imported {} zones ({} new, {} updated)",
        imported.imported, imported.inserted, imported.updated
    ))?;
    for z in &imported.zones {
        emit(&format!("  {}: {} customers", z.name, z.customers))?;
    }
    Ok(())
}

async fn list(engine: &Engine, json: bool) -> Result<()> {
    let zones = engine.zones().await?;
    if json {
        return emit_json(&json!({ "zones": zones }));
    }
    if zones.is_empty() {
        return emit(
            "no zones; import them with `outagecast zones import FILE.geojson --name-property PROP`",
        );
    }
    for z in &zones {
        emit(&format!(
            "{:<24} {:>7} customers  {}  (from {}, {})",
            z.name,
            z.customers,
            z.area.describe(),
            z.source,
            z.imported_at.format("%Y-%m-%d %H:%M")
        ))?;
    }
    Ok(())
}
