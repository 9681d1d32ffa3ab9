//! Publishing an incident for other systems and the public: the incident as a CAP 1.2 alert
//! (`GET /v1/incidents/{id}/cap`, the public feeds). The engine gathers the values (history,
//! languages, texts); `outagecast_ingest::cap_out` writes the XML.
//!
//! The message follows the incident's history: declared → `Alert`; updated → `Update`;
//! restored → `Update` with `responseType` AllClear and urgency Past; cancelled → `Cancel`.
//! An Update or Cancel references this server's Alert and every CAP message the incident was
//! declared or changed by. Each message's identifier is the incident and the time of its last
//! change, so a receiver sees a new message exactly when the incident changed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use outagecast_core::contact::Language;
use outagecast_core::incident::{Incident, IncidentId, IncidentKind, IncidentStatus};
use outagecast_core::message::{announcement, kind_noun};
use outagecast_ingest::cap::{CapReference, CapSeverity, Certainty, MsgType, Status, Urgency};
use outagecast_ingest::cap_out::{self, CapInfoOut, CapMessage, cap_time, is_cap_identifier};

use outagecast_core::area::{Area, LonLat};

use crate::views::IncidentView;
use crate::{AreaSpec, Engine, Geocoding, Result, Spelling};

/// The setting for [`PublishSettings::cap_sender`].
pub const CAP_SENDER_KEY: &str = "OUTAGECAST_CAP_SENDER";
/// The public address of this server, shared with the webhooks.
pub const PUBLIC_URL_KEY: &str = "OUTAGECAST_PUBLIC_URL";

/// How incidents are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSettings {
    /// CAP `sender` (`OUTAGECAST_CAP_SENDER`): by default `outagecast@` and the public URL's
    /// host, else `outagecast@localhost`.
    pub cap_sender: String,
    /// The public base URL (`OUTAGECAST_PUBLIC_URL`), for the `web` link to the status page.
    pub public_url: Option<String>,
    /// Status lookups one client address may make per minute
    /// (`OUTAGECAST_STATUS_PER_MINUTE`, default 60).
    pub status_per_minute: u32,
    /// CAP `senderName` (`OUTAGECAST_SENDER_NAME`, the name the HELP reply and emails carry
    /// too): the utility's name as receivers show it.
    pub sender_name: Option<String>,
}

/// The setting for [`PublishSettings::sender_name`] (listed by the email and webhook
/// adapters, which read it too).
pub const SENDER_NAME_KEY: &str = "OUTAGECAST_SENDER_NAME";

/// The setting for [`PublishSettings::status_per_minute`].
pub const STATUS_RATE_KEY: &str = "OUTAGECAST_STATUS_PER_MINUTE";

impl Default for PublishSettings {
    fn default() -> Self {
        PublishSettings {
            cap_sender: "outagecast@localhost".to_string(),
            public_url: None,
            status_per_minute: 60,
            sender_name: None,
        }
    }
}

impl PublishSettings {
    /// The settings [`PublishSettings::from_lookup`] reads that no other adapter lists.
    pub const KEYS: &'static [(&'static str, Option<&'static str>)] = &[
        (
            CAP_SENDER_KEY,
            Some("outagecast@ and the public URL's host"),
        ),
        (STATUS_RATE_KEY, Some("60")),
    ];

    /// From settings looked up by name. A sender CAP cannot carry (spaces, commas, `<`, `&`)
    /// is refused, naming the setting.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> std::result::Result<Self, String> {
        let public_url = get(PUBLIC_URL_KEY)
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        let host = public_url.as_deref().and_then(|u| {
            let rest = u.split_once("://").map_or(u, |(_, r)| r);
            let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
            (!host.is_empty()).then(|| host.to_string())
        });
        let cap_sender = match get(CAP_SENDER_KEY) {
            Some(s) => {
                let s = s.trim().to_string();
                if !is_cap_identifier(&s) {
                    return Err(format!(
                        "{CAP_SENDER_KEY}: {s:?} cannot be a CAP sender: write it without spaces, commas, < or & (e.g. outages@utility.fi)"
                    ));
                }
                s
            }
            None => format!("outagecast@{}", host.as_deref().unwrap_or("localhost")),
        };
        let status_per_minute = match get(STATUS_RATE_KEY) {
            Some(t) => match t.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(format!(
                        "{STATUS_RATE_KEY}: {t:?} is not a positive whole number of lookups per minute"
                    ));
                }
            },
            None => 60,
        };
        let sender_name = get(SENDER_NAME_KEY)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        Ok(PublishSettings {
            cap_sender,
            public_url,
            status_per_minute,
            sender_name,
        })
    }

    /// The public status page, if the public URL is known.
    pub fn status_page(&self) -> Option<String> {
        self.public_url.as_ref().map(|u| format!("{u}/status"))
    }
}

/// The identifier of this server's message about `id` as of `at`.
fn identifier(id: IncidentId, at: DateTime<Utc>) -> String {
    format!("{}-{}", id.label(), at.format("%Y%m%dT%H%M%S%3fZ"))
}

fn categories(kind: IncidentKind) -> Vec<&'static str> {
    match kind {
        // A gas outage is also a safety matter (appliances relit by a fitter).
        IncidentKind::Gas => vec!["Infra", "Safety"],
        _ => vec!["Infra"],
    }
}

fn instruction(lang: Language, web: Option<&str>) -> String {
    let link = web.map(|w| format!(" {w}")).unwrap_or_default();
    match lang {
        Language::Fi => format!(
            "Seuraa tilannetta{}. Soita vain, jos vika jatkuu arvioidun korjausajan jälkeen.",
            if link.is_empty() {
                String::new()
            } else {
                format!(":{link}")
            }
        ),
        Language::Sv => format!(
            "Följ läget{}. Ring bara om felet fortsätter efter den beräknade tiden.",
            if link.is_empty() {
                String::new()
            } else {
                format!(":{link}")
            }
        ),
        Language::En => format!(
            "Follow updates{}. Call only if the fault continues after the estimated time.",
            if link.is_empty() {
                String::new()
            } else {
                format!(" at{link}")
            }
        ),
    }
}

/// The answer to "is this place affected?".
#[derive(Debug, Clone)]
pub struct StatusAnswer {
    /// The place looked at (for an address, where the geocoder put it; which customer's
    /// address matched is not said: the public must not learn who is a customer where).
    pub point: LonLat,
    /// The open incidents whose area holds the point, most severe first.
    pub incidents: Vec<IncidentView>,
}

impl Engine {
    /// The open, unexpired incidents whose area holds `point`, by the rule the selection
    /// uses ([`Area::contains`]: boundary inside), most severe first.
    pub async fn status_at(&self, point: LonLat, now: DateTime<Utc>) -> Result<StatusAnswer> {
        let mut incidents: Vec<IncidentView> = self
            .incidents(false)
            .await?
            .into_iter()
            .filter(|v| v.head.status.is_active() && v.head.expires_at.is_none_or(|e| e > now))
            .filter(|v| v.head.area.contains(point))
            .collect();
        incidents.sort_by_key(|v| (std::cmp::Reverse(v.head.severity), v.head.id));
        Ok(StatusAnswer { point, incidents })
    }

    /// [`Engine::status_at`] the address `query` geocodes to, offline against the customers'
    /// addresses (the same geocoder and limits as a declaration by address).
    pub async fn status_of_address(
        &self,
        query: &str,
        spelling: &Spelling,
        now: DateTime<Utc>,
    ) -> Result<StatusAnswer> {
        let resolved = self
            .resolve_area(
                AreaSpec::Address {
                    query: query.to_string(),
                    radius_m: None,
                    geocoding: Geocoding::default(),
                },
                spelling,
            )
            .await?;
        let Area::Circle(circle) = &resolved.area else {
            return Err(crate::EngineError::Invalid {
                field: spelling.address.to_string(),
                message: format!("{}: {query:?} is not one place", spelling.address),
            });
        };
        self.status_at(circle.center(), now).await
    }

    /// The incident as a CAP 1.2 alert, one `info` per language of the affected customers
    /// (English when it holds nobody).
    pub async fn incident_cap(&self, id: IncidentId, settings: &PublishSettings) -> Result<String> {
        let incident = self.store.incident(id).await?;
        let languages = self.languages_of(&incident).await?;
        self.cap_of(&incident, &languages, settings).await
    }

    /// The languages of the customers in the incident's area, in fi, sv, en order.
    async fn languages_of(&self, incident: &Incident) -> Result<Vec<Language>> {
        let ids = self.current_index().await?.select(incident.draft.area());
        let present: BTreeSet<&str> = self
            .store
            .customers(&ids)
            .await?
            .iter()
            .map(|(_, c)| c.language().code())
            .collect();
        let langs: Vec<Language> = Language::ALL
            .into_iter()
            .filter(|l| present.contains(l.code()))
            .collect();
        Ok(if langs.is_empty() {
            vec![Language::En]
        } else {
            langs
        })
    }

    async fn cap_of(
        &self,
        incident: &Incident,
        languages: &[Language],
        settings: &PublishSettings,
    ) -> Result<String> {
        let origin = self.store.origin(incident.id).await?;
        let draft = &incident.draft;
        let sender = settings.cap_sender.clone();
        let alert_id = identifier(incident.id, incident.declared_at);
        let (msg_type, sent) = match incident.status {
            IncidentStatus::Declared => (MsgType::Alert, incident.declared_at),
            IncidentStatus::Updated | IncidentStatus::Restored => {
                (MsgType::Update, incident.updated_at)
            }
            IncidentStatus::Cancelled => (MsgType::Cancel, incident.updated_at),
        };
        let mut references = Vec::new();
        if msg_type != MsgType::Alert {
            references.push(CapReference {
                sender: sender.clone(),
                identifier: alert_id.clone(),
                sent: cap_time(incident.declared_at),
            });
        }
        // The messages it came from, when they can be named in `references` (CAP's list is
        // comma- and space-separated).
        references.extend(
            origin
                .cap_messages
                .iter()
                .filter(|m| is_cap_identifier(&m.sender) && is_cap_identifier(&m.identifier))
                .map(|m| CapReference {
                    sender: m.sender.clone(),
                    identifier: m.identifier.clone(),
                    sent: cap_time(m.sent),
                }),
        );
        let closed = !incident.status.is_active();
        let urgency = if closed {
            Urgency::Past
        } else {
            origin
                .urgency
                .as_deref()
                .and_then(|u| Urgency::parse(u, "urgency").ok())
                .unwrap_or(Urgency::Immediate)
        };
        let certainty = origin
            .certainty
            .as_deref()
            .and_then(|c| Certainty::parse(c, "certainty").ok())
            .unwrap_or(Certainty::Observed);
        let severity = CapSeverity::parse(draft.severity().as_str(), "severity")?;
        let web = settings.status_page();
        // An address the operator typed may be a customer's: the public sees the shape.
        let area_desc = origin
            .area_source
            .clone()
            .filter(|s| !s.starts_with("address "))
            .unwrap_or_else(|| draft.area().describe());
        let locale = self.settings.locale(incident.updated_at);
        let mut parameters = vec![("outagecast:kind".to_string(), draft.kind().to_string())];
        if let Some(etr) = draft.etr() {
            parameters.push(("outagecast:etr".to_string(), etr.to_rfc3339()));
        }
        if let Some(r) = draft.reference() {
            parameters.push(("outagecast:reference".to_string(), r.to_string()));
        }
        let infos = languages
            .iter()
            .map(|&lang| {
                let noun = kind_noun(draft.kind(), lang);
                let mut event = noun.to_string();
                if let Some(first) = event.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                CapInfoOut {
                    language: lang.code().to_string(),
                    categories: categories(draft.kind()),
                    event,
                    response_type: (incident.status == IncidentStatus::Restored)
                        .then_some("AllClear"),
                    urgency,
                    severity,
                    certainty,
                    expires: draft.expires_at(),
                    sender_name: settings.sender_name.clone(),
                    // The cause is the headline: a receiver (and this server, reading its own
                    // export back) takes the headline as the cause.
                    headline: Some(draft.cause().as_str().to_string()),
                    description: Some(announcement(draft, lang, locale)),
                    instruction: (!closed).then(|| instruction(lang, web.as_deref())),
                    web: web.clone(),
                    parameters: parameters.clone(),
                    area_desc: area_desc.clone(),
                }
            })
            .collect();
        let message = CapMessage {
            identifier: if msg_type == MsgType::Alert {
                alert_id
            } else {
                identifier(incident.id, incident.updated_at)
            },
            sender,
            sent,
            status: Status::Actual,
            msg_type,
            note: Some(format!("{} from outagecast", incident.id.label())),
            references,
            infos,
        };
        Ok(cap_out::write(&message, &cap_out::cap_shapes(draft.area())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{PublishSettings, SENDER_NAME_KEY};

    #[test]
    fn the_sender_name_setting_names_the_cap_sender() {
        let named = PublishSettings::from_lookup(|k| {
            (k == SENDER_NAME_KEY).then(|| " Helsinki Water ".to_string())
        })
        .unwrap();
        assert_eq!(named.sender_name.as_deref(), Some("Helsinki Water"));
        let unnamed = PublishSettings::from_lookup(|_| None).unwrap();
        assert_eq!(unnamed.sender_name, None);
    }
}
