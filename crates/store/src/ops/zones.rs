//! Named zones, and the customers' addresses for the embedded geocoder.

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;

use crate::backend::{Backend, Record, Sql};
use crate::model::zones::{StoredZone, ZONE_COLUMNS, ZoneImportSummary, ZoneRecord, zone};
use crate::ops::audit;
use crate::{Result, StoreError};

/// Imports zones in one transaction: a zone whose name exists (in any case) is replaced,
/// others are added. An audit entry records the import.
pub(crate) async fn upsert_zones<B: Backend>(
    b: &B,
    zones: &[ZoneRecord<'_>],
    actor: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<ZoneImportSummary> {
    let mut tx = b.begin().await?;
    let mut summary = ZoneImportSummary {
        inserted: 0,
        updated: 0,
    };
    // One row at a time: a name given twice in one import is added, then replaced.
    for z in zones {
        let area = serde_json::to_value(z.area).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let properties = serde_json::Value::Object(z.properties.clone());
        let existed = B::fetch_optional(
            &mut tx,
            Sql::built(format!(
                "SELECT id FROM zones WHERE name_key = $1{}",
                B::LOCK_ROWS
            ))
            .arg(z.key),
        )
        .await?;
        B::execute(
            &mut tx,
            Sql::new(
                "INSERT INTO zones (name, name_key, area, properties, source, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (name_key) DO UPDATE SET name = excluded.name, area = excluded.area,
                   properties = excluded.properties, source = excluded.source,
                   imported_at = excluded.imported_at",
            )
            .arg(z.name)
            .arg(z.key)
            .arg(area)
            .arg(properties)
            .arg(source)
            .arg(now),
        )
        .await?;
        if existed.is_some() {
            summary.updated += 1;
        } else {
            summary.inserted += 1;
        }
    }
    audit::write::<B>(
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
    B::commit(tx).await?;
    Ok(summary)
}

/// Every zone, by name (its lower-cased key, bytewise).
pub(crate) async fn zones<B: Backend>(b: &B) -> Result<Vec<StoredZone>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT {ZONE_COLUMNS} FROM zones ORDER BY name_key{}",
            B::BYTEWISE
        )),
    )
    .await?;
    rows.iter().map(zone).collect()
}

/// The zone whose lower-cased name is `key`.
pub(crate) async fn zone_by_key<B: Backend>(b: &B, key: &str) -> Result<Option<StoredZone>> {
    let row = B::fetch_optional(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT {ZONE_COLUMNS} FROM zones WHERE name_key = $1"
        ))
        .arg(key),
    )
    .await?;
    row.as_ref().map(zone).transpose()
}

/// Every distinct (address, service point) of the customers, in the order of their first
/// customer: what the embedded geocoder is built from.
pub(crate) async fn address_points<B: Backend>(b: &B) -> Result<Vec<(String, LonLat)>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new(
            "SELECT address, lon, lat FROM customers GROUP BY address, lon, lat ORDER BY MIN(id)",
        ),
    )
    .await?;
    rows.iter()
        .map(|r| {
            let address = r.text(0)?;
            let p = LonLat::parse(r.f64(1)?, r.f64(2)?)
                .map_err(|e| StoreError::Corrupt(format!("address {address:?}: {e}")))?;
            Ok((address, p))
        })
        .collect()
}
