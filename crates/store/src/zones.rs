//! Named zones (district metered areas, pressure zones, feeder service areas), and the
//! customers' addresses for the embedded geocoder.

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, LonLat};
use serde::Serialize;

use crate::{Result, SqliteStore, StoreError, audit, parse_ts, ts};

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

type ZoneRow = (String, String, String, String, String);

fn zone_from_row((name, area, properties, source, imported_at): ZoneRow) -> Result<StoredZone> {
    let imported_at = parse_ts(&imported_at);
    zone_from_parts(name, &area, &properties, source, imported_at)
}

/// A zone from its columns, with the area and properties as JSON text; `imported_at`'s error
/// is reported after theirs.
pub(crate) fn zone_from_parts(
    name: String,
    area: &str,
    properties: &str,
    source: String,
    imported_at: Result<DateTime<Utc>>,
) -> Result<StoredZone> {
    Ok(StoredZone {
        area: serde_json::from_str(area)
            .map_err(|e| StoreError::Corrupt(format!("zone {name:?} area: {e}")))?,
        properties: serde_json::from_str(properties)
            .map_err(|e| StoreError::Corrupt(format!("zone {name:?} properties: {e}")))?,
        imported_at: imported_at?,
        name,
        source,
    })
}

impl SqliteStore {
    /// Imports zones in one transaction: a zone whose name exists (in any case) is replaced,
    /// others are added. An audit entry records the import.
    pub async fn upsert_zones(
        &self,
        zones: &[ZoneRecord<'_>],
        actor: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ZoneImportSummary> {
        let mut tx = self.write_tx().await?;
        let at = ts(now);
        let mut summary = ZoneImportSummary {
            inserted: 0,
            updated: 0,
        };
        for z in zones {
            let area =
                serde_json::to_string(z.area).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let properties = serde_json::Value::Object(z.properties.clone()).to_string();
            let existed: Option<(i64,)> = sqlx::query_as("SELECT id FROM zones WHERE name_key = ?")
                .bind(z.key)
                .fetch_optional(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO zones (name, name_key, area, properties, source, imported_at)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, area = excluded.area,
                   properties = excluded.properties, source = excluded.source,
                   imported_at = excluded.imported_at",
            )
            .bind(z.name)
            .bind(z.key)
            .bind(&area)
            .bind(&properties)
            .bind(source)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
            if existed.is_some() {
                summary.updated += 1;
            } else {
                summary.inserted += 1;
            }
        }
        audit(
            &mut tx,
            actor,
            "zones.import",
            Some(&format!("file:{source}")),
            &serde_json::json!({
                "zones": zones.iter().map(|z| z.name).collect::<Vec<_>>(),
                "inserted": summary.inserted,
                "updated": summary.updated,
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// Every zone, by name.
    pub async fn zones(&self) -> Result<Vec<StoredZone>> {
        let rows: Vec<ZoneRow> = sqlx::query_as(
            "SELECT name, area, properties, source, imported_at FROM zones ORDER BY name_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(zone_from_row).collect()
    }

    /// The zone whose lower-cased name is `key`.
    pub async fn zone(&self, key: &str) -> Result<Option<StoredZone>> {
        let row: Option<ZoneRow> = sqlx::query_as(
            "SELECT name, area, properties, source, imported_at FROM zones WHERE name_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(zone_from_row).transpose()
    }

    /// Every distinct (address, service point) of the customers: what the embedded geocoder
    /// is built from.
    pub async fn address_points(&self) -> Result<Vec<(String, LonLat)>> {
        let rows: Vec<(String, f64, f64)> = sqlx::query_as(
            "SELECT address, lon, lat FROM customers GROUP BY address, lon, lat ORDER BY MIN(id)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(address, lon, lat)| {
                let p = LonLat::parse(lon, lat)
                    .map_err(|e| StoreError::Corrupt(format!("address {address:?}: {e}")))?;
                Ok((address, p))
            })
            .collect()
    }
}
