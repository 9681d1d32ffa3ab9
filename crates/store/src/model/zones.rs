//! Named zones (district metered areas, pressure zones, feeder service areas) as imported and
//! stored.

use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use serde::Serialize;

use crate::backend::Record;
use crate::{Result, StoreError};

/// One zone to import.
#[derive(Debug, Clone, Copy)]
pub struct ZoneRecord<'a> {
    /// The name as written.
    pub name: &'a str,
    /// The name as compared (lower case): unique.
    pub key: &'a str,
    /// Its area.
    pub area: &'a Area,
    /// The feature's properties.
    pub properties: &'a serde_json::Map<String, serde_json::Value>,
}

/// A zone as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredZone {
    /// Its name.
    pub name: String,
    /// Its area.
    pub area: Area,
    /// The feature's properties as imported.
    pub properties: serde_json::Value,
    /// The file it came from.
    pub source: String,
    /// When it was (last) imported.
    pub imported_at: DateTime<Utc>,
}

/// What a zone import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ZoneImportSummary {
    /// New zones.
    pub inserted: u64,
    /// Zones of the same name replaced.
    pub updated: u64,
}

/// The columns [`zone`] reads, in order.
pub(crate) const ZONE_COLUMNS: &str = "name, area, properties, source, imported_at";

/// A zone from [`ZONE_COLUMNS`].
pub(crate) fn zone(r: &impl Record) -> Result<StoredZone> {
    let name = r.text(0)?;
    Ok(StoredZone {
        // Validated once at import; not again on every read.
        area: outagecast_core::area::Area::deserialize_stored(r.json(1)?)
            .map_err(|e| StoreError::Corrupt(format!("zone {name:?} area: {e}")))?,
        properties: r.json(2)?,
        source: r.text(3)?,
        imported_at: r.time(4)?,
        name,
    })
}
