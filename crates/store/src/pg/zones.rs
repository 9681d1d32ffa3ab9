//! Named zones on PostgreSQL, and the customers' addresses for the embedded geocoder: the
//! semantics of the SQLite store's.

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;

use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::zones::zone_from_parts;
use crate::{Result, StoreError, StoredZone, ZoneImportSummary, ZoneRecord};

/// The zone columns, JSON as text so that damage reads as on SQLite.
const ZONE_COLUMNS: &str = "name, area::text, properties::text, source, imported_at";

type ZoneRow = (String, String, String, String, DateTime<Utc>);

fn zone_from_row((name, area, properties, source, imported_at): ZoneRow) -> Result<StoredZone> {
    zone_from_parts(name, &area, &properties, source, Ok(imported_at))
}

impl PgStore {
    /// Imports zones in one transaction: a zone whose name exists (in any case) is replaced,
    /// others are added. An audit entry records the import.
    pub async fn upsert_zones(
        &self,
        zones: &[ZoneRecord<'_>],
        actor: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ZoneImportSummary> {
        let mut tx = self.pool.begin().await?;
        let mut summary = ZoneImportSummary {
            inserted: 0,
            updated: 0,
        };
        // One row at a time: a name given twice in one import is added, then replaced.
        for z in zones {
            let area =
                serde_json::to_string(z.area).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let properties = serde_json::Value::Object(z.properties.clone()).to_string();
            // `xmax = 0` tells a row this statement inserted from one it updated.
            let (inserted,): (bool,) = sqlx::query_as(
                "INSERT INTO zones (name, name_key, area, properties, source, imported_at)
                 VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6)
                 ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, area = excluded.area,
                   properties = excluded.properties, source = excluded.source,
                   imported_at = excluded.imported_at
                 RETURNING (xmax = 0)",
            )
            .bind(z.name)
            .bind(z.key)
            .bind(&area)
            .bind(&properties)
            .bind(source)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if inserted {
                summary.inserted += 1;
            } else {
                summary.updated += 1;
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

    /// Every zone, by name (its lower-cased key, bytewise as on SQLite).
    pub async fn zones(&self) -> Result<Vec<StoredZone>> {
        let rows: Vec<ZoneRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ZONE_COLUMNS} FROM zones ORDER BY name_key COLLATE \"C\""
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(zone_from_row).collect()
    }

    /// The zone whose lower-cased name is `key`.
    pub async fn zone(&self, key: &str) -> Result<Option<StoredZone>> {
        let row: Option<ZoneRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ZONE_COLUMNS} FROM zones WHERE name_key = $1"
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(zone_from_row).transpose()
    }

    /// Every distinct (address, service point) of the customers, in the order of their first
    /// customer: what the embedded geocoder is built from.
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
