//! What the engine's tests share: settings and a customer at a point.
#![allow(dead_code, clippy::unwrap_used)]

use outagecast_core::contact::Language;
use outagecast_core::customer::{Customer, CustomerRecord, RecordRules};
use outagecast_engine::Settings;

/// Helsinki time, the built-in wording, acting as `test`.
pub fn settings() -> Settings {
    Settings {
        default_region: None,
        timezone: chrono_tz::Europe::Helsinki,
        actor: "test".into(),
        templates: None,
        limits: Default::default(),
    }
}

/// A customer at (`lon`, `lat`) with a phone and a language.
pub fn customer(account: &str, lon: &str, lat: &str, phone: &str, language: &str) -> Customer {
    CustomerRecord {
        account_id: account.into(),
        lon: lon.into(),
        lat: lat.into(),
        address: format!("Testikatu {account}, Helsinki"),
        phone: phone.into(),
        email: String::new(),
        language: language.into(),
        priority: "false".into(),
        channel: String::new(),
    }
    .parse(RecordRules {
        default_region: None,
        default_language: Language::Fi,
    })
    .unwrap()
}
