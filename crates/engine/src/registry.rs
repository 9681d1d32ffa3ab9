//! The registers behind the incidents: customers (import, page, get, delete), zones (import,
//! list), the audit log, and the IVR's view of one caller.

use chrono::{DateTime, Utc};
use outagecast_core::customer::{AccountId, Customer, CustomerId};
use outagecast_ingest::zone::zones_from_geojson;
use outagecast_store::{AuditEntry, AuditQuery, ImportSummary, IvrSnapshot, ZoneRecord};

use crate::views::{ZoneCountView, ZoneView, ZonesImportedView};
use crate::{Engine, Result};

/// A zones file as a front end received it.
#[derive(Debug, Clone, Copy)]
pub struct ZonesFile<'a> {
    /// The GeoJSON text.
    pub text: &'a str,
    /// How the front end names the file (`FILE`, `body`).
    pub field: &'a str,
    /// The feature property that names each zone.
    pub name_property: &'a str,
}

impl Engine {
    /// Imports parsed customers, rebuilds the index and re-arms the IVR of live incidents.
    pub async fn import(
        &self,
        actor: &str,
        customers: &[Customer],
        source: &str,
    ) -> Result<ImportSummary> {
        let summary = self
            .store
            .upsert_customers(customers, actor, source, Utc::now())
            .await?;
        // A re-import may move service points; rebuilding from the store is simplest and
        // takes well under a second for a city.
        self.reload_index().await?;
        self.rearm_ivr(actor, Utc::now()).await?;
        Ok(summary)
    }

    /// Deletes a customer (their unsent notices are withdrawn, their numbers disarmed).
    /// `false` when there was no such account.
    pub async fn delete_customer(&self, actor: &str, account: &AccountId) -> Result<bool> {
        let deleted = self
            .store
            .delete_customer(account, actor, Utc::now())
            .await?;
        if deleted {
            self.reload_index().await?;
        }
        Ok(deleted)
    }

    /// Up to `limit` customers by account id, after `after`.
    pub async fn customers_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(CustomerId, Customer)>> {
        Ok(self.store.customers_page(after, limit).await?)
    }

    /// One customer by account id.
    pub async fn customer(&self, account: &AccountId) -> Result<Option<Customer>> {
        Ok(self
            .store
            .customer_by_account(account)
            .await?
            .map(|(_, c)| c))
    }

    /// Imports the named zones of a GeoJSON file (one Polygon or MultiPolygon feature per
    /// zone, named by `name_property`; each within the vertex limit), replacing ones of the
    /// same name and recording `source`. `field` names the file in errors. The view has each
    /// zone with the customers it holds now.
    pub async fn import_zones(
        &self,
        actor: &str,
        file: ZonesFile<'_>,
        source: &str,
    ) -> Result<ZonesImportedView> {
        let zones = zones_from_geojson(
            file.text,
            file.field,
            file.name_property,
            &self.settings.limits,
        )?;
        let zones = zones.as_slice();
        let keys: Vec<String> = zones.iter().map(|z| z.name.key()).collect();
        let records: Vec<ZoneRecord<'_>> = zones
            .iter()
            .zip(&keys)
            .map(|(z, key)| ZoneRecord {
                name: z.name.as_str(),
                key,
                area: &z.area,
                properties: &z.properties,
            })
            .collect();
        let summary = self
            .store
            .upsert_zones(&records, actor, source, Utc::now())
            .await?;
        let counts = self.counts(zones.iter().map(|z| &z.area)).await?;
        Ok(ZonesImportedView {
            imported: zones.len(),
            inserted: summary.inserted,
            updated: summary.updated,
            zones: zones
                .iter()
                .zip(counts)
                .map(|(z, customers)| ZoneCountView {
                    name: z.name.to_string(),
                    customers,
                })
                .collect(),
        })
    }

    /// The zones by name, each with the customers it holds now.
    pub async fn zones(&self) -> Result<Vec<ZoneView>> {
        let zones = self.store.zones().await?;
        let counts = self.counts(zones.iter().map(|z| &z.area)).await?;
        Ok(zones
            .into_iter()
            .zip(counts)
            .map(|(z, c)| ZoneView::of(z, c))
            .collect())
    }

    /// A page of the audit log, newest first.
    pub async fn audit(&self, query: AuditQuery) -> Result<Vec<AuditEntry>> {
        Ok(self.store.audit_page(query).await?)
    }

    /// What the IVR holds for one caller (E.164) at `now`: the live incidents, and those
    /// closed since `closed_since`, with the caller's flags.
    pub async fn ivr_snapshot_for(
        &self,
        caller: &str,
        now: DateTime<Utc>,
        closed_since: DateTime<Utc>,
    ) -> Result<IvrSnapshot> {
        Ok(self
            .store
            .ivr_snapshot_for(caller, now, closed_since)
            .await?)
    }
}
