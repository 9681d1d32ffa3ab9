//! The customer statements PostgreSQL says its own way: bulk writes over `UNNEST` of arrays.

use chrono::{DateTime, Utc};
use outagecast_core::customer::Customer;
use sqlx::postgres::PgConnection;

use crate::backend::ContactInsert;
use crate::{Result, StoreError};

/// Customers are written this many to a statement: large enough that per-statement costs
/// vanish, small enough that the arrays stay a few megabytes.
pub(super) const CUSTOMER_CHUNK: usize = 20_000;

pub(super) async fn upsert_customer_rows(
    c: &mut PgConnection,
    chunk: &[&Customer],
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64, bool)>> {
    let n = chunk.len();
    let mut accounts = Vec::with_capacity(n);
    let mut lons = Vec::with_capacity(n);
    let mut lats = Vec::with_capacity(n);
    let mut addresses = Vec::with_capacity(n);
    let mut languages = Vec::with_capacity(n);
    let mut priorities = Vec::with_capacity(n);
    let mut channels: Vec<Option<&str>> = Vec::with_capacity(n);
    for customer in chunk {
        accounts.push(customer.account_id().as_str());
        lons.push(customer.location().lon());
        lats.push(customer.location().lat());
        addresses.push(customer.address());
        languages.push(customer.language().code());
        priorities.push(customer.priority());
        channels.push(customer.channel().map(|c| c.as_str()));
    }
    // `xmax = 0` tells a row this statement inserted from one it updated. WITH ORDINALITY +
    // ORDER BY hands out new ids in the order of the rows.
    Ok(sqlx::query_as(
        "INSERT INTO customers (account_id, lon, lat, address, language, priority, channel, created_at, updated_at)
         SELECT a, x, y, addr, lang, prio, chan, $8, $8
           FROM UNNEST($1::text[], $2::float8[], $3::float8[], $4::text[], $5::text[], $6::bool[],
                       $7::text[])
                WITH ORDINALITY AS u(a, x, y, addr, lang, prio, chan, ord)
          ORDER BY ord
         ON CONFLICT (account_id) DO UPDATE SET
           lon = excluded.lon, lat = excluded.lat, address = excluded.address,
           language = excluded.language, priority = excluded.priority,
           channel = excluded.channel, updated_at = excluded.updated_at
         RETURNING account_id, id, (xmax = 0)",
    )
    .bind(&accounts)
    .bind(&lons)
    .bind(&lats)
    .bind(&addresses)
    .bind(&languages)
    .bind(&priorities)
    .bind(&channels)
    .bind(now)
    .fetch_all(c)
    .await?)
}

pub(super) async fn insert_contacts(
    c: &mut PgConnection,
    contacts: &[ContactInsert<'_>],
) -> Result<()> {
    let owners: Vec<i64> = contacts.iter().map(|k| k.customer_id).collect();
    let media: Vec<&str> = contacts.iter().map(|k| k.medium).collect();
    let values: Vec<&str> = contacts.iter().map(|k| k.value).collect();
    let kinds: Vec<Option<&str>> = contacts.iter().map(|k| k.kind).collect();
    let positions = contacts
        .iter()
        .map(|k| i32::try_from(k.position))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|e| StoreError::Corrupt(format!("contact position: {e}")))?;
    sqlx::query(
        "INSERT INTO contacts (customer_id, medium, value, kind, position)
         SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int4[])",
    )
    .bind(&owners)
    .bind(&media)
    .bind(&values)
    .bind(&kinds)
    .bind(&positions)
    .execute(c)
    .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use outagecast_core::customer::CustomerId;

    use crate::fixtures::customer_at as customer;
    use crate::ops::customers::{
        customer_count, customers_generation, service_points, upsert_customers,
    };
    use crate::pg::PgStore;
    use crate::pg::test_support::{schema_name, url};

    /// The contacts of a customer as stored: (medium, value, kind), in the order given.
    async fn contacts_of(store: &PgStore, id: CustomerId) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as(
            "SELECT medium, value, kind FROM contacts WHERE customer_id = $1 ORDER BY position",
        )
        .bind(id.0)
        .fetch_all(&store.pool)
        .await
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
        let s = upsert_customers(&store, &first, "test", "a.csv", now)
            .await
            .unwrap();
        assert_eq!((s.inserted, s.updated), (2, 0));
        let generation = customers_generation(&store).await.unwrap();

        // A again (twice: the last row wins) and a new C, also given twice.
        let second = vec![
            customer("A", "24.9000", "+358482222222", ""),
            customer("C", "24.9416", "+358483333333", ""),
            customer("A", "24.9500", "+358482222222;+358481111111", ""),
            customer("C", "24.9417", "+358483333333", "c@example.com"),
        ];
        let later = now + chrono::Duration::seconds(1);
        let s = upsert_customers(&store, &second, "test", "b.csv", later)
            .await
            .unwrap();
        assert_eq!((s.inserted, s.updated), (1, 3));
        assert_eq!(customer_count(&store).await.unwrap(), 3);
        assert_eq!(customers_generation(&store).await.unwrap(), generation + 1);

        let points = service_points(&store).await.unwrap();
        let ids: Vec<i64> = points.iter().map(|(id, _)| id.0).collect();
        assert_eq!(ids.len(), 3);
        // A kept its id and took its last row.
        let (a, at) = points[0];
        assert_eq!(at.lon(), 24.95);
        let contacts = contacts_of(&store, a).await;
        assert_eq!(
            contacts
                .iter()
                .map(|(m, v, _)| (m.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            vec![("phone", "+358482222222"), ("phone", "+358481111111")]
        );
        let (c, at) = points[2];
        assert_eq!(at.lon(), 24.9417);
        assert_eq!(contacts_of(&store, c).await.len(), 2);

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
