//! Command handlers: parse arguments into domain values, call the engine, print the result for
//! a person or, with `--json`, as one JSON object for a script.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use outagecast_core::area::{Area, Circle};
use outagecast_core::contact::Channel;
use outagecast_core::geojson;
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, IncidentChanges, IncidentDraft, IncidentId, IncidentKind,
    Severity, parse_time,
};
use outagecast_core::ivr::IvrAnswer;
use outagecast_store::{IncidentSummary, TransitionOutcome};
use serde_json::json;

use crate::cli::{DeclareArgs, IdArgs};
use crate::import::read_customers;
use outagecast_engine::views::{DeclaredView, IncidentView, SelectionView, TransitionView};
use outagecast_engine::{Engine, Selection};

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub(crate) fn emit_json(value: &serde_json::Value) -> Result<()> {
    emit(&serde_json::to_string_pretty(value)?)
}

pub async fn import_customers(
    engine: &Engine,
    file: &Path,
    strict: bool,
    json: bool,
) -> Result<()> {
    use crate::import::{CustomerFormat, Rejected, read_customers_geojson};
    let rules = engine.settings().record_rules();
    // A .geojson or .json file is a FeatureCollection of points; anything else is the CSV.
    let format = CustomerFormat::from_path(file).unwrap_or(CustomerFormat::Csv);
    let parsed = match format {
        CustomerFormat::Csv => {
            let handle = File::open(file)
                .with_context(|| format!("FILE: cannot open {}", file.display()))?;
            read_customers(BufReader::new(handle), rules)?
        }
        CustomerFormat::GeoJson => read_customers_geojson(&read_file(file, "FILE")?, rules)?,
    };
    // A GeoJSON reason starts with its feature's path (`features[3].properties.phone`).
    let (unit, place): (&str, fn(&Rejected) -> String) = match format {
        CustomerFormat::Csv => ("rows", |r| format!("line {}: {}", r.line, r.reason)),
        CustomerFormat::GeoJson => ("features", |r| r.reason.clone()),
    };
    if strict && !parsed.rejected.is_empty() {
        bail!(
            "{} of {} {unit} are bad and --strict is set, so nothing was imported; first: {}",
            parsed.rejected.len(),
            parsed.rejected.len() + parsed.customers.len(),
            place(&parsed.rejected[0])
        );
    }
    let summary = engine
        .import(
            &engine.settings().actor,
            &parsed.customers,
            &file.display().to_string(),
        )
        .await?;
    if json {
        return emit_json(&json!({
            "imported": parsed.customers.len(),
            "inserted": summary.inserted,
            "updated": summary.updated,
            "rejected": parsed.rejected,
        }));
    }
    emit(&format!(
        "imported {} customers ({} new, {} updated); rejected {} {unit}",
        parsed.customers.len(),
        summary.inserted,
        summary.updated,
        parsed.rejected.len()
    ))?;
    for r in &parsed.rejected {
        emit(&format!("  {}", place(r)))?;
    }
    Ok(())
}

fn read_file(path: &Path, flag: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
}

/// The area given by the basic area flags, if any; every error names its flag.
pub fn area_from_flags(
    circle: Option<&str>,
    polygon: Option<&Path>,
    corridor: Option<&Path>,
    buffer: Option<f64>,
) -> Result<Option<Area>> {
    Ok(Some(match (circle, polygon, corridor) {
        (None, None, None) => return Ok(None),
        (Some(c), None, None) => Area::Circle(Circle::parse_cli(c)?),
        (None, Some(p), None) => Area::Polygon(geojson::polygon_area(
            &read_file(p, "--polygon")?,
            "--polygon",
        )?),
        (None, None, Some(c)) => {
            let buffer = buffer
                .context("--buffer: a corridor needs a buffer in metres, e.g. --buffer 50")?;
            Area::Corridor(geojson::corridor(
                &read_file(c, "--corridor")?,
                "--corridor",
                buffer,
            )?)
        }
        _ => bail!("area: give exactly one of --circle, --polygon or --corridor"),
    }))
}

/// Builds the draft from the declare/preview flags; every error names its flag.
pub fn draft_from_args(
    args: &DeclareArgs,
    area: Area,
    now: DateTime<Utc>,
) -> Result<IncidentDraft> {
    let etr = args
        .etr
        .as_deref()
        .map(|t| parse_time(t, "--etr"))
        .transpose()?;
    let expires_at = args
        .expires
        .as_deref()
        .map(|t| parse_time(t, "--expires"))
        .transpose()?;
    Ok(IncidentDraft::new(
        DraftParts {
            kind: IncidentKind::parse(args.kind.as_deref().context(
                "--kind: say which service is out: water, power, gas, heating, telecom or sewer",
            )?)?,
            severity: Severity::parse(args.severity.as_deref().unwrap_or("moderate"))?,
            cause: Cause::parse(
                args.cause
                    .as_deref()
                    .context("--cause: say what happened, e.g. \"burst water main\"")?,
            )?,
            etr,
            reference: args.reference.clone(),
            area,
            expires_at,
        },
        now,
    )?)
}

pub(crate) fn selection_json(selection: &Selection) -> serde_json::Value {
    json!(SelectionView::of(selection))
}

pub(crate) fn selection_lines(selection: &Selection) -> String {
    let plan = &selection.plan;
    format!(
        "  affected customers: {} ({} priority)\n  notices: {} sms, {} email{}{}\n  phone numbers armed in the IVR: {}",
        selection.customers.len(),
        selection.priority_count(),
        plan.count(Channel::Sms),
        plan.count(Channel::Email),
        if plan.opted_out > 0 {
            format!(" ({} contacts opted out)", plan.opted_out)
        } else {
            String::new()
        },
        if plan.unreachable.is_empty() {
            String::new()
        } else {
            format!(
                "\n  no SMS or email for {} customers (landline only or no contact): they hear the IVR if they call",
                plan.unreachable.len()
            )
        },
        plan.armed.len()
    )
}

pub async fn declare(engine: &Engine, args: &DeclareArgs) -> Result<()> {
    if args.ingest.cap.is_some() {
        return crate::cap::run(engine, args, false).await;
    }
    let now = Utc::now();
    let built = crate::areas::area(engine, args).await?;
    let draft = draft_from_args(args, built.area.clone(), now)?;
    let selection = engine.select(draft.area()).await?;
    let count = selection.customers.len() as u64;
    let lon_lat = crate::areas::LON_LAT;
    if let Some(why) = crate::areas::refusal(
        engine,
        &args.ingest,
        args.allow_empty,
        draft.area(),
        count,
        lon_lat,
    )
    .await?
    {
        bail!(why);
    }
    let provenance = built.provenance();
    let (selection, outcome) = engine
        .declare_selected(
            &engine.settings().actor,
            &draft,
            selection,
            provenance.as_ref(),
            now,
        )
        .await?;
    let incident = &outcome.incident;
    if args.json {
        return emit_json(&json!(DeclaredView::of(
            &outcome,
            &selection,
            built.source.clone()
        )));
    }
    emit(&format!(
        "declared incident {} ({}, {}): {}\n  area: {}{}\n{}",
        incident.id.label(),
        incident.draft.kind(),
        incident.draft.severity(),
        incident.draft.cause().as_str(),
        incident.draft.area().describe(),
        built.source.map(|s| format!(" ({s})")).unwrap_or_default(),
        selection_lines(&selection)
    ))
}

pub async fn preview(engine: &Engine, args: &DeclareArgs) -> Result<()> {
    if args.ingest.cap.is_some() {
        return crate::cap::run(engine, args, true).await;
    }
    let now = Utc::now();
    let built = crate::areas::area(engine, args).await?;
    let draft = draft_from_args(args, built.area.clone(), now)?;
    let selection = engine.select(draft.area()).await?;
    let count = selection.customers.len() as u64;
    let lon_lat = crate::areas::LON_LAT;
    let refused = crate::areas::refusal(
        engine,
        &args.ingest,
        args.allow_empty,
        draft.area(),
        count,
        lon_lat,
    )
    .await?;
    crate::areas::print_preview(
        &draft,
        built.source.as_deref(),
        &selection,
        refused,
        args.json,
    )
}

pub(crate) fn merge(target: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(t), serde_json::Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

fn summary_json(s: &IncidentSummary) -> serde_json::Value {
    json!(IncidentView::of(s))
}

fn summary_line(s: &IncidentSummary) -> String {
    let i = &s.incident;
    let pending: u64 = s
        .notices
        .iter()
        .filter(|n| n.status == outagecast_core::notice::NoticeStatus::Pending)
        .map(|n| n.count)
        .sum();
    format!(
        "{:<8} {:<9} {:<8} {:<9} {:>6} affected {:>6} armed {:>6} pending  {}{}",
        i.id.label(),
        i.status,
        i.draft.kind(),
        i.draft.severity(),
        s.affected_customers,
        s.armed_numbers,
        pending,
        i.draft.cause().as_str(),
        i.draft
            .etr()
            .map(|t| format!(" (ETR {})", t.to_rfc3339()))
            .unwrap_or_default()
    )
}

pub async fn list(engine: &Engine, all: bool, json: bool) -> Result<()> {
    let incidents = engine.store().incidents(all).await?;
    if json {
        return emit_json(
            &json!({ "incidents": incidents.iter().map(summary_json).collect::<Vec<_>>() }),
        );
    }
    if incidents.is_empty() {
        return emit(if all {
            "no incidents"
        } else {
            "no active incidents (--all lists closed ones)"
        });
    }
    for s in &incidents {
        emit(&summary_line(s))?;
    }
    Ok(())
}

pub async fn show(engine: &Engine, args: &IdArgs) -> Result<()> {
    let id = IncidentId::parse(&args.id)?;
    let incident = engine.store().incident(id).await?;
    let summary = engine.store().summary(incident).await?;
    let accounts = engine.store().affected_accounts(id).await?;
    // Where it came from: zone, address or CAP alert, and CAP's fields (see crate::cap).
    let origin = engine.store().origin(id).await?;
    if args.json {
        let mut v = summary_json(&summary);
        merge(
            &mut v,
            json!({ "affected_account_ids": accounts, "origin": origin }),
        );
        return emit_json(&v);
    }
    let i = &summary.incident;
    let mut out = format!(
        "{} {} ({}, {}): {}\n  reference: {}\n  area: {}\n  declared: {}\n  ETR: {}\n  affected customers: {}\n  phone numbers armed: {}\n  notices:",
        i.id.label(),
        i.status,
        i.draft.kind(),
        i.draft.severity(),
        i.draft.cause().as_str(),
        i.draft.reference().unwrap_or("-"),
        i.draft.area().describe(),
        i.declared_at.to_rfc3339(),
        i.draft
            .etr()
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "-".into()),
        summary.affected_customers,
        summary.armed_numbers,
    );
    if summary.notices.is_empty() {
        out.push_str(" none");
    }
    if let Some(source) = &origin.area_source {
        out.push_str(&format!("\n  area from: {source}"));
    }
    if let Some(headline) = &origin.headline {
        out.push_str(&format!("\n  CAP headline: {headline}"));
    }
    for n in &summary.notices {
        out.push_str(&format!("\n    {} {}: {}", n.channel, n.status, n.count));
    }
    emit(&out)
}

pub async fn transition(
    engine: &Engine,
    args: &IdArgs,
    event: EventKind,
    changes: IncidentChanges,
) -> Result<()> {
    let id = IncidentId::parse(&args.id)?;
    let outcome = engine
        .transition(&engine.settings().actor, id, event, changes, Utc::now())
        .await?;
    if args.json {
        return emit_json(&transition_json(&outcome));
    }
    let i = &outcome.incident;
    emit(&format!(
        "incident {} is {}\n  follow-up notices: {} sms, {} email (only to those already told)\n  unsent earlier notices {}: {}\n  IVR numbers disarmed: {}",
        i.id.label(),
        i.status,
        outcome.notices.get(&Channel::Sms).copied().unwrap_or(0),
        outcome.notices.get(&Channel::Email).copied().unwrap_or(0),
        if event == EventKind::Updated {
            "rewritten with the new details"
        } else {
            "withdrawn"
        },
        if event == EventKind::Updated {
            outcome.rewritten
        } else {
            outcome.superseded
        },
        outcome.disarmed
    ))?;
    if outcome.added_customers > 0 {
        emit(&format!(
            "  the new area adds {} customers: {} sms, {} email (told as newly affected)",
            outcome.added_customers,
            outcome
                .added_notices
                .get(&Channel::Sms)
                .copied()
                .unwrap_or(0),
            outcome
                .added_notices
                .get(&Channel::Email)
                .copied()
                .unwrap_or(0),
        ))?;
    }
    Ok(())
}

pub(crate) fn transition_json(o: &TransitionOutcome) -> serde_json::Value {
    json!(TransitionView::of(o))
}

pub fn changes_from_args(
    etr: Option<&str>,
    cause: Option<&str>,
    severity: Option<&str>,
    area: Option<Area>,
) -> Result<IncidentChanges> {
    Ok(IncidentChanges {
        area,
        etr: etr.map(|t| parse_time(t, "--etr")).transpose()?,
        cause: cause.map(Cause::parse).transpose()?,
        severity: severity.map(Severity::parse).transpose()?,
    })
}

pub fn ivr_text(raw: &str, a: &IvrAnswer) -> String {
    let who = a.caller.as_deref().unwrap_or(raw);
    match (&a.announcement, a.language) {
        (Some(text), Some(lang)) => format!(
            "{who}: armed ({} incident{})\n  [{lang}] {text}",
            a.incidents.len(),
            if a.incidents.len() == 1 { "" } else { "s" }
        ),
        _ if a.caller.is_none() => format!("{who}: nothing to announce (not a valid phone number)"),
        _ => format!("{who}: nothing to announce"),
    }
}

pub async fn ivr_lookup(engine: &Engine, number: &str, grace: &str, json: bool) -> Result<()> {
    let settings = outagecast_ivr::IndexSettings {
        restored_grace: outagecast_ivr::IndexSettings::parse_grace(grace)
            .context("--ivr-restored-grace")?,
    };
    let a = outagecast_server::lookup_once(
        engine.store(),
        number,
        engine.settings().default_region,
        settings,
        Utc::now(),
    )
    .await?;
    if json {
        return emit_json(&serde_json::to_value(&a)?);
    }
    emit(&ivr_text(number, &a))
}
