//! A utility's customer: an account at a service point, with the contacts to reach them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::area::LonLat;
use crate::contact::{Channel, EmailAddress, Language, PhoneNumber, Region};
use crate::error::{CoreError, Result};

/// The store's row id for a customer: the key of the spatial index and of notices. Dense and
/// cheap to copy, unlike the utility's [`AccountId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(pub i64);

/// The utility's own account number. Trimmed, 1–64 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// ```
    /// use outagecast_core::customer::AccountId;
    /// assert_eq!(AccountId::parse(" HEL-000001 ").unwrap().as_str(), "HEL-000001");
    /// assert!(AccountId::parse("").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.is_empty() {
            return Err(CoreError::invalid("account_id", "is empty"));
        }
        if t.chars().count() > 64 {
            return Err(CoreError::invalid(
                "account_id",
                "is longer than 64 characters",
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "account_id",
                "contains control characters",
            ));
        }
        Ok(AccountId(t.to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        AccountId::parse(&s)
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> Self {
        a.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer account. Built through [`Customer::new`] or [`CustomerRecord::parse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    account_id: AccountId,
    location: LonLat,
    address: String,
    phones: Vec<PhoneNumber>,
    emails: Vec<EmailAddress>,
    language: Language,
    priority: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<Channel>,
}

/// Everything needed to build a [`Customer`]; a struct so that call sites name each field.
#[derive(Debug, Clone)]
pub struct CustomerParts {
    /// The account.
    pub account_id: AccountId,
    /// The service point (the premises' connection).
    pub location: LonLat,
    /// The street address as the utility writes it.
    pub address: String,
    /// Phone numbers; duplicates are dropped.
    pub phones: Vec<PhoneNumber>,
    /// Email addresses; duplicates are dropped.
    pub emails: Vec<EmailAddress>,
    /// Preferred language.
    pub language: Language,
    /// Medically dependent or otherwise vulnerable: told first, always.
    pub priority: bool,
    /// The one channel the customer asked to be told by (`channel` column), used when they
    /// have a contact for it; `None`: every contact by its default channel (mobiles texted,
    /// landlines called, emails mailed).
    pub channel: Option<Channel>,
}

impl Customer {
    /// Builds a customer, dropping repeated contacts so each is reached once.
    pub fn new(parts: CustomerParts) -> Self {
        let CustomerParts {
            account_id,
            location,
            address,
            mut phones,
            mut emails,
            language,
            priority,
            channel,
        } = parts;
        dedup_in_order(&mut phones);
        dedup_in_order(&mut emails);
        Customer {
            account_id,
            location,
            address: address.trim().to_string(),
            phones,
            emails,
            language,
            priority,
            channel,
        }
    }

    /// The account id.
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }
    /// The service point.
    pub fn location(&self) -> LonLat {
        self.location
    }
    /// The street address.
    pub fn address(&self) -> &str {
        &self.address
    }
    /// Phone numbers, in the order given.
    pub fn phones(&self) -> &[PhoneNumber] {
        &self.phones
    }
    /// Email addresses, in the order given.
    pub fn emails(&self) -> &[EmailAddress] {
        &self.emails
    }
    /// Preferred language.
    pub fn language(&self) -> Language {
        self.language
    }
    /// Whether the customer is on the priority (medical/vulnerable) register.
    pub fn priority(&self) -> bool {
        self.priority
    }
    /// The channel the customer asked to be told by, if any.
    pub fn channel(&self) -> Option<Channel> {
        self.channel
    }
}

fn dedup_in_order<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut seen: Vec<T> = Vec::with_capacity(items.len());
    items.retain(|x| {
        if seen.contains(x) {
            false
        } else {
            seen.push(x.clone());
            true
        }
    });
}

/// One row of the customer CSV as text, before validation. Header:
/// `account_id,lon,lat,address,phone,email,language,priority,channel`. `phone` and `email` may
/// hold several values separated by `;`; `language` defaults to the configured default when
/// empty; `priority` is `true/false`, `yes/no` or `1/0` (empty is false); `channel` (optional:
/// `sms`, `email` or `voice`) is the one channel the customer asked for.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CustomerRecord {
    /// Account id.
    pub account_id: String,
    /// Longitude in degrees.
    pub lon: String,
    /// Latitude in degrees.
    pub lat: String,
    /// Street address.
    #[serde(default)]
    pub address: String,
    /// Phone numbers separated by `;`.
    #[serde(default)]
    pub phone: String,
    /// Email addresses separated by `;`.
    #[serde(default)]
    pub email: String,
    /// `fi`, `sv` or `en`.
    #[serde(default)]
    pub language: String,
    /// Priority flag.
    #[serde(default)]
    pub priority: String,
    /// `sms`, `email`, `voice`, or empty.
    #[serde(default)]
    pub channel: String,
}

/// The CSV header, in order.
pub const CSV_HEADER: [&str; 9] = [
    "account_id",
    "lon",
    "lat",
    "address",
    "phone",
    "email",
    "language",
    "priority",
    "channel",
];

/// Settings that shape how customer records are read.
#[derive(Debug, Clone, Copy)]
pub struct RecordRules {
    /// Region for national-format phone numbers.
    pub default_region: Option<Region>,
    /// Language for rows that leave it empty.
    pub default_language: Language,
}

impl CustomerRecord {
    /// Validates every field; the error names the first bad column and how to fix it.
    pub fn parse(&self, rules: RecordRules) -> Result<Customer> {
        let account_id = AccountId::parse(&self.account_id)?;
        let lon = parse_degrees(&self.lon, "lon")?;
        let lat = parse_degrees(&self.lat, "lat")?;
        let location = LonLat::parse(lon, lat).map_err(|e| match e {
            CoreError::Invalid { field, problem } => {
                CoreError::invalid(if field == "latitude" { "lat" } else { "lon" }, problem)
            }
            other => other,
        })?;
        let phones = split_list(&self.phone)
            .map(|p| PhoneNumber::parse(p, rules.default_region))
            .collect::<Result<Vec<_>>>()?;
        let emails = split_list(&self.email)
            .map(EmailAddress::parse)
            .collect::<Result<Vec<_>>>()?;
        let language = if self.language.trim().is_empty() {
            rules.default_language
        } else {
            Language::parse(&self.language)?
        };
        let priority = parse_flag(&self.priority)?;
        let channel = match self.channel.trim() {
            "" => None,
            text => Some(Channel::parse(text).map_err(|_| {
                CoreError::invalid(
                    "channel",
                    format!("{text:?} is not a channel; write sms, email or voice, or leave it empty for the default (mobiles texted, landlines called, emails mailed)"),
                )
            })?),
        };
        Ok(Customer::new(CustomerParts {
            account_id,
            location,
            address: self.address.clone(),
            phones,
            emails,
            language,
            priority,
            channel,
        }))
    }
}

fn parse_degrees(text: &str, field: &str) -> Result<f64> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CoreError::invalid(field, "is empty; give decimal degrees"));
    }
    t.parse::<f64>().map_err(|_| {
        CoreError::invalid(
            field,
            format!(
                "{t:?} is not a number; give decimal degrees like 24.9414 (a dot, not a comma)"
            ),
        )
    })
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_flag(text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" | "n" | "f" => Ok(false),
        "true" | "yes" | "1" | "y" | "t" => Ok(true),
        other => Err(CoreError::invalid(
            "priority",
            format!("{other:?} is not true or false"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules() -> RecordRules {
        RecordRules {
            default_region: Some(Region::parse("FI").unwrap()),
            default_language: Language::Fi,
        }
    }

    fn record() -> CustomerRecord {
        CustomerRecord {
            account_id: "HEL-1".into(),
            lon: "24.9414".into(),
            lat: "60.1710".into(),
            address: "Kaivokatu 1, 00100 Helsinki".into(),
            phone: "+358481234567; 0481234567 ;+358 9 310 1641".into(),
            email: "a@example.com".into(),
            language: "".into(),
            priority: "yes".into(),
            channel: String::new(),
        }
    }

    #[test]
    fn a_good_row_becomes_a_customer_with_duplicates_dropped() {
        let c = record().parse(rules()).unwrap();
        assert_eq!(
            c.phones().len(),
            2,
            "the national and E.164 forms are one number"
        );
        assert_eq!(c.language(), Language::Fi);
        assert!(c.priority());
        assert_eq!(c.channel(), None, "an empty channel is the default");
        let mut asking = record();
        asking.channel = " Voice ".into();
        assert_eq!(
            asking.parse(rules()).unwrap().channel(),
            Some(Channel::Voice)
        );
    }

    #[test]
    fn each_bad_column_is_named() {
        type Spoil = fn(&mut CustomerRecord);
        let cases: [(Spoil, &str); 7] = [
            (|r| r.account_id = " ".into(), "account_id"),
            (|r| r.lon = "24,94".into(), "lon"),
            (|r| r.lat = "160.1".into(), "lat"),
            (|r| r.phone = "12".into(), "phone"),
            (|r| r.email = "nobody".into(), "email"),
            (|r| r.priority = "maybe".into(), "priority"),
            (|r| r.channel = "fax".into(), "channel"),
        ];
        for (spoil, field) in cases {
            let mut r = record();
            spoil(&mut r);
            let err = r.parse(rules()).unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }

    #[test]
    fn swapped_coordinates_in_a_row_say_so() {
        let mut r = record();
        r.lon = "60.1710".into();
        r.lat = "124.9414".into();
        let err = r.parse(rules()).unwrap_err().to_string();
        assert!(err.contains("swapped"), "{err}");
    }
}
