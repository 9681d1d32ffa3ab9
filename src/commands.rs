//! Command handlers: parse arguments into domain values, call the engine, print the result for
//! a person or, with `--json`, as one JSON object for a script.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use outagecast_core::area::{Area, Circle};
use outagecast_core::contact::Channel;
use outagecast_core::incident::{Cause, EventKind, IncidentId, IncidentKind, Severity};
use outagecast_core::ivr::IvrAnswer;
use outagecast_core::notice::NoticeStatus;
use outagecast_core::when::{local_label, parse_time};
use serde_json::json;

use crate::cli::{DeclareArgs, IdArgs, UpdateArgs};
use crate::import::read_customers;
use outagecast_engine::views::IncidentView;
use outagecast_engine::{
    AreaSpec, DeclareRequest, Engine, IncidentDetails, Selection, Spelling, Transitioned,
    UpdateRequest,
};

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

/// Rejected rows listed in the text output of `import customers`.
const SHOWN_REJECTS: usize = 10;

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
            let length = handle.metadata().map(|m| m.len()).ok();
            let (counted, read) = crate::progress::Counted::new(handle);
            let started = std::time::Instant::now();
            let reading = crate::progress::Progress::start("import", length, move || {
                let done = read.load(std::sync::atomic::Ordering::Relaxed);
                let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
                let eta = crate::progress::eta(length.unwrap_or(0).saturating_sub(done), rate);
                crate::progress::Tick {
                    done,
                    message: format!("reading: {} kB, {eta}", done / 1000),
                }
            });
            let parsed = read_customers(BufReader::new(counted), rules);
            reading.finish();
            parsed?
        }
        CustomerFormat::GeoJson => {
            let _reading = crate::progress::Progress::step("import", "reading the GeoJSON");
            read_customers_geojson(&read_file(file, "FILE")?, rules)?
        }
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
    let writing = crate::progress::Progress::step(
        "import",
        format!("writing {} customers", parsed.customers.len()),
    );
    let summary = engine
        .import(
            &engine.settings().actor,
            &parsed.customers,
            &file.display().to_string(),
        )
        .await;
    writing.finish();
    let summary = summary?;
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
    // The first few name the fix; a file of thousands of bad rows must not flood the output
    // (`--json` lists them all).
    for r in parsed.rejected.iter().take(SHOWN_REJECTS) {
        emit(&format!("  {}", place(r)))?;
    }
    if parsed.rejected.len() > SHOWN_REJECTS {
        emit(&format!(
            "  … and {} more (--json lists them all)",
            parsed.rejected.len() - SHOWN_REJECTS
        ))?;
    }
    Ok(())
}

fn read_file(path: &Path, flag: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
}

/// The area given by the basic area flags, if any, as the engine's request (which parses the
/// files within the size limits); every error names its flag.
pub fn area_from_flags(
    circle: Option<&str>,
    polygon: Option<&Path>,
    corridor: Option<&Path>,
    buffer: Option<f64>,
) -> Result<Option<AreaSpec>> {
    Ok(Some(match (circle, polygon, corridor) {
        (None, None, None) => return Ok(None),
        (Some(c), None, None) => AreaSpec::Shape(Area::Circle(Circle::parse_cli(c)?)),
        (None, Some(p), None) => AreaSpec::PolygonGeoJson {
            text: read_file(p, "--polygon")?,
        },
        (None, None, Some(c)) => AreaSpec::CorridorGeoJson {
            buffer_m: buffer
                .context("--buffer: a corridor needs a buffer in metres, e.g. --buffer 50")?,
            text: read_file(c, "--corridor")?,
        },
        _ => bail!("area: give exactly one of --circle, --polygon or --corridor"),
    }))
}

/// The incident's details from the declare/preview flags; every error names its flag.
pub fn details_from_args(engine: &Engine, args: &DeclareArgs) -> Result<IncidentDetails> {
    details(
        engine,
        args,
        args.kind.context(
            "--kind: say which service is out: water, power, gas, heating, telecom or sewer",
        )?,
        args.details
            .cause
            .as_deref()
            .context("--cause: say what happened, e.g. \"burst water main\"")?,
    )
}

/// The details with this kind and cause, the rest from the flags.
fn details(
    engine: &Engine,
    args: &DeclareArgs,
    kind: IncidentKind,
    cause: &str,
) -> Result<IncidentDetails> {
    Ok(IncidentDetails {
        kind,
        severity: args.details.severity.unwrap_or(Severity::Moderate),
        cause: Cause::parse(cause)?,
        etr: time_flag(engine, args.details.etr.as_deref(), "--etr")?,
        reference: args.reference.clone(),
        expires_at: time_flag(engine, args.expires.as_deref(), "--expires")?,
    })
}

/// A time flag (`--etr 15:00`, `+3h`, RFC 3339) in the utility's time zone.
pub(crate) fn time_flag(
    engine: &Engine,
    text: Option<&str>,
    flag: &str,
) -> Result<Option<chrono::DateTime<Utc>>> {
    let locale = engine.settings().locale(Utc::now());
    Ok(text.map(|t| parse_time(t, flag, &locale)).transpose()?)
}

/// `--kind`'s values, listed in `--help` and in clap's error for a wrong one.
pub fn kind_values() -> impl clap::builder::TypedValueParser<Value = IncidentKind> {
    word_values(IncidentKind::ALL, IncidentKind::as_str, IncidentKind::parse)
}

/// `--severity`'s values.
pub fn severity_values() -> impl clap::builder::TypedValueParser<Value = Severity> {
    word_values(Severity::ALL, Severity::as_str, Severity::parse)
}

/// A clap parser over one of the core's word enumerations: clap lists the words, the core's
/// own `parse` makes the value (so the spellings live in one place).
fn word_values<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    word: fn(T) -> &'static str,
    parse: fn(&str) -> outagecast_core::error::Result<T>,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(all.iter().map(|v| word(*v)))
        .map(move |text| parse(&text).expect("clap checked the word"))
}

/// The engine's declaration request from the declare/preview flags.
fn declare_request(
    engine: &Engine,
    args: &DeclareArgs,
    details: IncidentDetails,
) -> Result<DeclareRequest> {
    Ok(DeclareRequest {
        actor: engine.settings().actor.clone(),
        details,
        area: crate::areas::required_spec(&args.area)?,
        rails: args.rails.rails(),
        now: Utc::now(),
    })
}

pub(crate) fn selection_lines(selection: &Selection) -> String {
    let plan = &selection.plan;
    format!(
        "  affected customers: {} ({} priority)\n  notices: {} sms, {} email, {} voice{}{}\n  phone numbers armed in the IVR: {}",
        selection.customers.len(),
        selection.priority_count(),
        plan.count(Channel::Sms),
        plan.count(Channel::Email),
        plan.count(Channel::Voice),
        if plan.opted_out > 0 {
            format!(" ({} contacts opted out)", plan.opted_out)
        } else {
            String::new()
        },
        if plan.unreachable.is_empty() {
            String::new()
        } else {
            format!(
                "\n  no SMS, email or call for {} customers (no contact left, or opted out): they hear the IVR if they call",
                plan.unreachable.len()
            )
        },
        plan.armed.len()
    )
}

pub async fn declare(engine: &Engine, args: &DeclareArgs) -> Result<()> {
    if args.cap.is_some() {
        return crate::cap::run(engine, args, false).await;
    }
    let request = declare_request(engine, args, details_from_args(engine, args)?)?;
    // A large area takes seconds (selection, then every notice in one transaction).
    let declaring = crate::progress::Progress::step(
        "declare",
        "selecting the customers and writing the notices",
    );
    let declared = engine.declare(request, &Spelling::CLI).await;
    declaring.finish();
    let declared = declared?;
    if args.json {
        return emit_json(&json!(declared.view()));
    }
    let incident = &declared.outcome.incident;
    emit(&format!(
        "declared incident {} ({}, {}): {}\n  area: {}{}\n{}",
        incident.id.label(),
        incident.draft.kind(),
        incident.draft.severity(),
        incident.draft.cause().as_str(),
        incident.draft.area().describe(),
        declared
            .area_source
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        selection_lines(&declared.selection)
    ))?;
    crate::areas::topology_lines(declared.topology.as_ref())
}

pub async fn preview(engine: &Engine, args: &DeclareArgs) -> Result<()> {
    if args.cap.is_some() {
        return crate::cap::run(engine, args, true).await;
    }
    // Counting needs only the area; the texts need the kind and the cause. Without them the
    // preview is planned with stand-ins and shows no texts (nor their segments).
    let texts = args.kind.is_some() && args.details.cause.is_some();
    let details = if texts {
        details_from_args(engine, args)?
    } else {
        details(engine, args, IncidentKind::Water, "-")?
    };
    let req = declare_request(engine, args, details)?;
    let mut preview = engine.preview(req, &Spelling::CLI).await?;
    if !texts {
        preview.view.sms_texts.clear();
        preview.view.sms_segments = 0;
    }
    crate::areas::print_preview(&preview, args.json)
}

pub(crate) fn merge(target: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(t), serde_json::Value::Object(e)) = (target.as_object_mut(), extra) {
        t.extend(e);
    }
}

fn summary_line(v: &IncidentView, zone: chrono_tz::Tz) -> String {
    let i = &v.head;
    let of = |status: NoticeStatus| -> u64 {
        v.notices
            .iter()
            .filter(|n| n.status == status)
            .map(|n| n.count)
            .sum()
    };
    let held = match of(NoticeStatus::Held) {
        0 => String::new(),
        n => format!(" ({n} held)"),
    };
    format!(
        "{:<8} {:<9} {:<8} {:<9} {:>6} affected {:>6} armed {:>6} pending{held}  {}{}",
        i.label,
        i.status,
        i.kind,
        i.severity,
        v.affected_customers,
        v.armed_numbers,
        of(NoticeStatus::Pending),
        i.cause,
        i.etr
            .map(|t| format!(" (ETR {})", local_label(t, zone)))
            .unwrap_or_default()
    )
}

pub async fn list(engine: &Engine, all: bool, json: bool) -> Result<()> {
    let incidents = engine.incidents(all).await?;
    if json {
        return emit_json(&json!({ "incidents": incidents }));
    }
    if incidents.is_empty() {
        return emit(if all {
            "no incidents"
        } else {
            "no active incidents (--all lists closed ones)"
        });
    }
    for v in &incidents {
        emit(&summary_line(v, engine.settings().timezone))?;
    }
    Ok(())
}

pub async fn show(engine: &Engine, args: &IdArgs) -> Result<()> {
    let id = IncidentId::parse(&args.id)?;
    // Where it came from: zone, address or CAP alert, and CAP's fields (see crate::cap).
    let detail = engine.incident_detail(id).await?;
    if args.json {
        return emit_json(&json!(detail));
    }
    let v = &detail.incident;
    let i = &v.head;
    let zone = engine.settings().timezone;
    let mut out = format!(
        "{} {} ({}, {}): {}\n  reference: {}\n  area: {}\n  declared: {}\n  ETR: {}\n  affected customers: {}\n  phone numbers armed: {}\n  notices:",
        i.label,
        i.status,
        i.kind,
        i.severity,
        i.cause,
        i.reference.as_deref().unwrap_or("-"),
        i.area.describe(),
        local_label(i.declared_at, zone),
        i.etr
            .map(|t| local_label(t, zone))
            .unwrap_or_else(|| "-".into()),
        v.affected_customers,
        v.armed_numbers,
    );
    if v.notices.is_empty() {
        out.push_str(" none");
    }
    let origin = &detail.origin;
    if let Some(source) = &origin.area_source {
        out.push_str(&format!("\n  area from: {source}"));
    }
    if let Some(headline) = &origin.headline {
        out.push_str(&format!("\n  CAP headline: {headline}"));
    }
    for n in &v.notices {
        out.push_str(&format!("\n    {} {}: {}", n.channel, n.status, n.count));
    }
    emit(&out)
}

pub async fn update(engine: &Engine, args: &UpdateArgs) -> Result<()> {
    let id = IncidentId::parse(&args.id.id)?;
    let d = &args.details;
    let req = UpdateRequest {
        actor: engine.settings().actor.clone(),
        id,
        etr: time_flag(engine, d.etr.as_deref(), "--etr")?,
        cause: d.cause.as_deref().map(Cause::parse).transpose()?,
        severity: d.severity,
        area: crate::areas::spec(&args.area)?,
        rails: args.rails.rails(),
        now: Utc::now(),
    };
    let done = engine.update(req, &Spelling::CLI).await?;
    print_transition(&done, EventKind::Updated, args.id.json)
}

pub async fn restore(engine: &Engine, args: &IdArgs) -> Result<()> {
    let id = IncidentId::parse(&args.id)?;
    let done = engine
        .restore(&engine.settings().actor, id, Utc::now())
        .await?;
    print_transition(&done, EventKind::Restored, args.json)
}

pub async fn cancel(engine: &Engine, args: &IdArgs) -> Result<()> {
    let id = IncidentId::parse(&args.id)?;
    let done = engine
        .cancel(&engine.settings().actor, id, Utc::now())
        .await?;
    print_transition(&done, EventKind::Cancelled, args.json)
}

fn print_transition(done: &Transitioned, event: EventKind, json: bool) -> Result<()> {
    let view = done.view();
    if json {
        return emit_json(&json!(view));
    }
    emit(&format!(
        "incident {} is {}\n  follow-up notices: {} sms, {} email (only to those already told)\n  unsent earlier notices {}: {}\n  IVR numbers disarmed: {}",
        view.label,
        view.status,
        view.notices.sms,
        view.notices.email,
        if event == EventKind::Updated {
            "rewritten with the new details"
        } else {
            "withdrawn"
        },
        if event == EventKind::Updated {
            view.rewritten
        } else {
            view.superseded
        },
        view.disarmed
    ))?;
    if view.added_customers > 0 {
        emit(&format!(
            "  the new area adds {} customers: {} sms, {} email (told as newly affected)",
            view.added_customers, view.added_notices.sms, view.added_notices.email,
        ))?;
    }
    if view.left_customers > 0 {
        emit(&format!(
            "  the new area no longer holds {} customers affected before",
            view.left_customers
        ))?;
    }
    Ok(())
}

/// `incident report ID [--json] [--csv FILE]`.
pub async fn report(engine: &Engine, id: &str, json_out: bool, csv: Option<&Path>) -> Result<()> {
    let id = IncidentId::parse(id)?;
    let report = engine.report(id).await?;
    if let Some(path) = csv {
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("--csv: cannot write {}", path.display()))?;
        for row in &report.recipients {
            w.serialize(row)?;
        }
        w.flush()?;
    }
    if json_out {
        return emit_json(&json!(report));
    }
    emit(&format!(
        "{} {} — {} affected customers, {} notices",
        report.label,
        report.status,
        report.affected_customers,
        report.recipients.len()
    ))?;
    for n in &report.counts {
        emit(&format!(
            "  {:<5} {:<10} {}",
            n.channel.as_str(),
            n.status.as_str(),
            n.count
        ))?;
    }
    if report.possible_duplicates > 0 {
        emit(&format!(
            "  {} sent again after a crash with no way to ask the provider: possibly twice",
            report.possible_duplicates
        ))?;
    }
    let c = &report.calls;
    emit(&format!(
        "  IVR: {} callers from the area while it was armed, {} heard the announcement, {} had been told before calling{}; {} called in the hour before it was declared",
        c.callers,
        c.heard_announcement,
        c.told_before_calling,
        c.median_told_before_seconds
            .map(|s| format!(" (median {} min before)", (s + 30) / 60))
            .unwrap_or_default(),
        c.callers_before_declaration
    ))?;
    if let Some(path) = csv {
        emit(&format!(
            "per-recipient outcomes written to {}",
            path.display()
        ))?;
    }
    Ok(())
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
    let a = outagecast_server::lookup_once(engine, number, settings, Utc::now()).await?;
    if json {
        return emit_json(&serde_json::to_value(&a)?);
    }
    emit(&ivr_text(number, &a))
}
