//! Customers, their contacts and the opt-out register.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, LonLat};
use outagecast_core::contact::{Channel, EmailAddress, Language, PhoneKind, PhoneNumber};
use outagecast_core::customer::{AccountId, Customer, CustomerId, CustomerParts};
use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use crate::{Result, SqliteStore, StoreError, audit, stored, ts};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// New accounts.
    pub inserted: usize,
    /// Accounts that existed and were replaced by the new row.
    pub updated: usize,
}

pub(crate) type CustomerRow = (i64, String, f64, f64, String, String, i64);
pub(crate) type ContactRow = (i64, String, String, Option<String>);

impl SqliteStore {
    /// Inserts or replaces customers by account id, in one transaction with an audit entry.
    /// Contacts are replaced; opt-outs are keyed by contact, not account, so they survive.
    /// An account given several times in one import ends as its last row; it counts once as
    /// inserted (when new) and then as updated for every repeat. New accounts get ids in the
    /// order of their first row.
    ///
    /// Written in multi-row statements, [`UPSERT_CHUNK`] customers at a time: a statement a
    /// row cost a round trip to sqlx's SQLite thread each, and 100,000 customers took 27 s.
    pub async fn upsert_customers(
        &self,
        customers: &[Customer],
        actor: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportSummary> {
        let rows = last_row_per_account(customers);
        let mut tx = self.write_tx().await?;
        let now_s = ts(now);
        let mut inserted = 0;
        for chunk in rows.chunks(UPSERT_CHUNK) {
            inserted += upsert_chunk(&mut tx, chunk, &now_s).await?;
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

    /// Every service point, for building the spatial index.
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

    /// The customers with these ids (any that do not exist are left out), in id order.
    pub async fn customers(&self, ids: &[CustomerId]) -> Result<Vec<(CustomerId, Customer)>> {
        // One JSON array parameter instead of thousands of `?`: no bound-variable limit.
        let json = serde_json::to_string(&ids.iter().map(|i| i.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows: Vec<CustomerRow> = sqlx::query_as(
            "SELECT id, account_id, lon, lat, address, language, priority FROM customers
             WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
        )
        .bind(&json)
        .fetch_all(&self.pool)
        .await?;
        let contacts: Vec<ContactRow> = sqlx::query_as(
            "SELECT customer_id, medium, value, kind FROM contacts
             WHERE customer_id IN (SELECT value FROM json_each(?)) ORDER BY customer_id, position",
        )
        .bind(&json)
        .fetch_all(&self.pool)
        .await?;
        assemble(rows, contacts)
    }

    /// The customer with this account id.
    pub async fn customer_by_account(
        &self,
        account: &AccountId,
    ) -> Result<Option<(CustomerId, Customer)>> {
        let id: Option<(i64,)> = sqlx::query_as("SELECT id FROM customers WHERE account_id = ?")
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
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO opt_outs (channel, address, at, source) VALUES (?, ?, ?, ?)
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(channel.as_str())
        .bind(address)
        .bind(ts(now))
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
}

/// The most customers one page returns, whatever the caller asks for.
pub const MAX_CUSTOMER_PAGE: u32 = 1000;

/// `meta` key of the counter bumped by every change to the customers.
pub(crate) const GENERATION_KEY: &str = "customers_generation";

impl SqliteStore {
    /// Customers ordered by account id, for listing a page at a time: those after the account
    /// id `after` (the last one of the previous page; `None` for the first page), at most
    /// `limit` of them (capped at [`MAX_CUSTOMER_PAGE`]). A page shorter than `limit` is the
    /// last.
    pub async fn customers_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(CustomerId, Customer)>> {
        let limit = i64::from(limit.min(MAX_CUSTOMER_PAGE));
        if limit == 0 {
            return Ok(vec![]);
        }
        let mut tx = self.pool.begin().await?;
        let rows: Vec<CustomerRow> =
            match after {
                Some(after) => sqlx::query_as(
                    "SELECT id, account_id, lon, lat, address, language, priority FROM customers
                     WHERE account_id > ? ORDER BY account_id LIMIT ?",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?,
                None => sqlx::query_as(
                    "SELECT id, account_id, lon, lat, address, language, priority FROM customers
                     ORDER BY account_id LIMIT ?",
                )
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?,
            };
        let json = serde_json::to_string(&rows.iter().map(|r| r.0).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let contacts: Vec<ContactRow> = sqlx::query_as(
            "SELECT customer_id, medium, value, kind FROM contacts
             WHERE customer_id IN (SELECT value FROM json_each(?)) ORDER BY customer_id, position",
        )
        .bind(&json)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        assemble(rows, contacts)
    }

    /// A counter that changes (grows) in every transaction that inserts, updates or deletes
    /// customers, whichever process made it. A long-running process that keeps customers in
    /// memory (the R-tree) notes it when it loads them and compares before using them: a
    /// different value means reload.
    pub async fn customers_generation(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(GENERATION_KEY)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Deletes the customer with this account id, in one transaction with an audit entry that
    /// summarises what was deleted. Returns whether there was such a customer.
    ///
    /// - Their notices still waiting in the outbox are withdrawn (`superseded`, reason
    ///   "customer deleted"), except where another customer of the same incident shares the
    ///   contact; a notice a worker holds right now is left to finish. Notices already sent
    ///   stay, so a later "restored" still reaches a contact that was told.
    /// - Their phone numbers are disarmed in the IVR for every incident, except where another
    ///   customer with the number is affected by it (in its affected set or inside its area).
    ///   A running server sees this through the `ivr_changes` log like any other disarm.
    /// - They leave the affected sets and notice links, so a new customer that gets the same
    ///   row id later inherits nothing.
    /// - Opt-outs stay: they are keyed by contact, not account.
    /// - The customers generation is bumped, so a running server rebuilds its index.
    pub async fn delete_customer(
        &self,
        account_id: &AccountId,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let now_s = ts(now);
        let row: Option<CustomerRow> = sqlx::query_as(
            "SELECT id, account_id, lon, lat, address, language, priority FROM customers
             WHERE account_id = ?",
        )
        .bind(account_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let id = row.0;
        let contacts: Vec<ContactRow> = sqlx::query_as(
            "SELECT customer_id, medium, value, kind FROM contacts
             WHERE customer_id = ? ORDER BY position",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let Some((_, before)) = assemble(vec![row], contacts)?.pop() else {
            return Err(StoreError::Corrupt(format!("customer {id} vanished")));
        };

        // Every incident the customer is in the affected set of: one primary-key probe per
        // incident rather than a scan of every affected set.
        let incidents: Vec<(i64,)> = sqlx::query_as(
            "SELECT i.id FROM incidents i
             WHERE EXISTS (SELECT 1 FROM incident_customers ic
                           WHERE ic.incident_id = i.id AND ic.customer_id = ?)",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let incidents = serde_json::to_string(&incidents.iter().map(|(i,)| *i).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;

        // Notices of those incidents waiting to go to this customer (linked to them, or to one
        // of their contacts: an email fallback has no link of its own), unless someone else
        // still stands behind the contact. A notice handed over to a provider may be on the wire:
        // it finishes; one only claimed is withdrawn (its worker cannot hand it over now).
        let withdrawn = sqlx::query(
            "UPDATE notices SET status = 'superseded', last_error = 'customer deleted',
                    in_doubt = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1
             WHERE incident_id IN (SELECT value FROM json_each(?3))
               AND status = 'pending'
               AND in_doubt = 0
               AND (EXISTS (SELECT 1 FROM notice_customers nc
                            WHERE nc.notice_id = notices.id AND nc.customer_id = ?2)
                    OR EXISTS (SELECT 1 FROM contacts k
                               WHERE k.customer_id = ?2 AND k.value = notices.address
                                 AND k.medium = CASE notices.channel WHEN 'sms' THEN 'phone'
                                                                     ELSE 'email' END))
               AND NOT EXISTS (SELECT 1 FROM notice_customers nc
                               JOIN customers c ON c.id = nc.customer_id
                               WHERE nc.notice_id = notices.id AND nc.customer_id <> ?2)
               AND NOT EXISTS (SELECT 1 FROM contacts k
                               JOIN incident_customers ic
                                 ON ic.customer_id = k.customer_id
                                AND ic.incident_id = notices.incident_id
                               WHERE k.value = notices.address AND k.customer_id <> ?2
                                 AND k.medium = CASE notices.channel WHEN 'sms' THEN 'phone'
                                                                     ELSE 'email' END)",
        )
        .bind(&now_s)
        .bind(id)
        .bind(&incidents)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        let disarmed = disarm_numbers(&mut tx, id, &before, &now_s).await?;

        sqlx::query(
            "DELETE FROM notice_customers WHERE customer_id = ?1
               AND notice_id IN (SELECT n.id FROM notices n
                                 WHERE n.incident_id IN (SELECT value FROM json_each(?2)))",
        )
        .bind(id)
        .bind(&incidents)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM incident_customers WHERE customer_id = ?1
               AND incident_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(id)
        .bind(&incidents)
        .execute(&mut *tx)
        .await?;
        // Contacts go with the row (ON DELETE CASCADE).
        sqlx::query("DELETE FROM customers WHERE id = ?")
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

/// The audit details of `customer.delete`: what the customer was and what their deletion
/// withdrew and disarmed.
pub(crate) fn delete_details(
    before: &Customer,
    withdrawn: u64,
    disarmed: u64,
) -> serde_json::Value {
    serde_json::json!({
        // Counts rather than the numbers and addresses themselves: the audit log is read more
        // widely than the customer register.
        "before": {
            "account_id": before.account_id().as_str(),
            "address": before.address(),
            "lon": before.location().lon(),
            "lat": before.location().lat(),
            "language": before.language().code(),
            "priority": before.priority(),
            "phones": before.phones().len(),
            "emails": before.emails().len(),
        },
        "withdrawn_notices": withdrawn,
        "disarmed_numbers": disarmed,
    })
}

/// Disarms the IVR flags of `gone`'s phone numbers, except where another customer with the
/// number is affected by the flag's incident: in its affected set, or inside its area (a
/// customer imported after the declaration is armed by re-arming, not added to the set).
/// Returns how many flags were disarmed.
async fn disarm_numbers(
    tx: &mut Transaction<'static, Sqlite>,
    gone: i64,
    customer: &Customer,
    now: &str,
) -> Result<u64> {
    let mut areas: HashMap<i64, Area> = HashMap::new();
    let mut disarmed = 0;
    for phone in customer.phones() {
        let flags: Vec<(i64,)> = sqlx::query_as(
            "SELECT incident_id FROM ivr_flags WHERE phone = ? AND disarmed_at IS NULL",
        )
        .bind(phone.e164())
        .fetch_all(&mut **tx)
        .await?;
        if flags.is_empty() {
            continue;
        }
        let others: Vec<(i64, f64, f64)> = sqlx::query_as(
            "SELECT c.id, c.lon, c.lat FROM contacts k JOIN customers c ON c.id = k.customer_id
             WHERE k.medium = 'phone' AND k.value = ? AND c.id <> ?",
        )
        .bind(phone.e164())
        .bind(gone)
        .fetch_all(&mut **tx)
        .await?;
        for (incident,) in flags {
            let mut kept = false;
            for &(other, lon, lat) in &others {
                let (listed,): (i64,) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM incident_customers
                                    WHERE incident_id = ? AND customer_id = ?)",
                )
                .bind(incident)
                .bind(other)
                .fetch_one(&mut **tx)
                .await?;
                if listed != 0 {
                    kept = true;
                    break;
                }
                let area = match areas.entry(incident) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let (json,): (String,) =
                            sqlx::query_as("SELECT area FROM incidents WHERE id = ?")
                                .bind(incident)
                                .fetch_one(&mut **tx)
                                .await?;
                        e.insert(serde_json::from_str(&json).map_err(|err| {
                            StoreError::Corrupt(format!("incident {incident} area: {err}"))
                        })?)
                    }
                };
                let inside = LonLat::parse(lon, lat)
                    .map(|p| area.contains(p))
                    .map_err(|e| StoreError::Corrupt(format!("customer {other}: {e}")))?;
                if inside {
                    kept = true;
                    break;
                }
            }
            if !kept {
                disarmed += sqlx::query(
                    "UPDATE ivr_flags SET disarmed_at = ? WHERE phone = ? AND incident_id = ?
                       AND disarmed_at IS NULL",
                )
                .bind(now)
                .bind(phone.e164())
                .bind(incident)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            }
        }
    }
    Ok(disarmed)
}

/// Marks the customers as changed for every process (see
/// [`SqliteStore::customers_generation`]); call inside the transaction that changes them.
pub(crate) async fn bump_customers_generation(tx: &mut Transaction<'static, Sqlite>) -> Result<()> {
    sqlx::query("UPDATE meta SET value = value + 1 WHERE key = ?")
        .bind(GENERATION_KEY)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Customers per upsert statement: 8 values a row, 4,000 bound variables, well under
/// SQLite's limit of 32,766.
const UPSERT_CHUNK: usize = 500;
/// Contacts per insert statement: 5 values a row.
const CONTACT_CHUNK: usize = 1_000;

/// The last row of each account, in the order of the account's first row: what an import
/// that names an account several times writes.
pub(crate) fn last_row_per_account(customers: &[Customer]) -> Vec<&Customer> {
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
    rows
}

/// A customer's contacts as stored, in their `position` order: (medium, value, phone kind),
/// phones first.
pub(crate) fn contact_rows(
    c: &Customer,
) -> impl Iterator<Item = (&'static str, &str, Option<&'static str>)> {
    let phones = c
        .phones()
        .iter()
        .map(|p| ("phone", p.e164(), Some(p.kind().as_str())));
    let emails = c.emails().iter().map(|e| ("email", e.as_str(), None));
    phones.chain(emails)
}

/// Upserts one chunk of distinct accounts and replaces their contacts; returns how many were
/// new.
async fn upsert_chunk(
    tx: &mut Transaction<'static, Sqlite>,
    chunk: &[&Customer],
    now_s: &str,
) -> Result<usize> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO customers (account_id, lon, lat, address, language, priority, created_at, updated_at) ",
    );
    sql.push_values(chunk, |mut row, c| {
        row.push_bind(c.account_id().as_str())
            .push_bind(c.location().lon())
            .push_bind(c.location().lat())
            .push_bind(c.address())
            .push_bind(c.language().code())
            .push_bind(i64::from(c.priority()))
            .push_bind(now_s)
            .push_bind(now_s);
    });
    sql.push(
        " ON CONFLICT (account_id) DO UPDATE SET
           lon = excluded.lon, lat = excluded.lat, address = excluded.address,
           language = excluded.language, priority = excluded.priority,
           updated_at = excluded.updated_at
         RETURNING account_id, id, created_at",
    );
    // RETURNING rows come in no promised order: match them up by account.
    let returned: Vec<(String, i64, String)> = sql.build_query_as().fetch_all(&mut **tx).await?;
    let ids: HashMap<String, (i64, bool)> = returned
        .into_iter()
        .map(|(account, id, created_at)| (account, (id, created_at == now_s)))
        .collect();
    let mut inserted = 0;
    let mut replaced = Vec::new();
    let mut contacts: Vec<(i64, &'static str, &str, Option<&'static str>, i64)> = Vec::new();
    for c in chunk {
        let Some(&(id, new)) = ids.get(c.account_id().as_str()) else {
            return Err(StoreError::Corrupt(format!(
                "the upsert of account {} returned no row",
                c.account_id().as_str()
            )));
        };
        if new {
            inserted += 1;
        } else {
            replaced.push(id);
        }
        for (position, (medium, value, kind)) in contact_rows(c).enumerate() {
            contacts.push((
                id,
                medium,
                value,
                kind,
                i64::try_from(position).unwrap_or(i64::MAX),
            ));
        }
    }
    if !replaced.is_empty() {
        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM contacts WHERE customer_id IN (");
        let mut ids = delete.separated(", ");
        for id in &replaced {
            ids.push_bind(*id);
        }
        delete.push(")");
        delete.build().execute(&mut **tx).await?;
    }
    for part in contacts.chunks(CONTACT_CHUNK) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO contacts (customer_id, medium, value, kind, position) ",
        );
        insert.push_values(part, |mut row, (id, medium, value, kind, position)| {
            row.push_bind(*id)
                .push_bind(*medium)
                .push_bind(*value)
                .push_bind(*kind)
                .push_bind(*position);
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(inserted)
}

/// Customers from their rows and their contacts' rows (ordered by customer, then position).
pub(crate) fn assemble(
    rows: Vec<CustomerRow>,
    contacts: Vec<ContactRow>,
) -> Result<Vec<(CustomerId, Customer)>> {
    let mut by_customer: HashMap<i64, (Vec<PhoneNumber>, Vec<EmailAddress>)> = HashMap::new();
    for (cid, medium, value, kind) in contacts {
        let entry = by_customer.entry(cid).or_default();
        match medium.as_str() {
            "phone" => {
                let kind = stored(kind.as_deref().unwrap_or("landline"), PhoneKind::parse)?;
                entry.0.push(PhoneNumber::from_stored(value, kind));
            }
            _ => entry.1.push(stored(&value, EmailAddress::parse)?),
        }
    }
    rows.into_iter()
        .map(|(id, account, lon, lat, address, language, priority)| {
            let (phones, emails) = by_customer.remove(&id).unwrap_or_default();
            let customer = Customer::new(CustomerParts {
                account_id: stored(&account, AccountId::parse)?,
                location: LonLat::parse(lon, lat)
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?,
                address,
                phones,
                emails,
                language: stored(&language, Language::parse)?,
                priority: priority != 0,
            });
            Ok((CustomerId(id), customer))
        })
        .collect()
}
