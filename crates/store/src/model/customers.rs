//! Customers and their contacts as the store keeps them, and the rules of an import.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use outagecast_core::area::LonLat;
use outagecast_core::contact::{Channel, EmailAddress, Language, PhoneKind, PhoneNumber};
use outagecast_core::customer::{AccountId, Customer, CustomerId, CustomerParts};
use serde::Serialize;

use crate::backend::Record;
use crate::model::stored;
use crate::{Result, StoreError};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// New accounts.
    pub inserted: usize,
    /// Accounts that existed and were replaced by the new row.
    pub updated: usize,
}

/// The most customers one page returns, whatever the caller asks for.
pub const MAX_CUSTOMER_PAGE: u32 = 1000;

/// `meta` key of the counter bumped by every change to the customers.
pub(crate) const GENERATION_KEY: &str = "customers_generation";

/// The customer columns [`assemble`] reads, in order.
pub(crate) const CUSTOMER_COLUMNS: &str =
    "id, account_id, lon, lat, address, language, priority, channel";

/// The contact columns [`assemble`] reads, in order.
pub(crate) const CONTACT_COLUMNS: &str = "customer_id, medium, value, kind";

/// The last row of each account, in the order of the account's first row: what an import
/// that names an account several times writes.
pub(crate) fn last_row_per_account(customers: &[Customer]) -> Vec<&Customer> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(customers.len());
    let mut rows: Vec<&Customer> = Vec::with_capacity(customers.len());
    for c in customers {
        match position.entry(c.account_id().as_str()) {
            Entry::Occupied(e) => rows[*e.get()] = c,
            Entry::Vacant(e) => {
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
            "channel": before.channel().map(|c| c.as_str()),
            "phones": before.phones().len(),
            "emails": before.emails().len(),
        },
        "withdrawn_notices": withdrawn,
        "disarmed_numbers": disarmed,
    })
}

/// A service point from `id, lon, lat`.
pub(crate) fn service_point(r: &impl Record) -> Result<(CustomerId, LonLat)> {
    let id = r.i64(0)?;
    let p = LonLat::parse(r.f64(1)?, r.f64(2)?)
        .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?;
    Ok((CustomerId(id), p))
}

/// Customers from their [`CUSTOMER_COLUMNS`] rows and their contacts' [`CONTACT_COLUMNS`] rows
/// (ordered by customer, then position).
pub(crate) fn assemble<R: Record>(
    rows: &[R],
    contacts: &[R],
) -> Result<Vec<(CustomerId, Customer)>> {
    let mut by_customer: HashMap<i64, (Vec<PhoneNumber>, Vec<EmailAddress>)> = HashMap::new();
    for c in contacts {
        let entry = by_customer.entry(c.i64(0)?).or_default();
        let value = c.text(2)?;
        match c.text(1)?.as_str() {
            "phone" => {
                let kind = c.opt_text(3)?;
                let kind = stored(kind.as_deref().unwrap_or("landline"), PhoneKind::parse)?;
                entry.0.push(PhoneNumber::from_stored(value, kind));
            }
            _ => entry.1.push(stored(&value, EmailAddress::parse)?),
        }
    }
    rows.iter()
        .map(|r| {
            let id = r.i64(0)?;
            let (phones, emails) = by_customer.remove(&id).unwrap_or_default();
            let customer = Customer::new(CustomerParts {
                account_id: stored(&r.text(1)?, AccountId::parse)?,
                location: LonLat::parse(r.f64(2)?, r.f64(3)?)
                    .map_err(|e| StoreError::Corrupt(format!("customer {id}: {e}")))?,
                address: r.text(4)?,
                phones,
                emails,
                language: stored(&r.text(5)?, Language::parse)?,
                priority: r.bool(6)?,
                channel: r
                    .opt_text(7)?
                    .map(|c| stored(&c, Channel::parse))
                    .transpose()?,
            });
            Ok((CustomerId(id), customer))
        })
        .collect()
}
