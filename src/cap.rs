//! `incident declare|preview --cap FILE`: reads the CAP 1.2 alert and the flags that override
//! its values, asks the engine to apply (or preview) it, and prints what it did. What an
//! Alert, Update or Cancel does is the engine's (`outagecast_engine::cap`).

use anyhow::{Context, Result};
use chrono::Utc;
use outagecast_core::incident::Cause;
use outagecast_engine::rails::LAT_LON;
use outagecast_engine::{CapOutcome, CapOverrides, CapRequest, Engine, Spelling};
use outagecast_ingest::cap;
use serde_json::json;

use crate::areas::read;
use crate::cli::DeclareArgs;
use crate::commands::{emit, emit_json, merge, selection_lines, time_flag};

pub async fn run(engine: &Engine, args: &DeclareArgs, preview: bool) -> Result<()> {
    let path = args.cap.as_deref().context("--cap: give the CAP file")?;
    let alert = cap::parse(&read(path, "--cap")?, "--cap")?;
    let req = CapRequest {
        actor: engine.settings().actor.clone(),
        alert,
        overrides: CapOverrides {
            kind: args.kind,
            severity: args.details.severity,
            cause: args
                .details
                .cause
                .as_deref()
                .map(Cause::parse)
                .transpose()?,
            etr: time_flag(engine, args.details.etr.as_deref(), "--etr")?,
            expires_at: time_flag(engine, args.expires.as_deref(), "--expires")?,
            reference: args.reference.clone(),
        },
        rails: args.rails.rails(),
        now: Utc::now(),
    };
    // CAP writes latitude first: the swapped-coordinates hint says so.
    let spelling = Spelling::CLI.with_order(LAT_LON);
    let outcome = if preview {
        engine.preview_cap(req, &spelling).await?
    } else {
        engine.apply_cap(req, &spelling).await?
    };
    print(outcome, args.json)
}

fn print(outcome: CapOutcome, json_out: bool) -> Result<()> {
    match outcome {
        CapOutcome::WouldDeclare { preview, .. } => crate::areas::print_preview(&preview, json_out),
        CapOutcome::Declared { declared, cap } => {
            if json_out {
                let mut v = json!(declared.view());
                merge(&mut v, json!({ "action": "declared", "cap": cap }));
                return emit_json(&v);
            }
            let incident = &declared.outcome.incident;
            emit(&format!(
                "declared incident {} from CAP {} ({}, {}): {}\n  area: {} ({})\n{}",
                incident.id.label(),
                cap.identifier,
                incident.draft.kind(),
                incident.draft.severity(),
                incident.draft.cause().as_str(),
                incident.draft.area().describe(),
                declared.area_source.as_deref().unwrap_or_default(),
                selection_lines(&declared.selection)
            ))
        }
        CapOutcome::WouldFollowUp {
            follow_up,
            refused,
            cap,
        } => {
            let incident = &follow_up.incident;
            if json_out {
                return emit_json(&json!({
                    "action": follow_up.action,
                    "id": incident.id.0,
                    "label": incident.id.label(),
                    "changes": follow_up.changes,
                    "newly_affected_customers": follow_up.newly_affected,
                    "refused": refused,
                    "cap": cap,
                }));
            }
            emit(&format!(
                "preview (nothing written): CAP {} {} would {} {}{}{}",
                cap.msg_type,
                cap.identifier,
                follow_up.action,
                incident.id.label(),
                if follow_up.changes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", follow_up.changes.join("; "))
                },
                refused
                    .as_ref()
                    .map(|r| format!("\n  note: it would be refused: {r}"))
                    .unwrap_or_default()
            ))
        }
        CapOutcome::Recorded { follow_up, cap } => {
            let incident = &follow_up.incident;
            if json_out {
                return emit_json(&json!({
                    "action": "recorded",
                    "id": incident.id.0,
                    "label": incident.id.label(),
                    "status": incident.status,
                    "changes": follow_up.changes,
                    "cap": cap,
                }));
            }
            emit(&format!(
                "CAP Update {} recorded on {}: no change customers need to hear about (expiry and texts kept)",
                cap.identifier,
                incident.id.label()
            ))
        }
        CapOutcome::FollowedUp {
            follow_up,
            transitioned,
            cap,
        } => {
            let view = transitioned.view();
            if json_out {
                let mut v = json!(view);
                merge(
                    &mut v,
                    json!({ "action": follow_up.action, "changes": follow_up.changes, "cap": cap }),
                );
                return emit_json(&v);
            }
            emit(&format!(
                "CAP {} {}: incident {} is {}{}\n  follow-up notices: {} sms, {} email (only to those already told)",
                cap.msg_type,
                cap.identifier,
                view.label,
                view.status,
                if follow_up.changes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", follow_up.changes.join("; "))
                },
                view.notices.sms,
                view.notices.email,
            ))
        }
    }
}
