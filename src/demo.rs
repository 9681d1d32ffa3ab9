//! `outagecast demo`: the whole flow on the Helsinki sample, in a temporary database, sending
//! nothing outside the machine.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DurationRound, TimeDelta, Utc};
use outagecast_core::area::{Area, Circle};
use outagecast_core::contact::{Channel, Region};
use outagecast_core::customer::Customer;
use outagecast_core::incident::{Cause, IncidentKind, Severity};

use crate::commands::ivr_text;
use crate::import::read_customers;
use outagecast_engine::{
    AreaSpec, DeclareRequest, Engine, IncidentDetails, Rails, Settings, Spelling,
};

/// The sample customer base, generated from OpenStreetMap (ODbL; see data/README.md).
const SAMPLE: &str = include_str!("../data/helsinki/customers.csv");

/// The street address the demo's water main bursts under.
const BURST_AT: &str = "Kaivokatu 1,";

pub async fn run() -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let db = dir.path().join("demo.db");
    let settings = Settings {
        default_region: Some(Region::parse("FI")?),
        timezone: chrono_tz::Europe::Helsinki,
        actor: "demo".into(),
        templates: None,
        limits: outagecast_engine::Limits::default(),
    };
    println!(
        "outagecast demo: a burst water main in central Helsinki (a temporary database at {}; \
         nothing is sent anywhere)\n",
        db.display()
    );

    let engine = Engine::open(&db.display().to_string(), settings.clone()).await?;
    let parsed = read_customers(SAMPLE.as_bytes(), settings.record_rules())?;
    let importing = crate::progress::Progress::step(
        "demo",
        format!("importing {} customers", parsed.customers.len()),
    );
    let summary = engine
        .import("demo", &parsed.customers, "data/helsinki/customers.csv")
        .await;
    importing.finish();
    let summary = summary?;
    println!(
        "1. imported {} customers at real OpenStreetMap addresses ({} rejected)",
        summary.inserted,
        parsed.rejected.len()
    );

    let site = parsed
        .customers
        .iter()
        .find(|c| c.address().starts_with(BURST_AT))
        .or_else(|| parsed.customers.first())
        .context("the sample holds no customers")?;
    let now = Utc::now();
    let etr = (now + TimeDelta::hours(3))
        .duration_round(TimeDelta::minutes(15))
        .unwrap_or(now + TimeDelta::hours(3));
    let request = DeclareRequest {
        actor: "demo".into(),
        details: IncidentDetails {
            kind: IncidentKind::Water,
            severity: Severity::Moderate,
            cause: Cause::parse("burst water main on Kaivokatu")?,
            etr: Some(etr),
            reference: Some("WO-2026-0412".into()),
            expires_at: None,
        },
        area: AreaSpec::Shape(Area::Circle(Circle::new(site.location(), 250.0)?)),
        rails: Rails::default(),
        now,
    };
    let started = Instant::now();
    let declared = engine.declare(request, &Spelling::CLI).await?;
    let elapsed = started.elapsed();
    let selection = &declared.selection;
    let id = declared.outcome.incident.id;
    println!(
        "2. declared {} within 250 m of {} in {} ms:",
        id.label(),
        site.address(),
        elapsed.as_millis()
    );
    println!(
        "   {} customers affected ({} on the priority register, told first)",
        selection.customers.len(),
        selection.priority_count()
    );
    println!(
        "   {} SMS and {} emails waiting in the outbox, one per phone number or mailbox",
        selection.plan.count(Channel::Sms),
        selection.plan.count(Channel::Email)
    );
    println!(
        "   {} phone numbers armed in the IVR (landlines too: they call in)",
        selection.plan.armed.len()
    );
    if let Some((_, _, priority, body)) = engine
        .queued_notices(id)
        .await?
        .into_iter()
        .find(|(ch, ..)| *ch == Channel::Sms)
    {
        println!(
            "   first SMS in the queue{}: \"{body}\"",
            if priority {
                " (a priority customer)"
            } else {
                ""
            }
        );
    }

    let gateway = start_gateway().await?;
    let sent = dispatch(&engine, &gateway).await?;
    println!(
        "   dispatched: {sent} SMS accepted by the Twilio-compatible gateway stand-in at {} \
         (emails stay queued: the demo configures no SMTP server)",
        gateway.base_url
    );
    if let Some(m) = gateway.gateway.messages().first() {
        println!("   first one to {}: \"{}\"", m.to, m.body);
    }

    let affected_phone = selection
        .customers
        .iter()
        .find_map(|(_, c)| c.phones().first())
        .map(|p| p.e164().to_string());
    let unaffected_phone = unaffected_number(&parsed.customers, selection);
    println!("\n3. a caller dials in; the IVR asks outagecast:");
    for number in affected_phone.iter().chain(unaffected_phone.iter()) {
        let answer = outagecast_server::lookup_once(
            &engine,
            number,
            outagecast_ivr::IndexSettings::default(),
            Utc::now(),
        )
        .await?;
        println!("   {}", ivr_text(number, &answer).replace('\n', "\n   "));
    }

    let restored = engine.restore("demo", id, Utc::now()).await?.outcome;
    println!(
        "\n4. the main is fixed: {} is {}; {} IVR numbers disarmed",
        id.label(),
        restored.incident.status,
        restored.disarmed,
    );
    println!(
        "   \"restored\" follow-ups planned only for those told: {} SMS",
        restored.notices.get(&Channel::Sms).copied().unwrap_or(0)
    );
    let followed = dispatch(&engine, &gateway).await?;
    println!(
        "   dispatched: {followed} more SMS; the gateway saw {} messages, {} of them duplicates",
        gateway.gateway.accepted(),
        gateway.gateway.duplicates()
    );
    if let Some(number) = &affected_phone {
        let answer = outagecast_server::lookup_once(
            &engine,
            number,
            outagecast_ivr::IndexSettings::default(),
            Utc::now(),
        )
        .await?;
        println!("   {}", ivr_text(number, &answer));
    }
    engine.close().await;
    Ok(())
}

fn unaffected_number(all: &[Customer], selection: &outagecast_engine::Selection) -> Option<String> {
    let affected: std::collections::HashSet<&str> = selection
        .customers
        .iter()
        .flat_map(|(_, c)| c.phones().iter().map(|p| p.e164()))
        .collect();
    all.iter()
        .flat_map(|c| c.phones())
        .map(|p| p.e164())
        .find(|p| !affected.contains(p))
        .map(str::to_string)
}

/// The gateway stand-in on loopback, so the demo really sends without leaving the machine.
struct DemoGateway {
    gateway: std::sync::Arc<outagecast_gateway_standin::Gateway>,
    base_url: String,
}

const DEMO_SID: &str = "ACdemo0000000000000000000000000000";
const DEMO_TOKEN: &str = "demo";

async fn start_gateway() -> Result<DemoGateway> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let gateway =
        outagecast_gateway_standin::Gateway::new(DEMO_SID, DEMO_TOKEN, Default::default());
    tokio::spawn(outagecast_gateway_standin::serve(
        listener,
        gateway.clone(),
        std::future::pending(),
    ));
    Ok(DemoGateway { gateway, base_url })
}

/// Drains the SMS outbox to the stand-in; returns how many were sent.
async fn dispatch(engine: &Engine, gw: &DemoGateway) -> Result<u64> {
    use outagecast_dispatch::sms::{Sender, SmsConfig, TwilioSms};
    use outagecast_dispatch::worker::{Dispatcher, Unconfigured, WorkerConfig};
    let sms = TwilioSms::new(SmsConfig {
        lookup: true,
        base_url: gw.base_url.clone(),
        account_sid: DEMO_SID.into(),
        auth_token: DEMO_TOKEN.into(),
        sender: Sender::From("+358480000000".into()),
        status_callback: None,
        rate: 1000,
        timeout: std::time::Duration::from_secs(5),
    })?;
    let dispatcher: Dispatcher<TwilioSms, Unconfigured> = Dispatcher::new(
        // The dispatcher's port is the store itself (the outbox), not a use case.
        engine.store().clone(),
        Some((sms, 1000)),
        None,
        WorkerConfig::new("demo"),
    );
    let progress = dispatcher.progress();
    let counted = std::sync::Arc::clone(&progress);
    let reporting = crate::progress::Progress::start("demo", None, move || {
        let sent = counted.sent.load(std::sync::atomic::Ordering::Relaxed);
        crate::progress::Tick {
            done: sent,
            message: format!("sending: {sent} SMS accepted"),
        }
    });
    let drained = dispatcher.drain().await;
    reporting.finish();
    drained?;
    Ok(progress.sent.load(std::sync::atomic::Ordering::Relaxed))
}
