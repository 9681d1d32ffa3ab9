//! CAP 1.2 alerts: msgType Alert declares, Update updates and Cancel cancels the incident that
//! the messages in `<references>` declared. Every applied message is recorded in the same
//! transaction, so a message delivered twice cannot act twice. The front end parses the
//! alert (`outagecast_ingest::cap::parse`) and renders the [`CapOutcome`].

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use outagecast_core::CoreError;
use outagecast_core::area::Area;
use outagecast_core::incident::IncidentId;
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, Incident, IncidentChanges, IncidentDraft, IncidentKind, Severity,
};
use outagecast_ingest::cap::{CapAlert, MsgType, Status};
use outagecast_store::{CapMessageRow, CapRecord, Provenance};
use serde::Serialize;

use crate::incidents::{Declared, Preview, Transitioned, refused};
use crate::{Engine, EngineError, Rails, Result, Spelling};

/// What the operator set over the alert's own values (`--kind`, `--cause`, ...).
#[derive(Debug, Clone, Default)]
pub struct CapOverrides {
    /// Which service is out, when the alert does not say.
    pub kind: Option<IncidentKind>,
    /// Instead of the alert's severity.
    pub severity: Option<Severity>,
    /// Instead of the alert's cause.
    pub cause: Option<Cause>,
    /// Instead of the alert's ETR.
    pub etr: Option<DateTime<Utc>>,
    /// Instead of the alert's expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Instead of the alert's identifier as the reference.
    pub reference: Option<String>,
}

/// Apply (or preview) a CAP alert.
#[derive(Debug, Clone)]
pub struct CapRequest {
    /// Who.
    pub actor: String,
    /// The parsed alert.
    pub alert: CapAlert,
    /// What the operator set over it.
    pub overrides: CapOverrides,
    /// What the operator allowed or confirmed.
    pub rails: Rails,
    /// When.
    pub now: DateTime<Utc>,
}

/// The alert, as shown next to what it did.
#[derive(Debug, Clone, Serialize)]
pub struct CapView {
    /// Its identifier.
    pub identifier: String,
    /// Its sender.
    pub sender: String,
    /// Alert, Update or Cancel.
    pub msg_type: &'static str,
    /// Actual, Exercise, ...
    pub status: &'static str,
    /// CAP urgency.
    pub urgency: Option<&'static str>,
    /// CAP certainty.
    pub certainty: Option<&'static str>,
    /// CAP headline.
    pub headline: Option<String>,
}

impl CapView {
    fn of(alert: &CapAlert) -> Self {
        CapView {
            identifier: alert.identifier.clone(),
            sender: alert.sender.clone(),
            msg_type: alert.msg_type.as_str(),
            status: alert.status.as_str(),
            urgency: alert.urgency().map(|u| u.as_str()),
            certainty: alert.certainty().map(|c| c.as_str()),
            headline: alert.headline().map(str::to_string),
        }
    }
}

/// What an Update or Cancel would do or did.
#[derive(Debug)]
pub struct FollowUp {
    /// `update` or `cancel`.
    pub action: &'static str,
    /// The incident it acts on, as it was.
    pub incident: Incident,
    /// What changes, one line each ("ETR → ...").
    pub changes: Vec<String>,
    /// Customers a new area adds, when it has one.
    pub newly_affected: Option<u64>,
}

/// What applying (or previewing) a CAP alert did.
#[derive(Debug)]
pub enum CapOutcome {
    /// An Alert declared an incident.
    Declared {
        /// The declaration.
        declared: Declared,
        /// The alert.
        cap: CapView,
    },
    /// What an Alert would declare (preview).
    WouldDeclare {
        /// The preview.
        preview: Preview,
        /// The alert.
        cap: CapView,
    },
    /// What an Update or Cancel would do (preview), and why it would be refused.
    WouldFollowUp {
        /// What it would do.
        follow_up: FollowUp,
        /// Why applying it would be refused, in the front end's words.
        refused: Option<String>,
        /// The alert.
        cap: CapView,
    },
    /// An Update that changes nothing customers hear about: only recorded.
    Recorded {
        /// What it changed (nothing told).
        follow_up: FollowUp,
        /// The alert.
        cap: CapView,
    },
    /// An Update or Cancel applied.
    FollowedUp {
        /// What it did.
        follow_up: FollowUp,
        /// The transition.
        transitioned: Transitioned,
        /// The alert.
        cap: CapView,
    },
}

/// What an alert delivered by a system (over HTTP) did: CAP senders repeat messages, so the same
/// message again is an answer, not an error.
#[derive(Debug)]
pub enum CapReceipt {
    /// Applied now.
    Applied(Box<CapOutcome>),
    /// The same message (sender, identifier and sent) was applied before, to this incident;
    /// nothing was written.
    Repeated {
        /// The incident it acted on.
        incident: IncidentId,
        /// Its msgType.
        msg_type: String,
    },
}

impl Engine {
    /// Applies a CAP alert delivered by another system: [`Engine::apply_cap`], except that a
    /// message applied before with the same `sent` is [`CapReceipt::Repeated`] (also when two
    /// deliveries race: the loser's write fails on the unique message key and is answered
    /// from the winner's record). The same identifier with another `sent` is refused.
    pub async fn receive_cap(&self, req: CapRequest, spelling: &Spelling) -> Result<CapReceipt> {
        let (sender, identifier, sent) = (
            req.alert.sender.clone(),
            req.alert.identifier.clone(),
            req.alert.sent,
        );
        let repeated = |m: CapMessageRow| -> Result<CapReceipt> {
            if m.sent != sent {
                return Err(EngineError::Conflict {
                    field: "alert/sent".to_string(),
                    message: format!(
                        "alert/identifier: {identifier} from {sender} was applied with sent {} ({} to {}); a new message needs a new identifier; nothing was written",
                        m.sent.to_rfc3339(),
                        m.msg_type,
                        m.incident.label()
                    ),
                });
            }
            Ok(CapReceipt::Repeated {
                incident: m.incident,
                msg_type: m.msg_type,
            })
        };
        if let Some(m) = self.store.cap_message(&sender, &identifier).await? {
            return repeated(m);
        }
        match self.apply_cap(req, spelling).await {
            Ok(outcome) => Ok(CapReceipt::Applied(Box::new(outcome))),
            Err(e) => match self.store.cap_message(&sender, &identifier).await? {
                Some(m) => repeated(m),
                None => Err(e),
            },
        }
    }

    /// Applies a CAP alert: Alert declares, Update updates, Cancel cancels; the same rails as
    /// any declaration or update.
    pub async fn apply_cap(&self, req: CapRequest, spelling: &Spelling) -> Result<CapOutcome> {
        self.cap(req, spelling, false).await
    }

    /// What [`Engine::apply_cap`] would do, writing nothing.
    pub async fn preview_cap(&self, req: CapRequest, spelling: &Spelling) -> Result<CapOutcome> {
        self.cap(req, spelling, true).await
    }

    async fn cap(&self, req: CapRequest, spelling: &Spelling, preview: bool) -> Result<CapOutcome> {
        let alert = &req.alert;
        if let Some(m) = self
            .store
            .cap_message(&alert.sender, &alert.identifier)
            .await?
        {
            return Err(invalid(
                "alert/identifier",
                format!(
                    "{} alert/identifier: {} from {} was already applied ({} to {}); nothing was written",
                    alert.input(),
                    alert.identifier,
                    alert.sender,
                    m.msg_type,
                    m.incident.label()
                ),
            ));
        }
        if alert.status != Status::Actual && !preview {
            return Err(invalid(
                "alert/status",
                format!(
                    "--cap alert/status: is {}; only Actual alerts notify customers (check it with `incident preview --cap FILE`)",
                    alert.status
                ),
            ));
        }
        match alert.msg_type {
            MsgType::Alert => self.cap_declare(req, spelling, preview).await,
            _ => self.cap_follow_up(req, spelling, preview).await,
        }
    }

    async fn zone_areas(&self) -> Result<HashMap<String, Area>> {
        Ok(self
            .store
            .zones()
            .await?
            .into_iter()
            .map(|z| (z.name.to_lowercase(), z.area))
            .collect())
    }

    async fn cap_declare(
        &self,
        req: CapRequest,
        spelling: &Spelling,
        preview: bool,
    ) -> Result<CapOutcome> {
        let CapRequest {
            actor,
            alert,
            overrides: o,
            rails,
            now,
        } = req;
        let area = area_of(&alert, &self.zone_areas().await?)?;
        let kind = match o.kind {
            Some(k) => k,
            None => alert.kind()?.ok_or_else(|| {
                invalid(
                    "--kind",
                    "--kind: the CAP alert does not say which service is out (no outagecast:kind parameter, no known word in <event>); pass --kind water|power|gas|heating|telecom|sewer",
                )
            })?,
        };
        let severity = o.severity.unwrap_or_else(|| alert.severity());
        let cause = match o.cause {
            Some(c) => c,
            None => alert.cause()?,
        };
        let etr_given = o.etr.is_some();
        let etr = match o.etr {
            Some(t) => Some(t),
            None => alert.etr()?,
        };
        let expires_given = o.expires_at.is_some();
        let expires_at = o.expires_at.or_else(|| alert.expires());
        let reference = o
            .reference
            .or_else(|| (alert.identifier.chars().count() <= 64).then(|| alert.identifier.clone()));
        let draft = IncidentDraft::new(
            DraftParts {
                kind,
                severity,
                cause,
                etr,
                reference,
                area,
                expires_at,
            },
            now,
        )
        .map_err(|e| {
            let e = if expires_given {
                e
            } else {
                e.renamed("--expires", "--cap alert/info/expires")
            };
            from_alert(
                e,
                "--etr",
                etr_given,
                "alert/info/parameter[outagecast:etr]",
            )
        })?;
        let selection = self.select(draft.area()).await?;
        let count = selection.customers.len() as u64;
        let refusal = self.refusal(draft.area(), count, &rails).await?;
        let descs: Vec<&str> = alert
            .infos
            .iter()
            .flat_map(|i| i.areas.iter().map(|a| a.description.as_str()))
            .filter(|d| !d.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let source = format!(
            "CAP {} from {}{}",
            alert.identifier,
            alert.sender,
            if descs.is_empty() {
                String::new()
            } else {
                format!(": {}", descs.join(", "))
            }
        );
        let cap = CapView::of(&alert);
        if preview {
            let preview = self.preview_of(draft, Some(source), selection, refusal, spelling, now);
            return Ok(CapOutcome::WouldDeclare { preview, cap });
        }
        if let Some(refusal) = refusal {
            return Err(refused(refusal, spelling));
        }
        let provenance = Provenance {
            area_source: Some(source.clone()),
            cap: Some(record(&alert)),
        };
        let outcome = self
            .declare_selected(&actor, &draft, &selection, Some(provenance), now)
            .await?;
        Ok(CapOutcome::Declared {
            declared: Declared {
                outcome,
                selection,
                area_source: Some(source),
                topology: None,
            },
            cap,
        })
    }

    async fn cap_follow_up(
        &self,
        req: CapRequest,
        spelling: &Spelling,
        preview: bool,
    ) -> Result<CapOutcome> {
        let CapRequest {
            actor,
            alert,
            overrides: o,
            rails,
            now,
        } = req;
        let refs: Vec<(String, String)> = alert
            .references
            .iter()
            .map(|r| (r.sender.clone(), r.identifier.clone()))
            .collect();
        let ids = self.store.cap_incidents(&refs).await?;
        let id = match ids.as_slice() {
            [id] => *id,
            [] => {
                return Err(EngineError::Conflict {
                    field: "alert/references".to_string(),
                    message: format!(
                        "{} alert/references: none of the referenced messages ({}) declared an incident here; apply the original Alert first; nothing was written",
                        alert.input(),
                        refs.iter()
                            .map(|(s, i)| format!("{i} from {s}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            many => {
                return Err(invalid(
                    "alert/references",
                    format!(
                        "{} alert/references: the referenced messages belong to several incidents ({}); send one {} per incident; nothing was written",
                        alert.input(),
                        many.iter()
                            .map(|i| i.label())
                            .collect::<Vec<_>>()
                            .join(", "),
                        alert.msg_type
                    ),
                ));
            }
        };
        let incident = self.store.incident(id).await?;
        let (event, changes) = if alert.msg_type == MsgType::Update {
            let has_area = alert.infos.iter().any(|i| !i.areas.is_empty());
            let area = if has_area {
                Some(area_of(&alert, &self.zone_areas().await?)?)
            } else {
                None
            };
            let cause = match o.cause {
                Some(c) => Some(c),
                None if alert.infos.is_empty() => None,
                None => Some(alert.cause()?),
            };
            let severity = match o.severity {
                Some(s) => Some(s),
                None if alert.infos.is_empty() => None,
                None => Some(alert.severity()),
            };
            let etr = match o.etr {
                Some(t) => Some(t),
                None => alert.etr()?,
            };
            let current = &incident.draft;
            (
                EventKind::Updated,
                IncidentChanges {
                    etr: etr.filter(|t| Some(*t) != current.etr()),
                    cause: cause.filter(|c| c != current.cause()),
                    severity: severity.filter(|s| *s != current.severity()),
                    area: area.filter(|a| !same_area(a, current.area())),
                },
            )
        } else {
            (EventKind::Cancelled, IncidentChanges::default())
        };
        // A grown area passes the same rails as an update from any front end.
        let (growth, refusal) = match &changes.area {
            Some(area) => {
                let growth = self.plan_growth(id, area).await?;
                let refusal = self.growth_refusal(area, &growth, &rails).await?;
                (Some(growth), refusal)
            }
            None => (None, None),
        };
        let newly_affected = growth.as_ref().map(|g| g.added.len() as u64);
        let changed: Vec<String> = [
            changes.etr.map(|t| format!("ETR → {}", t.to_rfc3339())),
            changes
                .cause
                .as_ref()
                .map(|c| format!("cause → {:?}", c.as_str())),
            changes
                .severity
                .map(|s| format!("severity {} → {s}", incident.draft.severity())),
            changes.area.as_ref().map(|a| {
                format!(
                    "area → {} ({} newly affected)",
                    a.describe(),
                    newly_affected.unwrap_or(0)
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        let provenance = Provenance {
            area_source: changes
                .area
                .as_ref()
                .map(|_| format!("CAP {} from {}", alert.identifier, alert.sender)),
            cap: Some(record(&alert)),
        };
        let action = if event == EventKind::Updated {
            "update"
        } else {
            "cancel"
        };
        let cap = CapView::of(&alert);
        let follow_up = FollowUp {
            action,
            incident,
            changes: changed,
            newly_affected,
        };
        if preview {
            return Ok(CapOutcome::WouldFollowUp {
                follow_up,
                refused: refusal.map(|r| r.explain(spelling)),
                cap,
            });
        }
        if let Some(refusal) = refusal {
            return Err(refused(refusal, spelling));
        }
        let no_change = event == EventKind::Updated
            && changes.etr.is_none()
            && changes.cause.is_none()
            && changes.severity.is_none()
            && changes.area.is_none();
        if no_change {
            // Only CAP's own fields (expiry, description, ...) changed: nothing to tell anyone.
            self.store
                .record_cap_only(id, &provenance, &actor, now)
                .await?;
            return Ok(CapOutcome::Recorded { follow_up, cap });
        }
        let transitioned = self
            .transition_planned(&actor, id, event, changes, growth, Some(&provenance), now)
            .await?;
        Ok(CapOutcome::FollowedUp {
            follow_up,
            transitioned,
            cap,
        })
    }
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

fn area_of(alert: &CapAlert, zones: &HashMap<String, Area>) -> Result<Area> {
    Ok(alert.area(|value| zones.get(&value.trim().to_lowercase()).cloned())?)
}

fn record(alert: &CapAlert) -> CapRecord {
    CapRecord {
        sender: alert.sender.clone(),
        identifier: alert.identifier.clone(),
        sent: alert.sent,
        msg_type: alert.msg_type.to_string(),
        references: alert
            .references
            .iter()
            .map(|r| format!("{},{},{}", r.sender, r.identifier, r.sent))
            .collect::<Vec<_>>()
            .join(" "),
        urgency: alert.urgency().map(|u| u.to_string()),
        certainty: alert.certainty().map(|c| c.to_string()),
        headline: alert.headline().map(str::to_string),
        description: alert.description().map(str::to_string),
        expires_at: if alert.msg_type == MsgType::Update {
            alert.expires()
        } else {
            None
        },
    }
}

/// A core error from a value that came from the alert, named where it is in the alert.
fn from_alert(e: CoreError, flag: &str, given: bool, element: &str) -> CoreError {
    if given {
        e
    } else {
        e.renamed(flag, &format!("--cap {element}"))
    }
}

/// Whether two areas are the same shape, allowing for the last bit of a coordinate lost in a
/// JSON round trip through the store.
fn same_area(a: &Area, b: &Area) -> bool {
    fn close(x: &serde_json::Value, y: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        match (x, y) {
            (V::Number(p), V::Number(q)) => match (p.as_f64(), q.as_f64()) {
                (Some(p), Some(q)) => (p - q).abs() <= 1e-9 * p.abs().max(1.0),
                _ => p == q,
            },
            (V::Array(p), V::Array(q)) => {
                p.len() == q.len() && p.iter().zip(q).all(|(p, q)| close(p, q))
            }
            (V::Object(p), V::Object(q)) => {
                p.len() == q.len() && p.iter().all(|(k, v)| q.get(k).is_some_and(|w| close(v, w)))
            }
            _ => x == y,
        }
    }
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(x), Ok(y)) => close(&x, &y),
        _ => false,
    }
}
