//! `outagecast template preview`: what a notice will say, and what it costs as an SMS, before
//! anything is declared.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;
use clap::{Args, Subcommand};
use outagecast_core::CoreError;
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::contact::Language;
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, IncidentDraft, IncidentId, IncidentKind, Severity,
};
use outagecast_core::message::Wording;
use outagecast_core::sms::{Encoding, segments};
use outagecast_core::template::{Part, TemplateSet};
use outagecast_core::when::parse_time;
use serde_json::json;

use outagecast_engine::Settings;

/// `template …`
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Show a notice's SMS text with its encoding (GSM-7 or UCS-2) and segment count, and the
    /// email subject. Without --event or --language, shows every event or language.
    Preview(PreviewArgs),
}

/// Flags of `template preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Service kind.
    #[arg(long, value_parser = crate::commands::kind_values(), ignore_case = true)]
    pub kind: IncidentKind,
    /// declared, updated, restored or cancelled (default: all four).
    #[arg(long)]
    pub event: Option<String>,
    /// fi, sv or en (default: all three).
    #[arg(long)]
    pub language: Option<String>,
    /// What happened, one line (it goes into every SMS).
    #[arg(long)]
    pub cause: String,
    /// Estimated time of restoration in the utility's time zone (15:00, "tomorrow 08:00",
    /// +3h, 2026-11-25 15:00) or RFC 3339 with an offset.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub etr: Option<String>,
    /// The incident number shown as "INC-N" in the text; its length counts.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub id: i64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `template` command. Needs no database.
pub fn run(settings: &Settings, command: &TemplateCommand) -> Result<()> {
    match command {
        TemplateCommand::Preview(args) => {
            // The operator's templates (global --templates, OUTAGECAST_TEMPLATES) when given:
            // the very wording the sending path uses.
            let now = Utc::now();
            preview(
                &settings.wording(now),
                settings.templates.is_some(),
                args,
                &settings.locale(now),
            )
        }
    }
}

/// One rendered notice.
struct Preview {
    event: EventKind,
    language: Language,
    subject: String,
    body: String,
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Gsm7 => "GSM-7",
        Encoding::Ucs2 => "UCS-2",
    }
}

/// The characters that force UCS-2, each once, in order of appearance.
fn non_gsm(text: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    for c in text.chars() {
        if segments(c.encode_utf8(&mut [0; 4])).encoding == Encoding::Ucs2 && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn preview(
    wording: &dyn Wording,
    operator: bool,
    args: &PreviewArgs,
    locale: &outagecast_core::message::Locale,
) -> Result<()> {
    let now = locale.now;
    let kind = args.kind;
    let events = match &args.event {
        Some(e) => vec![EventKind::parse(e).map_err(|err| err.renamed("event", "--event"))?],
        None => EventKind::ALL.to_vec(),
    };
    let languages = match &args.language {
        Some(l) => vec![Language::parse(l).map_err(|err| err.renamed("language", "--language"))?],
        None => Language::ALL.to_vec(),
    };
    if args.id <= 0 {
        anyhow::bail!(
            "--id: {} is not an incident number; give 1 or more",
            args.id
        );
    }
    let etr = args
        .etr
        .as_deref()
        .map(|t| parse_time(t, "--etr", locale))
        .transpose()?;
    let draft = IncidentDraft::new(
        DraftParts {
            kind,
            severity: Severity::Moderate,
            cause: Cause::parse(&args.cause)?,
            etr,
            reference: None,
            // The area is not part of the text; any valid one will do.
            area: Area::Circle(Circle::new(LonLat::parse(0.0, 0.0)?, 1.0)?),
            expires_at: None,
        },
        now,
    )?;
    let id = IncidentId(args.id);
    let mut previews = Vec::new();
    for &event in &events {
        for &language in &languages {
            let text = wording.notice(id, &draft, event, language);
            previews.push(Preview {
                event,
                language,
                subject: text.subject,
                body: text.body,
            });
        }
    }
    if args.json {
        let list: Vec<_> = previews
            .iter()
            .map(|p| {
                let s = segments(&p.body);
                json!({
                    "kind": kind,
                    "event": p.event,
                    "language": p.language,
                    "sms": {
                        "text": p.body,
                        "encoding": encoding_name(s.encoding),
                        "units": s.units,
                        "segments": s.count,
                        "non_gsm_characters": non_gsm(&p.body).iter().map(char::to_string).collect::<Vec<_>>(),
                    },
                    "email": { "subject": p.subject, "body": p.body },
                })
            })
            .collect();
        return emit(&serde_json::to_string_pretty(&json!({ "previews": list }))?);
    }
    let mut out = if operator {
        "(operator templates from OUTAGECAST_TEMPLATES; built-in text where they say nothing)\n\n"
            .to_string()
    } else {
        String::new()
    };
    for (i, p) in previews.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let s = segments(&p.body);
        let (unit, single, multi) = match s.encoding {
            Encoding::Gsm7 => ("septets", 160, 153),
            Encoding::Ucs2 => ("UTF-16 units", 70, 67),
        };
        out.push_str(&format!("{kind} · {} · {}\n", p.event, p.language));
        out.push_str(&format!(
            "SMS: {} segment{} ({}, {} {unit}; {single} fit in one, {multi} per part of a longer one)\n",
            s.count,
            if s.count == 1 { "" } else { "s" },
            encoding_name(s.encoding),
            s.units,
        ));
        let odd = non_gsm(&p.body);
        if !odd.is_empty() {
            let list: Vec<String> = odd.iter().map(|c| format!("{c:?}")).collect();
            out.push_str(&format!(
                "     UCS-2 because of {}: not in the GSM-7 alphabet\n",
                list.join(", ")
            ));
        }
        out.push_str(&format!("  {}\n", p.body));
        out.push_str(&format!("Email subject: {}\n", p.subject));
    }
    emit(out.trim_end())
}

/// Reads operator templates from a TOML file (`OUTAGECAST_TEMPLATES`):
///
/// ```toml
/// status_link = "https://vesi.example.fi/katkot/{reference}"   # optional
///
/// [water.declared.fi]            # kind (or `default` for every kind), event, language
/// subject = "{Kind}: {cause}"
/// body = "{Kind}: {cause}. Arvioitu korjausaika {etr}. {status_link}"
/// body_without_etr = "{Kind}: {cause}. {status_link}"
/// ```
///
/// Errors name the file, the key and the fix, on one line.
pub fn load_templates(path: &Path) -> Result<TemplateSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("OUTAGECAST_TEMPLATES: cannot read {}", path.display()))?;
    parse_templates(&text)
        .map_err(|e| anyhow::anyhow!("OUTAGECAST_TEMPLATES {}: {e}", path.display()))
}

/// The 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn parse_templates(text: &str) -> Result<TemplateSet, CoreError> {
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        CoreError::invalid(
            format!("line {line}, column {column}"),
            format!("not valid TOML: {}", e.message().trim()),
        )
    })?;
    let mut set = TemplateSet::new();
    for (kind_key, item) in doc.iter() {
        if kind_key == "status_link" {
            let link = item
                .as_str()
                .ok_or_else(|| CoreError::invalid("status_link", "must be a string"))?;
            set.set_status_link(link, "status_link")?;
            continue;
        }
        let kind = match kind_key {
            "default" => None,
            k => Some(IncidentKind::parse(k).map_err(|_| {
                CoreError::invalid(
                    k,
                    "is not a kind (water, power, gas, heating, telecom, sewer), default or status_link",
                )
            })?),
        };
        let table = |item: &toml_edit::Item, field: &str| {
            item.as_table_like()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect::<Vec<_>>()
                })
                .ok_or_else(|| {
                    CoreError::invalid(field, "must be a table, e.g. [water.declared.fi]")
                })
        };
        for (event_key, item) in table(item, kind_key)? {
            let field = format!("{kind_key}.{event_key}");
            let event = EventKind::parse(&event_key).map_err(|_| {
                CoreError::invalid(
                    &field,
                    "is not an event (declared, updated, restored, cancelled)",
                )
            })?;
            for (lang_key, item) in table(&item, &field)? {
                let field = format!("{field}.{lang_key}");
                let language = Language::ALL
                    .into_iter()
                    .find(|l| l.code() == lang_key)
                    .ok_or_else(|| CoreError::invalid(&field, "is not a language (fi, sv, en)"))?;
                for (part_key, item) in table(&item, &field)? {
                    let field = format!("{field}.{part_key}");
                    let part = Part::parse(&part_key, &field)?;
                    let text = item
                        .as_str()
                        .ok_or_else(|| CoreError::invalid(&field, "must be a string"))?;
                    set.insert(kind, event, language, part, text, &field)?;
                }
            }
        }
    }
    set.check()?;
    Ok(set)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
