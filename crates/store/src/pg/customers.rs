//! Customers and their contacts: bulk upsert, service points, the customers generation.

use std::collections::HashMap;

use crate::ImportSummary;
use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::customer::{Customer, CustomerId};
use sqlx::{Postgres, Transaction};

use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::{Result, StoreError};

/// Customers are written this many to a statement: large enough that per-statement costs
/// vanish, small enough that the arrays stay a few megabytes.
const CHUNK: usize = 20_000;

/// `meta` key of the counter bumped by every change to the customers.
const GENERATION_KEY: &str = "customers_generation";

impl PgStore {
    /// Inserts or replaces customers by account id, in one transaction with an audit entry:
    /// the semantics of `SqliteStore::upsert_customers`. Contacts are replaced; opt-outs are
    /// keyed by contact, not account, so they survive. An account given several times in one
    /// import ends as its last row; it counts once as inserted (when new) and then as updated
    /// for every repeat. New accounts get ids in the order of their first row.
    ///
    /// Written in bulk: `INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT DO UPDATE` and one
    /// `UNNEST` insert of the contacts per chunk of customers.
    pub async fn upsert_customers(
        &self,
        customers: &[Customer],
        actor: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportSummary> {
        // The last row of each account, in the order of the account's first row.
        let mut position: HashMap<&str, usize> = HashMap::with_capacity(customers.len());
        let mut rows: Vec<&Customer> = Vec::with_capacity(customers.len());
        for c in customers {
            match position.entry(c.account_id().as_str()) {
                std::collections::hash_map::Entry::Occupied(e) => rows[*e.get()] = c,
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(rows.len());
                    rows.push(c);
                }
            }
        }

        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in rows.chunks(CHUNK) {
            inserted += upsert_chunk(&mut tx, chunk, now).await?;
        }
        let summary = ImportSummary {
            inserted,
            updated: customers.len() - inserted,
        };
        bump_customers_generation(&mut tx).await?;
        audit(
            &mut tx,
            actor,
            "customers.import",
            Some(source),
            &serde_json::json!({ "inserted": summary.inserted, "updated": summary.updated }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// Every service point, for building the spatial index, in id order.
    pub async fn service_points(&self) -> Result<Vec<(CustomerId, LonLat)>> {
        let rows: Vec<(i64, f64, f64)> =
            sqlx::query_as("SELECT id, lon, lat FROM customers ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(id, lon, lat)| {
                let p = LonLat::parse(lon, lat)
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?;
                Ok((CustomerId(id), p))
            })
            .collect()
    }

    /// The number of customers.
    pub async fn customer_count(&self) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM customers")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// A counter that grows in every transaction that changes customers, whichever node made
    /// it; a node whose in-memory index was built at another value must reload.
    pub async fn customers_generation(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(GENERATION_KEY)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// The contacts of a customer as stored: (medium, value, kind), in the order given.
    pub async fn contacts_of(
        &self,
        id: CustomerId,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT medium, value, kind FROM contacts WHERE customer_id = $1 ORDER BY position",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Upserts one chunk of distinct accounts and replaces their contacts; returns how many were
/// new.
async fn upsert_chunk(
    tx: &mut Transaction<'static, Postgres>,
    chunk: &[&Customer],
    now: DateTime<Utc>,
) -> Result<usize> {
    let n = chunk.len();
    let mut accounts = Vec::with_capacity(n);
    let mut lons = Vec::with_capacity(n);
    let mut lats = Vec::with_capacity(n);
    let mut addresses = Vec::with_capacity(n);
    let mut languages = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    for c in chunk {
        accounts.push(c.account_id().as_str());
        lons.push(c.location().lon());
        lats.push(c.location().lat());
        addresses.push(c.address());
        languages.push(c.language().code());
        priorities.push(c.priority());
    }
    // `xmax = 0` tells a row this statement inserted from one it updated. WITH ORDINALITY +
    // ORDER BY hands out new ids in the order of the rows.
    let written: Vec<(i64, String, bool)> = sqlx::query_as(
        "INSERT INTO customers (account_id, lon, lat, address, language, priority, created_at, updated_at)
         SELECT a, x, y, addr, lang, prio, $7, $7
           FROM UNNEST($1::text[], $2::float8[], $3::float8[], $4::text[], $5::text[], $6::bool[])
                WITH ORDINALITY AS u(a, x, y, addr, lang, prio, ord)
          ORDER BY ord
         ON CONFLICT (account_id) DO UPDATE SET
           lon = excluded.lon, lat = excluded.lat, address = excluded.address,
           language = excluded.language, priority = excluded.priority,
           updated_at = excluded.updated_at
         RETURNING id, account_id, (xmax = 0)",
    )
    .bind(&accounts)
    .bind(&lons)
    .bind(&lats)
    .bind(&addresses)
    .bind(&languages)
    .bind(&priorities)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    if written.len() != n {
        return Err(StoreError::Corrupt(format!(
            "upserting {n} customers wrote {} rows",
            written.len()
        )));
    }
    let ids: HashMap<String, (i64, bool)> = written
        .into_iter()
        .map(|(id, account, new)| (account, (id, new)))
        .collect();
    let inserted = ids.values().filter(|(_, new)| *new).count();
    let replaced: Vec<i64> = ids
        .values()
        .filter(|(_, new)| !*new)
        .map(|(id, _)| *id)
        .collect();
    if !replaced.is_empty() {
        sqlx::query("DELETE FROM contacts WHERE customer_id = ANY($1)")
            .bind(&replaced)
            .execute(&mut **tx)
            .await?;
    }

    let mut owners = Vec::new();
    let mut media = Vec::new();
    let mut values = Vec::new();
    let mut kinds: Vec<Option<&str>> = Vec::new();
    let mut positions = Vec::new();
    for c in chunk {
        let Some(&(id, _)) = ids.get(c.account_id().as_str()) else {
            return Err(StoreError::Corrupt(format!(
                "account {} was not written",
                c.account_id().as_str()
            )));
        };
        let phones = c
            .phones()
            .iter()
            .map(|p| ("phone", p.e164(), Some(p.kind().as_str())));
        let emails = c.emails().iter().map(|e| ("email", e.as_str(), None));
        for (position, (medium, value, kind)) in phones.chain(emails).enumerate() {
            owners.push(id);
            media.push(medium);
            values.push(value);
            kinds.push(kind);
            positions.push(i32::try_from(position).unwrap_or(i32::MAX));
        }
    }
    if !owners.is_empty() {
        sqlx::query(
            "INSERT INTO contacts (customer_id, medium, value, kind, position)
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int4[])",
        )
        .bind(&owners)
        .bind(&media)
        .bind(&values)
        .bind(&kinds)
        .bind(&positions)
        .execute(&mut **tx)
        .await?;
    }
    Ok(inserted)
}

/// Marks the customers as changed for every node; call inside the transaction that changes
/// them.
async fn bump_customers_generation(tx: &mut Transaction<'static, Postgres>) -> Result<()> {
    sqlx::query("UPDATE meta SET value = value + 1 WHERE key = $1")
        .bind(GENERATION_KEY)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes an audit entry inside the transaction of the change it describes.
// Scaffold: not yet ported.
use crate::pg::unported;
#[allow(unused_imports)]
use crate::*;
use outagecast_core::contact::Channel;
#[allow(unused_imports)]
use outagecast_core::customer::AccountId;
use std::collections::HashSet;
impl PgStore {
    /// Not yet on PostgreSQL.
    pub async fn customers(&self, _ids: &[CustomerId]) -> Result<Vec<(CustomerId, Customer)>> {
        Err(unported("customers"))
    }

    /// Not yet on PostgreSQL.
    pub async fn customer_by_account(
        &self,
        _account: &AccountId,
    ) -> Result<Option<(CustomerId, Customer)>> {
        Err(unported("customer_by_account"))
    }

    /// Not yet on PostgreSQL.
    pub async fn opt_outs(&self) -> Result<HashSet<(Channel, String)>> {
        Err(unported("opt_outs"))
    }

    /// Not yet on PostgreSQL.
    pub async fn opt_out(
        &self,
        _channel: Channel,
        _address: &str,
        _source: &str,
        _now: DateTime<Utc>,
    ) -> Result<()> {
        Err(unported("opt_out"))
    }

    /// Not yet on PostgreSQL.
    pub async fn customers_page(
        &self,
        _after: Option<&str>,
        _limit: u32,
    ) -> Result<Vec<(CustomerId, Customer)>> {
        Err(unported("customers_page"))
    }

    /// Not yet on PostgreSQL.
    pub async fn delete_customer(
        &self,
        _account_id: &AccountId,
        _actor: &str,
        _now: DateTime<Utc>,
    ) -> Result<bool> {
        Err(unported("delete_customer"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pg::test_support::{schema_name, url};
    use outagecast_core::contact::Language;
    use outagecast_core::customer::{CustomerRecord, RecordRules};

    fn customer(account: &str, lon: &str, phone: &str, email: &str) -> Customer {
        CustomerRecord {
            account_id: account.into(),
            lon: lon.into(),
            lat: "60.1710".into(),
            address: "Kaivokatu 1, Helsinki".into(),
            phone: phone.into(),
            email: email.into(),
            language: "en".into(),
            priority: "false".into(),
        }
        .parse(RecordRules {
            default_region: None,
            default_language: Language::Fi,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn reimport_updates_in_place_and_repeats_count_as_updates() {
        let Some(url) = url("reimport_updates_in_place_and_repeats_count_as_updates") else {
            return;
        };
        let store = PgStore::connect_schema(&url, &schema_name("customers"))
            .await
            .unwrap();
        let now = Utc::now();
        let first = vec![
            customer("A", "24.9414", "+358481111111", "a@example.com"),
            customer("B", "24.9415", "", "b@example.com"),
        ];
        let s = store
            .upsert_customers(&first, "test", "a.csv", now)
            .await
            .unwrap();
        assert_eq!((s.inserted, s.updated), (2, 0));
        let generation = store.customers_generation().await.unwrap();

        // A again (twice: the last row wins) and a new C, also given twice.
        let second = vec![
            customer("A", "24.9000", "+358482222222", ""),
            customer("C", "24.9416", "+358483333333", ""),
            customer("A", "24.9500", "+358482222222;+358481111111", ""),
            customer("C", "24.9417", "+358483333333", "c@example.com"),
        ];
        let later = now + chrono::Duration::seconds(1);
        let s = store
            .upsert_customers(&second, "test", "b.csv", later)
            .await
            .unwrap();
        assert_eq!((s.inserted, s.updated), (1, 3));
        assert_eq!(store.customer_count().await.unwrap(), 3);
        assert_eq!(store.customers_generation().await.unwrap(), generation + 1);

        let points = store.service_points().await.unwrap();
        let ids: Vec<i64> = points.iter().map(|(id, _)| id.0).collect();
        assert_eq!(ids.len(), 3);
        // A kept its id and took its last row.
        let (a, at) = points[0];
        assert_eq!(at.lon(), 24.95);
        let contacts = store.contacts_of(a).await.unwrap();
        assert_eq!(
            contacts
                .iter()
                .map(|(m, v, _)| (m.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            vec![("phone", "+358482222222"), ("phone", "+358481111111")]
        );
        let (c, at) = points[2];
        assert_eq!(at.lon(), 24.9417);
        assert_eq!(store.contacts_of(c).await.unwrap().len(), 2);

        let audits: Vec<(String, serde_json::Value)> =
            sqlx::query_as("SELECT action, details FROM audit_log ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(audits.len(), 2);
        assert_eq!(audits[1].0, "customers.import");
        assert_eq!(
            audits[1].1,
            serde_json::json!({ "inserted": 1, "updated": 3 })
        );
        store.drop_schema().await.unwrap();
    }
}
