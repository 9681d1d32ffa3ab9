//! Customers and their contacts on PostgreSQL: bulk upsert, reads, pages, the opt-out register,
//! deletion and the customers generation.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, LonLat};
use outagecast_core::contact::Channel;
use outagecast_core::customer::{AccountId, Customer, CustomerId};
use sqlx::{Postgres, QueryBuilder, Transaction};

use crate::customers::{
    ContactRow, CustomerRow, GENERATION_KEY, assemble, contact_rows, delete_details,
    last_row_per_account,
};
use crate::pg::PgStore;
use crate::pg::audit::audit;
use crate::{ImportSummary, MAX_CUSTOMER_PAGE, Result, StoreError, stored};

/// Customers are written this many to a statement: large enough that per-statement costs
/// vanish, small enough that the arrays stay a few megabytes.
const CHUNK: usize = 20_000;

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
        let rows = last_row_per_account(customers);

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
        if customers.len() >= crate::pg::BULK_ROWS {
            self.refresh_statistics(crate::pg::CUSTOMER_TABLES).await;
        }
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
        for (position, (medium, value, kind)) in contact_rows(c).enumerate() {
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

/// The customer columns as the SQLite store's [`CustomerRow`] reads them (priority as 0/1), so
/// that its [`assemble`] builds the customers of both stores.
const CUSTOMER_COLUMNS: &str =
    "id, account_id, lon, lat, address, language, priority::int4::int8 AS priority";

/// A read-only transaction that reads customers and their contacts from one snapshot.
const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

impl PgStore {
    /// The customers with these ids (any that do not exist are left out), in id order.
    pub async fn customers(&self, ids: &[CustomerId]) -> Result<Vec<(CustomerId, Customer)>> {
        let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let rows: Vec<CustomerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ANY($1) ORDER BY id"
        )))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let contacts = contacts_of_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        assemble(rows, contacts)
    }

    /// The customer with this account id.
    pub async fn customer_by_account(
        &self,
        account: &AccountId,
    ) -> Result<Option<(CustomerId, Customer)>> {
        let id: Option<(i64,)> = sqlx::query_as("SELECT id FROM customers WHERE account_id = $1")
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some((id,)) => Ok(self.customers(&[CustomerId(id)]).await?.pop()),
            None => Ok(None),
        }
    }

    /// The opt-out register: every (channel, address) that must not be contacted.
    pub async fn opt_outs(&self) -> Result<HashSet<(Channel, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT channel, address FROM opt_outs")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(ch, addr)| Ok((stored(&ch, Channel::parse)?, addr)))
            .collect()
    }

    /// Opts a contact out of a channel (idempotent), with an audit entry.
    pub async fn opt_out(
        &self,
        channel: Channel,
        address: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO opt_outs (channel, address, at, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(address)
        .bind(now)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut tx,
            source,
            "contact.opt_out",
            None,
            &serde_json::json!({ "channel": channel.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Customers ordered by account id (bytewise, as on SQLite), a page at a time: those
    /// after the account id `after`, at most `limit` of them (capped at
    /// [`MAX_CUSTOMER_PAGE`]). A page shorter than `limit` is the last.
    pub async fn customers_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(CustomerId, Customer)>> {
        let limit = i64::from(limit.min(MAX_CUSTOMER_PAGE));
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut tx = self.pool.begin_with(SNAPSHOT).await?;
        let mut sql =
            QueryBuilder::<Postgres>::new(format!("SELECT {CUSTOMER_COLUMNS} FROM customers"));
        if let Some(after) = after {
            sql.push(" WHERE account_id COLLATE \"C\" > ")
                .push_bind(after);
        }
        sql.push(" ORDER BY account_id COLLATE \"C\" LIMIT ")
            .push_bind(limit);
        let rows: Vec<CustomerRow> = sql.build_query_as().fetch_all(&mut *tx).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let contacts = contacts_of_ids(&mut tx, &ids).await?;
        tx.commit().await?;
        assemble(rows, contacts)
    }

    /// Deletes the customer with this account id, in one transaction with an audit entry that
    /// summarises what was deleted; returns whether there was such a customer. The semantics
    /// of `SqliteStore::delete_customer`: their unsent notices are withdrawn unless someone
    /// else stands behind the contact, their numbers disarmed in the IVR unless another
    /// affected customer has the number, their links to incidents and notices removed,
    /// opt-outs kept, and the customers generation bumped.
    pub async fn delete_customer(
        &self,
        account_id: &AccountId,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Locked: a concurrent deletion of the same account waits, then finds nothing.
        let row: Option<CustomerRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE account_id = $1 FOR UPDATE"
        )))
        .bind(account_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let id = row.0;
        let contacts = contacts_of_ids(&mut tx, &[id]).await?;
        let Some((_, before)) = assemble(vec![row], contacts)?.pop() else {
            return Err(StoreError::Corrupt(format!("customer {id} vanished")));
        };

        // Every incident the customer is in the affected set of: one primary-key probe per
        // incident rather than a scan of every affected set.
        let incidents: Vec<i64> = sqlx::query_scalar(
            "SELECT i.id FROM incidents i
             WHERE EXISTS (SELECT 1 FROM incident_customers ic
                           WHERE ic.incident_id = i.id AND ic.customer_id = $1)",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;

        // Notices of those incidents waiting to go to this customer (linked to them, or to one
        // of their contacts: an email fallback has no link of its own), unless someone else
        // still stands behind the contact. A notice handed over to a provider may be on the wire:
        // it finishes; one only claimed is withdrawn (its worker cannot hand it over now).
        let withdrawn = sqlx::query(
            "UPDATE notices SET status = 'superseded', last_error = 'customer deleted',
                    in_doubt = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
             WHERE incident_id = ANY($3)
               AND status = 'pending'
               AND in_doubt = 0
               AND (EXISTS (SELECT 1 FROM notice_customers nc
                            WHERE nc.notice_id = notices.id AND nc.customer_id = $2)
                    OR EXISTS (SELECT 1 FROM contacts k
                               WHERE k.customer_id = $2 AND k.value = notices.address
                                 AND k.medium = CASE notices.channel WHEN 'sms' THEN 'phone'
                                                                     ELSE 'email' END))
               AND NOT EXISTS (SELECT 1 FROM notice_customers nc
                               JOIN customers c ON c.id = nc.customer_id
                               WHERE nc.notice_id = notices.id AND nc.customer_id <> $2)
               AND NOT EXISTS (SELECT 1 FROM contacts k
                               JOIN incident_customers ic
                                 ON ic.customer_id = k.customer_id
                                AND ic.incident_id = notices.incident_id
                               WHERE k.value = notices.address AND k.customer_id <> $2
                                 AND k.medium = CASE notices.channel WHEN 'sms' THEN 'phone'
                                                                     ELSE 'email' END)",
        )
        .bind(now)
        .bind(id)
        .bind(&incidents)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        let disarmed = disarm_numbers(&mut tx, id, &before, now).await?;

        sqlx::query(
            "DELETE FROM notice_customers WHERE customer_id = $1
               AND notice_id IN (SELECT n.id FROM notices n WHERE n.incident_id = ANY($2))",
        )
        .bind(id)
        .bind(&incidents)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM incident_customers WHERE customer_id = $1 AND incident_id = ANY($2)",
        )
        .bind(id)
        .bind(&incidents)
        .execute(&mut *tx)
        .await?;
        // Contacts go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        bump_customers_generation(&mut tx).await?;
        audit(
            &mut tx,
            actor,
            "customer.delete",
            Some(&format!("customer:{}", account_id.as_str())),
            &delete_details(&before, withdrawn, disarmed),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The contacts of these customers, ordered by customer and position.
async fn contacts_of_ids(
    tx: &mut Transaction<'static, Postgres>,
    ids: &[i64],
) -> Result<Vec<ContactRow>> {
    Ok(sqlx::query_as(
        "SELECT customer_id, medium, value, kind FROM contacts
         WHERE customer_id = ANY($1) ORDER BY customer_id, position",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?)
}

/// Disarms the IVR flags of `gone`'s phone numbers, except where another customer with the
/// number is affected by the flag's incident: in its affected set, or inside its area (a
/// customer imported after the declaration is armed by re-arming, not added to the set).
/// Returns how many flags were disarmed. The flags are locked while they are weighed.
async fn disarm_numbers(
    tx: &mut Transaction<'static, Postgres>,
    gone: i64,
    customer: &Customer,
    now: DateTime<Utc>,
) -> Result<u64> {
    let phones: Vec<&str> = customer.phones().iter().map(|p| p.e164()).collect();
    if phones.is_empty() {
        return Ok(0);
    }
    let flags: Vec<(String, i64)> = sqlx::query_as(
        "SELECT phone, incident_id FROM ivr_flags
          WHERE phone = ANY($1) AND disarmed_at IS NULL
          ORDER BY phone, incident_id FOR UPDATE",
    )
    .bind(&phones)
    .fetch_all(&mut **tx)
    .await?;
    if flags.is_empty() {
        return Ok(0);
    }
    // Everyone else with one of the numbers, and the incidents whose affected set lists them.
    let others: Vec<(String, i64, f64, f64, Vec<i64>)> = sqlx::query_as(
        "SELECT k.value, c.id, c.lon, c.lat,
                ARRAY(SELECT ic.incident_id FROM incident_customers ic
                       WHERE ic.customer_id = c.id AND ic.incident_id = ANY($3))
           FROM contacts k JOIN customers c ON c.id = k.customer_id
          WHERE k.medium = 'phone' AND k.value = ANY($1) AND c.id <> $2",
    )
    .bind(&phones)
    .bind(gone)
    .bind(flags.iter().map(|(_, i)| *i).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;

    let mut areas: HashMap<i64, Area> = HashMap::new();
    let mut off_phones = Vec::new();
    let mut off_incidents = Vec::new();
    for (phone, incident) in flags {
        let mut kept = false;
        for (_, other, lon, lat, listed) in others.iter().filter(|o| o.0 == phone) {
            if listed.contains(&incident) {
                kept = true;
                break;
            }
            let area = match areas.entry(incident) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let (json,): (String,) =
                        sqlx::query_as("SELECT area::text FROM incidents WHERE id = $1")
                            .bind(incident)
                            .fetch_one(&mut **tx)
                            .await?;
                    e.insert(serde_json::from_str(&json).map_err(|err| {
                        StoreError::Corrupt(format!("incident {incident} area: {err}"))
                    })?)
                }
            };
            let inside = LonLat::parse(*lon, *lat)
                .map(|p| area.contains(p))
                .map_err(|e| StoreError::Corrupt(format!("customer {other}: {e}")))?;
            if inside {
                kept = true;
                break;
            }
        }
        if !kept {
            off_phones.push(phone);
            off_incidents.push(incident);
        }
    }
    if off_phones.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "UPDATE ivr_flags f SET disarmed_at = $1
           FROM UNNEST($2::text[], $3::int8[]) AS u(phone, incident_id)
          WHERE f.phone = u.phone AND f.incident_id = u.incident_id AND f.disarmed_at IS NULL",
    )
    .bind(now)
    .bind(&off_phones)
    .bind(&off_incidents)
    .execute(&mut **tx)
    .await?
    .rows_affected())
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
