//! Customers, their contacts and the opt-out register: import, reads, pages, deletion and the
//! customers generation.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, LonLat};
use outagecast_core::contact::Channel;
use outagecast_core::customer::{AccountId, Customer, CustomerId};

use crate::backend::{Backend, Bulk, ContactInsert, Record, Sql};
use crate::model::customers::{
    CONTACT_COLUMNS, CUSTOMER_COLUMNS, GENERATION_KEY, ImportSummary, MAX_CUSTOMER_PAGE, assemble,
    contact_rows, delete_details, last_row_per_account, service_point,
};
use crate::model::{count, stored};
use crate::ops::audit;
use crate::{Result, StoreError};

/// Inserts or replaces customers by account id, in one transaction with an audit entry.
/// Contacts are replaced; opt-outs are keyed by contact, not account, so they survive. An
/// account given several times in one import ends as its last row; it counts once as inserted
/// (when new) and then as updated for every repeat. New accounts get ids in the order of their
/// first row.
///
/// Written in multi-row statements ([`Backend::CUSTOMER_CHUNK`] customers at a time): a
/// statement a row cost a round trip each, and 100,000 customers took 27 s on SQLite.
pub(crate) async fn upsert_customers<B: Backend>(
    b: &B,
    customers: &[Customer],
    actor: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<ImportSummary> {
    let rows = last_row_per_account(customers);
    let mut tx = b.begin().await?;
    let mut inserted = 0;
    for chunk in rows.chunks(B::CUSTOMER_CHUNK) {
        inserted += upsert_chunk::<B>(&mut tx, chunk, now).await?;
    }
    let summary = ImportSummary {
        inserted,
        updated: customers.len() - inserted,
    };
    bump_customers_generation::<B>(&mut tx).await?;
    audit::write::<B>(
        &mut tx,
        actor,
        "customers.import",
        Some(source),
        &serde_json::json!({ "inserted": summary.inserted, "updated": summary.updated }),
        now,
    )
    .await?;
    B::commit(tx).await?;
    b.after_bulk_write(Bulk::Customers, customers.len()).await;
    Ok(summary)
}

/// Upserts one chunk of distinct accounts and replaces their contacts; returns how many were
/// new.
async fn upsert_chunk<B: Backend>(
    c: &mut B::Conn,
    chunk: &[&Customer],
    now: DateTime<Utc>,
) -> Result<usize> {
    let written = B::upsert_customer_rows(c, chunk, now).await?;
    if written.len() != chunk.len() {
        return Err(StoreError::Corrupt(format!(
            "upserting {} customers wrote {} rows",
            chunk.len(),
            written.len()
        )));
    }
    // The rows come in no promised order: match them up by account.
    let ids: HashMap<String, (i64, bool)> = written
        .into_iter()
        .map(|(account, id, new)| (account, (id, new)))
        .collect();
    let mut inserted = 0;
    let mut replaced = Vec::new();
    let mut contacts = Vec::new();
    for customer in chunk {
        let Some(&(id, new)) = ids.get(customer.account_id().as_str()) else {
            return Err(StoreError::Corrupt(format!(
                "the upsert of account {} returned no row",
                customer.account_id().as_str()
            )));
        };
        if new {
            inserted += 1;
        } else {
            replaced.push(id);
        }
        for (position, (medium, value, kind)) in contact_rows(customer).enumerate() {
            contacts.push(ContactInsert {
                customer_id: id,
                medium,
                value,
                kind,
                position: i64::try_from(position).unwrap_or(i64::MAX),
            });
        }
    }
    if !replaced.is_empty() {
        B::execute(
            c,
            Sql::built(format!(
                "DELETE FROM contacts WHERE customer_id {}",
                B::in_list(1)
            ))
            .arg(replaced),
        )
        .await?;
    }
    if !contacts.is_empty() {
        B::insert_contacts(c, &contacts).await?;
    }
    Ok(inserted)
}

/// Marks the customers as changed for every process (see [`customers_generation`]); call
/// inside the transaction that changes them.
async fn bump_customers_generation<B: Backend>(c: &mut B::Conn) -> Result<()> {
    B::execute(
        c,
        Sql::new("UPDATE meta SET value = value + 1 WHERE key = $1").arg(GENERATION_KEY),
    )
    .await?;
    Ok(())
}

/// Every service point, for building the spatial index, in id order.
pub(crate) async fn service_points<B: Backend>(b: &B) -> Result<Vec<(CustomerId, LonLat)>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new("SELECT id, lon, lat FROM customers ORDER BY id"),
    )
    .await?;
    rows.iter().map(service_point).collect()
}

/// The number of customers.
pub(crate) async fn customer_count<B: Backend>(b: &B) -> Result<u64> {
    let row = B::fetch_one(
        &mut *b.conn().await?,
        Sql::new("SELECT COUNT(*) FROM customers"),
    )
    .await?;
    Ok(count(row.i64(0)?))
}

/// A counter that changes (grows) in every transaction that inserts, updates or deletes
/// customers, whichever process made it. A long-running process that keeps customers in
/// memory (the R-tree) notes it when it loads them and compares before using them: a
/// different value means reload.
pub(crate) async fn customers_generation<B: Backend>(b: &B) -> Result<i64> {
    let row = B::fetch_one(
        &mut *b.conn().await?,
        Sql::new("SELECT value FROM meta WHERE key = $1").arg(GENERATION_KEY),
    )
    .await?;
    row.i64(0)
}

/// The contacts of these customers, ordered by customer and position.
async fn contacts_of_ids<B: Backend>(c: &mut B::Conn, ids: Vec<i64>) -> Result<Vec<B::Row>> {
    B::fetch_all(
        c,
        Sql::built(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts
             WHERE customer_id {} ORDER BY customer_id, position",
            B::in_list(1)
        ))
        .arg(ids),
    )
    .await
}

/// The customers with these ids (any that do not exist are left out), in id order; customers
/// and contacts from one snapshot.
pub(crate) async fn customers<B: Backend>(
    b: &B,
    ids: &[CustomerId],
) -> Result<Vec<(CustomerId, Customer)>> {
    let ids: Vec<i64> = ids.iter().map(|i| i.0).collect();
    let mut tx = b.snapshot().await?;
    let rows = B::fetch_all(
        &mut tx,
        Sql::built(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id {} ORDER BY id",
            B::in_list(1)
        ))
        .arg(ids.clone()),
    )
    .await?;
    let contacts = contacts_of_ids::<B>(&mut tx, ids).await?;
    B::commit(tx).await?;
    assemble(&rows, &contacts)
}

/// The customer with this account id.
pub(crate) async fn customer_by_account<B: Backend>(
    b: &B,
    account: &AccountId,
) -> Result<Option<(CustomerId, Customer)>> {
    let id = B::fetch_optional(
        &mut *b.conn().await?,
        Sql::new("SELECT id FROM customers WHERE account_id = $1").arg(account.as_str()),
    )
    .await?;
    match id {
        Some(row) => Ok(customers(b, &[CustomerId(row.i64(0)?)]).await?.pop()),
        None => Ok(None),
    }
}

/// Customers ordered by account id (bytewise), for listing a page at a time: those after the
/// account id `after` (the last one of the previous page; `None` for the first page), at most
/// `limit` of them (capped at [`MAX_CUSTOMER_PAGE`]). A page shorter than `limit` is the last.
pub(crate) async fn customers_page<B: Backend>(
    b: &B,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(CustomerId, Customer)>> {
    let limit = limit.min(MAX_CUSTOMER_PAGE);
    if limit == 0 {
        return Ok(vec![]);
    }
    let bytewise = B::BYTEWISE;
    let mut sql = Sql::built(format!("SELECT {CUSTOMER_COLUMNS} FROM customers"));
    if let Some(after) = after {
        sql.push(&format!(" WHERE account_id{bytewise} > "))
            .push_arg(after);
    }
    sql.push(&format!(" ORDER BY account_id{bytewise} LIMIT "))
        .push_arg(limit);
    let mut tx = b.snapshot().await?;
    let rows = B::fetch_all(&mut tx, sql).await?;
    let ids = rows.iter().map(|r| r.i64(0)).collect::<Result<Vec<_>>>()?;
    let contacts = contacts_of_ids::<B>(&mut tx, ids).await?;
    B::commit(tx).await?;
    assemble(&rows, &contacts)
}

/// The opt-out register: every (channel, address) that must not be contacted.
pub(crate) async fn opt_outs<B: Backend>(b: &B) -> Result<HashSet<(Channel, String)>> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::new("SELECT channel, address FROM opt_outs"),
    )
    .await?;
    rows.iter()
        .map(|r| Ok((stored(&r.text(0)?, Channel::parse)?, r.text(1)?)))
        .collect()
}

/// Opts a contact out of a channel (idempotent), with an audit entry.
pub(crate) async fn opt_out<B: Backend>(
    b: &B,
    channel: Channel,
    address: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = b.begin().await?;
    insert_opt_out::<B>(&mut tx, channel, address, source, now).await?;
    audit::write::<B>(
        &mut tx,
        source,
        "contact.opt_out",
        None,
        &serde_json::json!({ "channel": channel.as_str() }),
        now,
    )
    .await?;
    B::commit(tx).await
}

/// Records an opt-out (idempotent: keyed by channel and address); whether it is new.
pub(crate) async fn insert_opt_out<B: Backend>(
    c: &mut B::Conn,
    channel: Channel,
    address: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let n = B::execute(
        c,
        Sql::new(
            "INSERT INTO opt_outs (channel, address, at, source) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, address) DO NOTHING",
        )
        .arg(channel.as_str())
        .arg(address)
        .arg(now)
        .arg(source),
    )
    .await?;
    Ok(n > 0)
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
pub(crate) async fn delete_customer<B: Backend>(
    b: &B,
    account_id: &AccountId,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = b.begin().await?;
    // Locked: a concurrent deletion of the same account waits, then finds nothing.
    let row = B::fetch_optional(
        &mut tx,
        Sql::built(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE account_id = $1{}",
            B::LOCK_ROWS
        ))
        .arg(account_id.as_str()),
    )
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let id = row.i64(0)?;
    let contacts = contacts_of_ids::<B>(&mut tx, vec![id]).await?;
    let Some((_, before)) = assemble(&[row], &contacts)?.pop() else {
        return Err(StoreError::Corrupt(format!("customer {id} vanished")));
    };

    // Every incident the customer is in the affected set of: one primary-key probe per
    // incident rather than a scan of every affected set.
    let incidents = B::fetch_all(
        &mut tx,
        Sql::new(
            "SELECT i.id FROM incidents i
             WHERE EXISTS (SELECT 1 FROM incident_customers ic
                           WHERE ic.incident_id = i.id AND ic.customer_id = $1)",
        )
        .arg(id),
    )
    .await?;
    let incidents = incidents
        .iter()
        .map(|r| r.i64(0))
        .collect::<Result<Vec<_>>>()?;

    // Notices of those incidents waiting to go to this customer (linked to them, or to one of
    // their contacts: an email fallback has no link of its own), unless someone else still
    // stands behind the contact. A notice handed over to a provider may be on the wire: it
    // finishes; one only claimed is withdrawn (its worker cannot hand it over now).
    let withdrawn = B::execute(
        &mut tx,
        Sql::built(format!(
            "UPDATE notices SET status = 'superseded', last_error = 'customer deleted',
                    in_doubt = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
             WHERE incident_id {}
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
            B::in_list(3)
        ))
        .arg(now)
        .arg(id)
        .arg(incidents.clone()),
    )
    .await?;

    let disarmed = disarm_numbers::<B>(&mut tx, id, &before, now).await?;

    B::execute(
        &mut tx,
        Sql::built(format!(
            "DELETE FROM notice_customers WHERE customer_id = $1
               AND notice_id IN (SELECT n.id FROM notices n WHERE n.incident_id {})",
            B::in_list(2)
        ))
        .arg(id)
        .arg(incidents.clone()),
    )
    .await?;
    B::execute(
        &mut tx,
        Sql::built(format!(
            "DELETE FROM incident_customers WHERE customer_id = $1 AND incident_id {}",
            B::in_list(2)
        ))
        .arg(id)
        .arg(incidents),
    )
    .await?;
    // Contacts go with the row (ON DELETE CASCADE).
    B::execute(
        &mut tx,
        Sql::new("DELETE FROM customers WHERE id = $1").arg(id),
    )
    .await?;
    bump_customers_generation::<B>(&mut tx).await?;
    audit::write::<B>(
        &mut tx,
        actor,
        "customer.delete",
        Some(&format!("customer:{}", account_id.as_str())),
        &delete_details(&before, withdrawn, disarmed),
        now,
    )
    .await?;
    B::commit(tx).await?;
    Ok(true)
}

/// Disarms the IVR flags of `gone`'s phone numbers, except where another customer with the
/// number is affected by the flag's incident: in its affected set, or inside its area (a
/// customer imported after the declaration is armed by re-arming, not added to the set).
/// Returns how many flags were disarmed. The flags are locked while they are weighed.
async fn disarm_numbers<B: Backend>(
    c: &mut B::Conn,
    gone: i64,
    customer: &Customer,
    now: DateTime<Utc>,
) -> Result<u64> {
    let phones: Vec<&str> = customer.phones().iter().map(|p| p.e164()).collect();
    if phones.is_empty() {
        return Ok(0);
    }
    let flags = B::fetch_all(
        c,
        Sql::built(format!(
            "SELECT phone, incident_id FROM ivr_flags
              WHERE phone {} AND disarmed_at IS NULL
              ORDER BY phone, incident_id{}",
            B::in_list(1),
            B::LOCK_ROWS
        ))
        .arg(phones.clone()),
    )
    .await?;
    let flags = flags
        .iter()
        .map(|r| Ok((r.text(0)?, r.i64(1)?)))
        .collect::<Result<Vec<_>>>()?;
    if flags.is_empty() {
        return Ok(0);
    }
    // Everyone else with one of the numbers, and which of the flags' incidents list them.
    let others = B::fetch_all(
        c,
        Sql::built(format!(
            "SELECT k.value, c.id, c.lon, c.lat FROM contacts k
               JOIN customers c ON c.id = k.customer_id
              WHERE k.medium = 'phone' AND k.value {} AND c.id <> $2",
            B::in_list(1)
        ))
        .arg(phones)
        .arg(gone),
    )
    .await?;
    let others = others
        .iter()
        .map(|r| Ok((r.text(0)?, r.i64(1)?, r.f64(2)?, r.f64(3)?)))
        .collect::<Result<Vec<_>>>()?;
    let listed = if others.is_empty() {
        HashSet::new()
    } else {
        let rows = B::fetch_all(
            c,
            Sql::built(format!(
                "SELECT incident_id, customer_id FROM incident_customers
                  WHERE customer_id {} AND incident_id {}",
                B::in_list(1),
                B::in_list(2)
            ))
            .arg(others.iter().map(|o| o.1).collect::<Vec<_>>())
            .arg(flags.iter().map(|(_, i)| *i).collect::<Vec<_>>()),
        )
        .await?;
        rows.iter()
            .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
            .collect::<Result<HashSet<_>>>()?
    };

    let mut areas: HashMap<i64, Area> = HashMap::new();
    let mut disarmed = 0;
    for (phone, incident) in flags {
        let mut kept = false;
        for (_, other, lon, lat) in others.iter().filter(|o| o.0 == phone) {
            if listed.contains(&(incident, *other)) {
                kept = true;
                break;
            }
            let area = match areas.entry(incident) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let row = B::fetch_one(
                        c,
                        Sql::new("SELECT area FROM incidents WHERE id = $1").arg(incident),
                    )
                    .await?;
                    e.insert(serde_json::from_value(row.json(0)?).map_err(|err| {
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
            disarmed += B::execute(
                c,
                Sql::new(
                    "UPDATE ivr_flags SET disarmed_at = $1
                      WHERE phone = $2 AND incident_id = $3 AND disarmed_at IS NULL",
                )
                .arg(now)
                .arg(phone)
                .arg(incident),
            )
            .await?;
        }
    }
    Ok(disarmed)
}
