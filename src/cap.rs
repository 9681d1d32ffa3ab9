//! `incident declare|preview --cap FILE`: a CAP 1.2 alert declares (msgType Alert), updates
//! (Update) or cancels (Cancel) an incident. Updates and Cancels find their incident through
//! the messages named in `<references>`; every applied message is recorded, so a message
//! delivered twice cannot act twice.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use outagecast_core::area::Area;
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, IncidentChanges, IncidentDraft, IncidentKind, Severity,
    parse_time,
};
use outagecast_ingest::cap::{self, CapAlert, MsgType, Status};
use outagecast_store::{CapRecord, Provenance};
use serde_json::json;

use crate::areas::{LAT_LON, read, refusal};
use crate::cli::DeclareArgs;
use crate::commands::{emit, emit_json, merge, selection_lines};
use outagecast_engine::Engine;
use outagecast_engine::views::DeclaredView;

pub async fn run(engine: &Engine, args: &DeclareArgs, preview: bool) -> Result<()> {
    let path = args
        .ingest
        .cap
        .as_deref()
        .context("--cap: give the CAP file")?;
    let alert = cap::parse(&read(path, "--cap")?, "--cap")?;
    if let Some(m) = engine
        .store()
        .cap_message(&alert.sender, &alert.identifier)
        .await?
    {
        bail!(
            "--cap alert/identifier: {} from {} was already applied ({} to {}); nothing was written",
            alert.identifier,
            alert.sender,
            m.msg_type,
            m.incident.label()
        );
    }
    if alert.status != Status::Actual && !preview {
        bail!(
            "--cap alert/status: is {}; only Actual alerts notify customers (check it with `incident preview --cap FILE`)",
            alert.status
        );
    }
    match alert.msg_type {
        MsgType::Alert => declare(engine, args, &alert, preview).await,
        _ => follow_up(engine, args, &alert, preview).await,
    }
}

async fn zone_areas(engine: &Engine) -> Result<HashMap<String, Area>> {
    Ok(engine
        .store()
        .zones()
        .await?
        .into_iter()
        .map(|z| (z.name.to_lowercase(), z.area))
        .collect())
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

fn cap_json(alert: &CapAlert) -> serde_json::Value {
    json!({
        "identifier": alert.identifier,
        "sender": alert.sender,
        "msg_type": alert.msg_type.as_str(),
        "status": alert.status.as_str(),
        "urgency": alert.urgency().map(|u| u.as_str()),
        "certainty": alert.certainty().map(|c| c.as_str()),
        "headline": alert.headline(),
    })
}

/// A core error from a value that came from the alert, named where it is in the alert.
fn from_alert(
    e: outagecast_core::CoreError,
    flag: &str,
    given: bool,
    element: &str,
) -> anyhow::Error {
    if given {
        e.into()
    } else {
        e.renamed(flag, &format!("--cap {element}")).into()
    }
}

async fn declare(
    engine: &Engine,
    args: &DeclareArgs,
    alert: &CapAlert,
    preview: bool,
) -> Result<()> {
    let now = Utc::now();
    let area = area_of(alert, &zone_areas(engine).await?)?;
    let kind = match &args.kind {
        Some(k) => IncidentKind::parse(k)?,
        None => alert.kind()?.context(
            "--kind: the CAP alert does not say which service is out (no outagecast:kind parameter, no known word in <event>); pass --kind water|power|gas|heating|telecom|sewer",
        )?,
    };
    let severity = match &args.severity {
        Some(s) => Severity::parse(s)?,
        None => alert.severity(),
    };
    let cause = match &args.cause {
        Some(c) => Cause::parse(c)?,
        None => alert.cause()?,
    };
    let etr = match &args.etr {
        Some(t) => Some(parse_time(t, "--etr")?),
        None => alert.etr()?,
    };
    let expires_at = match &args.expires {
        Some(t) => Some(parse_time(t, "--expires")?),
        None => alert.expires(),
    };
    let reference = args
        .reference
        .clone()
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
        let e = if args.expires.is_none() {
            e.renamed("--expires", "--cap alert/info/expires")
        } else {
            e
        };
        from_alert(
            e,
            "--etr",
            args.etr.is_some(),
            "alert/info/parameter[outagecast:etr]",
        )
    })?;
    let selection = engine.select(draft.area()).await?;
    let count = selection.customers.len() as u64;
    let refused = refusal(
        engine,
        &args.ingest,
        args.allow_empty,
        draft.area(),
        count,
        LAT_LON,
    )
    .await?;
    let descs: Vec<&str> = alert
        .infos
        .iter()
        .flat_map(|i| i.areas.iter().map(|a| a.description.as_str()))
        .filter(|d| !d.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
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
    if preview {
        return crate::areas::print_preview(&draft, Some(&source), &selection, refused, args.json);
    }
    if let Some(why) = refused {
        bail!(why);
    }
    let provenance = Provenance {
        area_source: Some(source.clone()),
        cap: Some(record(alert)),
    };
    let (selection, outcome) = engine
        .declare_selected(
            &engine.settings().actor,
            &draft,
            selection,
            Some(&provenance),
            now,
        )
        .await?;
    let incident = &outcome.incident;
    if args.json {
        let mut v = json!(DeclaredView::of(&outcome, &selection, Some(source.clone())));
        merge(
            &mut v,
            json!({ "action": "declared", "cap": cap_json(alert) }),
        );
        return emit_json(&v);
    }
    emit(&format!(
        "declared incident {} from CAP {} ({}, {}): {}\n  area: {} ({source})\n{}",
        incident.id.label(),
        alert.identifier,
        incident.draft.kind(),
        incident.draft.severity(),
        incident.draft.cause().as_str(),
        incident.draft.area().describe(),
        selection_lines(&selection)
    ))
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

async fn follow_up(
    engine: &Engine,
    args: &DeclareArgs,
    alert: &CapAlert,
    preview: bool,
) -> Result<()> {
    let refs: Vec<(String, String)> = alert
        .references
        .iter()
        .map(|r| (r.sender.clone(), r.identifier.clone()))
        .collect();
    let ids = engine.store().cap_incidents(&refs).await?;
    let id = match ids.as_slice() {
        [id] => *id,
        [] => bail!(
            "--cap alert/references: none of the referenced messages ({}) declared an incident here; apply the original Alert first; nothing was written",
            refs.iter()
                .map(|(s, i)| format!("{i} from {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => bail!(
            "--cap alert/references: the referenced messages belong to several incidents ({}); send one {} per incident; nothing was written",
            many.iter()
                .map(|i| i.label())
                .collect::<Vec<_>>()
                .join(", "),
            alert.msg_type
        ),
    };
    let incident = engine.store().incident(id).await?;
    let now = Utc::now();
    let (event, changes) = if alert.msg_type == MsgType::Update {
        let has_area = alert.infos.iter().any(|i| !i.areas.is_empty());
        let area = if has_area {
            Some(area_of(alert, &zone_areas(engine).await?)?)
        } else {
            None
        };
        let cause = match &args.cause {
            Some(c) => Some(Cause::parse(c)?),
            None if alert.infos.is_empty() => None,
            None => Some(alert.cause()?),
        };
        let severity = match &args.severity {
            Some(s) => Some(Severity::parse(s)?),
            None if alert.infos.is_empty() => None,
            None => Some(alert.severity()),
        };
        let etr = match &args.etr {
            Some(t) => Some(parse_time(t, "--etr")?),
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
    // A grown area passes the same rails as a declaration.
    let mut refused = None;
    let mut newly_affected = None;
    if let Some(area) = &changes.area {
        let selection = engine.select(area).await?;
        let count = selection.customers.len() as u64;
        refused = refusal(engine, &args.ingest, args.allow_empty, area, count, LAT_LON).await?;
        let before: std::collections::HashSet<_> =
            engine.store().affected_ids(id).await?.into_iter().collect();
        newly_affected = Some(
            selection
                .customers
                .iter()
                .filter(|(c, _)| !before.contains(c))
                .count(),
        );
    }
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
        cap: Some(record(alert)),
    };
    let verb = if event == EventKind::Updated {
        "update"
    } else {
        "cancel"
    };
    if preview {
        let summary = format!(
            "preview (nothing written): CAP {} {} would {verb} {}{}{}",
            alert.msg_type,
            alert.identifier,
            incident.id.label(),
            if changed.is_empty() {
                String::new()
            } else {
                format!(": {}", changed.join("; "))
            },
            refused
                .as_ref()
                .map(|r| format!("\n  note: it would be refused: {r}"))
                .unwrap_or_default()
        );
        if args.json {
            return emit_json(&json!({
                "action": verb,
                "id": incident.id.0,
                "label": incident.id.label(),
                "changes": changed,
                "newly_affected_customers": newly_affected,
                "refused": refused,
                "cap": cap_json(alert),
            }));
        }
        return emit(&summary);
    }
    if let Some(why) = refused {
        bail!(why);
    }
    let no_change = event == EventKind::Updated
        && changes.etr.is_none()
        && changes.cause.is_none()
        && changes.severity.is_none()
        && changes.area.is_none();
    if no_change {
        // Only CAP's own fields (expiry, description, ...) changed: nothing to tell anyone.
        engine
            .store()
            .record_cap_only(id, &provenance, &engine.settings().actor, now)
            .await?;
        if args.json {
            return emit_json(&json!({
                "action": "recorded",
                "id": incident.id.0,
                "label": incident.id.label(),
                "status": incident.status,
                "changes": changed,
                "cap": cap_json(alert),
            }));
        }
        return emit(&format!(
            "CAP Update {} recorded on {}: no change customers need to hear about (expiry and texts kept)",
            alert.identifier,
            incident.id.label()
        ));
    }
    let outcome = engine
        .transition_with(
            &engine.settings().actor,
            id,
            event,
            changes,
            Some(&provenance),
            now,
        )
        .await?;
    if args.json {
        let mut v = crate::commands::transition_json(&outcome);
        merge(
            &mut v,
            json!({ "action": verb, "changes": changed, "cap": cap_json(alert) }),
        );
        return emit_json(&v);
    }
    emit(&format!(
        "CAP {} {}: incident {} is {}{}\n  follow-up notices: {} sms, {} email (only to those already told)",
        alert.msg_type,
        alert.identifier,
        outcome.incident.id.label(),
        outcome.incident.status,
        if changed.is_empty() {
            String::new()
        } else {
            format!(" ({})", changed.join("; "))
        },
        outcome
            .notices
            .get(&outagecast_core::contact::Channel::Sms)
            .copied()
            .unwrap_or(0),
        outcome
            .notices
            .get(&outagecast_core::contact::Channel::Email)
            .copied()
            .unwrap_or(0),
    ))
}
