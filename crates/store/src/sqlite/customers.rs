//! The customer statements SQLite says its own way: multi-row `VALUES`, as many rows to a
//! statement as its bound-variable limit allows.

use chrono::{DateTime, Utc};
use outagecast_core::customer::Customer;
use sqlx::sqlite::SqliteConnection;

use crate::Result;
use crate::backend::{Backend, ContactInsert, Record, Sql};
use crate::model::ts;
use crate::sqlite::SqliteStore;

/// Customers per upsert statement: 8 values a row, 4,000 bound variables, well under
/// SQLite's limit of 32,766.
pub(super) const CUSTOMER_CHUNK: usize = 500;
/// Contacts per insert statement: 5 values a row.
const CONTACT_CHUNK: usize = 1_000;

/// `($1, …, $width), ($width+1, …)`: the placeholders of `rows` rows.
fn values(rows: usize, width: usize) -> String {
    let mut text = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        text.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                text.push_str(", ");
            }
            text.push_str(&format!("${}", r * width + c + 1));
        }
        text.push(')');
    }
    text
}

pub(super) async fn upsert_customer_rows(
    c: &mut SqliteConnection,
    chunk: &[&Customer],
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64, bool)>> {
    let mut sql = Sql::built(format!(
        "INSERT INTO customers (account_id, lon, lat, address, language, priority, channel, created_at, updated_at)
         VALUES {}
         ON CONFLICT (account_id) DO UPDATE SET
           lon = excluded.lon, lat = excluded.lat, address = excluded.address,
           language = excluded.language, priority = excluded.priority,
           channel = excluded.channel, updated_at = excluded.updated_at
         RETURNING account_id, id, created_at",
        values(chunk.len(), 9)
    ));
    for customer in chunk {
        sql = sql
            .arg(customer.account_id().as_str())
            .arg(customer.location().lon())
            .arg(customer.location().lat())
            .arg(customer.address())
            .arg(customer.language().code())
            .arg(customer.priority())
            .arg(customer.channel().map(|c| c.as_str()))
            .arg(now)
            .arg(now);
    }
    let now_s = ts(now);
    // A row created by this statement has this statement's time (one writer at a time).
    let rows = SqliteStore::fetch_all(c, sql).await?;
    rows.iter()
        .map(|r| Ok((r.text(0)?, r.i64(1)?, r.text(2)? == now_s)))
        .collect()
}

pub(super) async fn insert_contacts(
    c: &mut SqliteConnection,
    contacts: &[ContactInsert<'_>],
) -> Result<()> {
    for part in contacts.chunks(CONTACT_CHUNK) {
        let mut sql = Sql::built(format!(
            "INSERT INTO contacts (customer_id, medium, value, kind, position) VALUES {}",
            values(part.len(), 5)
        ));
        for k in part {
            sql = sql
                .arg(k.customer_id)
                .arg(k.medium)
                .arg(k.value)
                .arg(k.kind)
                .arg(k.position);
        }
        SqliteStore::execute(c, sql).await?;
    }
    Ok(())
}
