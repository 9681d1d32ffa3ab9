//! Customers, their contacts and the opt-out register.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, EmailAddress, Language, PhoneKind, PhoneNumber};
use outagecast_core::customer::{AccountId, Customer, CustomerId, CustomerParts};
use serde::Serialize;
use sqlx::{Sqlite, Transaction};

use crate::{Result, SqliteStore, StoreError, audit, stored, ts};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// New accounts.
    pub inserted: usize,
    /// Accounts that existed and were replaced by the new row.
    pub updated: usize,
}

type CustomerRow = (i64, String, f64, f64, String, String, i64);
type ContactRow = (i64, String, String, Option<String>);

impl SqliteStore {
    /// Inserts or replaces customers by account id, in one transaction with an audit entry.
    /// Contacts are replaced; opt-outs are keyed by contact, not account, so they survive.
    pub async fn upsert_customers(
        &self,
        customers: &[Customer],
        actor: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportSummary> {
        let mut tx = self.write_tx().await?;
        let mut summary = ImportSummary::default();
        let now_s = ts(now);
        // An account given twice in one import is inserted once, then updated.
        let mut inserted_now: HashSet<i64> = HashSet::new();
        for c in customers {
            let (id, created_at): (i64, String) = sqlx::query_as(
                "INSERT INTO customers (account_id, lon, lat, address, language, priority, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (account_id) DO UPDATE SET
                   lon = excluded.lon, lat = excluded.lat, address = excluded.address,
                   language = excluded.language, priority = excluded.priority,
                   updated_at = excluded.updated_at
                 RETURNING id, created_at",
            )
            .bind(c.account_id().as_str())
            .bind(c.location().lon())
            .bind(c.location().lat())
            .bind(c.address())
            .bind(c.language().code())
            .bind(i64::from(c.priority()))
            .bind(&now_s)
            .bind(&now_s)
            .fetch_one(&mut *tx)
            .await?;
            if created_at == now_s && inserted_now.insert(id) {
                summary.inserted += 1;
            } else {
                summary.updated += 1;
                sqlx::query("DELETE FROM contacts WHERE customer_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_contacts(&mut tx, id, c).await?;
        }
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

async fn insert_contacts(
    tx: &mut Transaction<'static, Sqlite>,
    id: i64,
    c: &Customer,
) -> Result<()> {
    let phones = c
        .phones()
        .iter()
        .map(|p| ("phone", p.e164(), Some(p.kind().as_str())));
    let emails = c.emails().iter().map(|e| ("email", e.as_str(), None));
    for (position, (medium, value, kind)) in phones.chain(emails).enumerate() {
        sqlx::query(
            "INSERT INTO contacts (customer_id, medium, value, kind, position) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(medium)
        .bind(value)
        .bind(kind)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn assemble(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::{customer, fresh};

    #[tokio::test]
    async fn reimport_updates_instead_of_duplicating_and_keeps_opt_outs() {
        let (store, _dir) = fresh().await;
        let now = Utc::now();
        let first = vec![customer("A", "+358481111111", "a@example.com")];
        let s = store
            .upsert_customers(&first, "test", "a.csv", now)
            .await
            .unwrap();
        assert_eq!(
            s,
            ImportSummary {
                inserted: 1,
                updated: 0
            }
        );
        store
            .opt_out(Channel::Sms, "+358481111111", "test", now)
            .await
            .unwrap();

        let second = vec![customer("A", "+358482222222;+358481111111", "")];
        let later = now + chrono::Duration::seconds(1);
        let s = store
            .upsert_customers(&second, "test", "a.csv", later)
            .await
            .unwrap();
        assert_eq!(
            s,
            ImportSummary {
                inserted: 0,
                updated: 1
            }
        );
        assert_eq!(store.customer_count().await.unwrap(), 1);

        let (id, c) = store
            .customer_by_account(&AccountId::parse("A").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.phones().len(), 2);
        assert!(c.emails().is_empty());
        assert_eq!(store.customers(&[id]).await.unwrap()[0].1, c);
        assert!(
            store
                .opt_outs()
                .await
                .unwrap()
                .contains(&(Channel::Sms, "+358481111111".to_string()))
        );
        let log = store.audit_log(10).await.unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].action, "customers.import");
    }
}
