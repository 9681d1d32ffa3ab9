//! The webhooks over real HTTP (a listener on a free port) against a fresh SQLite store with
//! a declared incident: Twilio receipts and signatures, STOP/START/HELP, one-click unsubscribe.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::auth::{Role, TokenSecret};
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{CustomerRecord, RecordRules};
use outagecast_core::incident::{
    Cause, DraftParts, IncidentDraft, IncidentId, IncidentKind, Severity,
};
use outagecast_core::notice::{NoticeStatus, plan_recipients};
use outagecast_dispatch::email::UnsubscribeKey;
use outagecast_server::Unsigned;
use outagecast_server::auth::twilio_signature;
use outagecast_server::webhooks::{WebhookSettings, router};
use outagecast_store::{Outcome, ReportRow, Store};

// The store's test fixtures: seeding customers.
#[allow(dead_code)]
#[path = "../../store/src/fixtures.rs"]
mod fixtures;

const TOKEN: &str = "twilio-auth-token";
const SECRET: &str = "unsubscribe-secret-0123456789";
const PUBLIC: &str = "https://notify.example.fi";
const ANNA: &str = "+358401111111"; // Finnish
const BO: &str = "+358402222222"; // Swedish

struct Harness {
    store: Store,
    /// A `webhook`-role token; without an auth token configured, [`Harness::post`] sends it as
    /// the Basic password (a gateway, or Twilio with credentials in the webhook URL).
    webhook: String,
    /// When set, unsigned posts carry `webhook`.
    gateway: bool,
    incident: IncidentId,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(settings: WebhookSettings) -> Self {
        outagecast_dispatch::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
        let now = Utc::now();
        let rules = RecordRules {
            default_region: None,
            default_language: Language::En,
        };
        let customer = |account: &str, phone: &str, email: &str, lang: &str| {
            CustomerRecord {
                account_id: account.into(),
                lon: "24.9414".into(),
                lat: "60.1710".into(),
                address: "Kaivokatu 1, Helsinki".into(),
                phone: phone.into(),
                email: email.into(),
                language: lang.into(),
                priority: "false".into(),
                channel: String::new(),
            }
            .parse(rules)
            .unwrap()
        };
        let customers = vec![
            customer("A", ANNA, "anna@example.fi", "fi"),
            customer("B", BO, "bo@example.fi", "sv"),
        ];
        let loaded = fixtures::seed(&store, &customers).await;
        let ids: Vec<_> = loaded.iter().map(|(id, _)| *id).collect();
        let refs: Vec<_> = loaded.iter().map(|(id, c)| (*id, c)).collect();
        let plan = plan_recipients(&refs, |_, _| false);
        let draft = IncidentDraft::new(
            DraftParts {
                kind: IncidentKind::Water,
                severity: Severity::Moderate,
                cause: Cause::parse("burst water main").unwrap(),
                etr: None,
                reference: None,
                area: Area::Circle(
                    Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 500.0).unwrap(),
                ),
                expires_at: None,
            },
            now,
        )
        .unwrap();
        let declared = fixtures::declare_draft(&store, &draft, &ids, &plan, now)
            .await
            .unwrap();
        let webhook = TokenSecret::generate([7; 32]);
        store
            .create_token("gateway", Role::Webhook, &webhook, "test", now)
            .await
            .unwrap();
        let viewer = TokenSecret::generate([8; 32]);
        store
            .create_token("viewer", Role::Viewer, &viewer, "test", now)
            .await
            .unwrap();
        let gateway = settings.sms_auth_token.is_none();
        let app = router(store.clone(), settings).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Harness {
            store,
            webhook: webhook.expose().to_string(),
            gateway,
            incident: declared.incident.id,
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// What a worker does: claim everything and record each notice as sent with `sid(notice)`.
    async fn send_all(&self, sid: impl Fn(&ReportRow) -> String) {
        let now = Utc::now();
        let claimed = self
            .store
            .claim("w", &Channel::ALL, 100, Duration::from_secs(60), now)
            .await
            .unwrap();
        let rows = self.report().await;
        let outcomes: Vec<_> = claimed
            .iter()
            .map(|c| {
                let row = rows.iter().find(|r| r.notice_id == c.id).unwrap();
                (
                    c.id,
                    Outcome::Sent {
                        provider_id: sid(row),
                        segments: 1,
                    },
                )
            })
            .collect();
        self.store.complete("w", &outcomes, now).await.unwrap();
    }

    async fn report(&self) -> Vec<ReportRow> {
        self.store.notice_report(self.incident).await.unwrap()
    }

    async fn notice(&self, channel: Channel, address: &str) -> ReportRow {
        self.report()
            .await
            .into_iter()
            .find(|r| r.channel == channel && r.address == address)
            .unwrap()
    }

    /// Posts `form`, signed with `signature`; unsigned, with the webhook token when the harness
    /// is a gateway (no auth token configured).
    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        signature: Option<&str>,
    ) -> (u16, String) {
        let (code, _, body) = match signature {
            Some(s) => {
                self.post_with(path, form, &[("X-Twilio-Signature", s)])
                    .await
            }
            None if self.gateway => {
                let basic = format!(
                    "Basic {}",
                    STANDARD.encode(format!("twilio:{}", self.webhook))
                );
                self.post_with(path, form, &[("Authorization", &basic)])
                    .await
            }
            None => self.post_with(path, form, &[]).await,
        };
        (code, body)
    }

    /// Posts `form` with `headers`: (status, `WWW-Authenticate`, body).
    async fn post_with(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        (status, challenge, response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

fn owned(form: &[(&str, &str)]) -> Vec<(String, String)> {
    form.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// No auth token: the harness posts as a gateway with a webhook-role token.
fn unsigned() -> WebhookSettings {
    WebhookSettings {
        unsubscribe_secret: Some(SECRET.into()),
        sender_name: Some("Helsinki Water".into()),
        ..WebhookSettings::default()
    }
}

fn signed() -> WebhookSettings {
    WebhookSettings {
        public_url: Some(PUBLIC.into()),
        sms_auth_token: Some(TOKEN.into()),
        ..unsigned()
    }
}

fn sid_of(row: &ReportRow) -> String {
    format!("SM{}", row.notice_id)
}

#[tokio::test]
async fn status_callbacks_mark_notices_delivered_or_failed_with_the_reason() {
    let h = Harness::new(unsigned()).await;
    h.send_all(sid_of).await;
    let anna = h.notice(Channel::Sms, ANNA).await;
    let bo = h.notice(Channel::Sms, BO).await;
    assert_eq!(anna.status, NoticeStatus::Sent);

    // Progress is not an outcome.
    for status in ["queued", "sending", "sent"] {
        let (code, _) = h
            .post(
                "/webhooks/sms/status",
                &[("MessageSid", &sid_of(&anna)), ("MessageStatus", status)],
                None,
            )
            .await;
        assert_eq!(code, 200);
    }
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Sent
    );

    let (code, _) = h
        .post(
            "/webhooks/sms/status",
            &[
                ("MessageSid", &sid_of(&anna)),
                ("MessageStatus", "delivered"),
                ("AccountSid", "AC1"),
            ],
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Delivered
    );

    let (code, _) = h
        .post(
            "/webhooks/sms/status",
            &[
                ("MessageSid", &sid_of(&bo)),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30003"),
            ],
            None,
        )
        .await;
    assert_eq!(code, 200);
    let bo = h.notice(Channel::Sms, BO).await;
    assert_eq!(bo.status, NoticeStatus::Failed);
    assert_eq!(bo.last_error.as_deref(), Some("undelivered: error 30003"));

    // Malformed callbacks are refused, and change nothing.
    for form in [
        vec![("MessageStatus", "delivered")],
        vec![("MessageSid", "SM1")],
        vec![("MessageSid", "SM 1"), ("MessageStatus", "delivered")],
    ] {
        let (code, _) = h.post("/webhooks/sms/status", &form, None).await;
        assert_eq!(code, 400, "{form:?}");
    }
    let (code, _) = h
        .post(
            "/webhooks/sms/status",
            &[("MessageSid", "SMunknown"), ("MessageStatus", "delivered")],
            None,
        )
        .await;
    assert_eq!(code, 200, "an unknown id waits for its notice");
}

#[tokio::test]
async fn a_receipt_that_beats_the_worker_is_applied_when_the_send_is_recorded() {
    let h = Harness::new(unsigned()).await;
    let anna = h.notice(Channel::Sms, ANNA).await;
    let (code, _) = h
        .post(
            "/webhooks/sms/status",
            &[
                ("MessageSid", &sid_of(&anna)),
                ("MessageStatus", "delivered"),
            ],
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Pending
    );
    h.send_all(sid_of).await;
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Delivered
    );
    assert_eq!(h.notice(Channel::Sms, BO).await.status, NoticeStatus::Sent);
}

#[tokio::test]
async fn twilio_requests_must_be_signed_when_an_auth_token_is_set() {
    let h = Harness::new(signed()).await;
    h.send_all(sid_of).await;
    let sid = sid_of(&h.notice(Channel::Sms, ANNA).await);
    let form = [("MessageSid", sid.as_str()), ("MessageStatus", "delivered")];
    let url = format!("{PUBLIC}/webhooks/sms/status");

    let (code, _) = h.post("/webhooks/sms/status", &form, None).await;
    assert_eq!(code, 403, "unsigned");
    let wrong = twilio_signature("another-token", &url, &owned(&form));
    let (code, _) = h.post("/webhooks/sms/status", &form, Some(&wrong)).await;
    assert_eq!(code, 403, "signed with another token");
    let other_url = twilio_signature(TOKEN, &format!("{PUBLIC}/elsewhere"), &owned(&form));
    let (code, _) = h
        .post("/webhooks/sms/status", &form, Some(&other_url))
        .await;
    assert_eq!(code, 403, "signed for another URL");
    let right = twilio_signature(TOKEN, &url, &owned(&form));
    let tampered = [("MessageSid", sid.as_str()), ("MessageStatus", "failed")];
    let (code, _) = h
        .post("/webhooks/sms/status", &tampered, Some(&right))
        .await;
    assert_eq!(code, 403, "a changed parameter");
    let (code, _) = h
        .post("/webhooks/sms/status", &form, Some("not base64!"))
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Sent
    );

    let (code, _) = h.post("/webhooks/sms/status", &form, Some(&right)).await;
    assert_eq!(code, 200);
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Delivered
    );

    // Signed with the default port spelled out, as some proxies pass it on.
    let with_port = "https://notify.example.fi:443/webhooks/sms/inbound";
    let stop = [("From", BO), ("Body", "STOP")];
    let sig = twilio_signature(TOKEN, with_port, &owned(&stop));
    let (code, body) = h.post("/webhooks/sms/inbound", &stop, Some(&sig)).await;
    assert_eq!(code, 200, "{body}");
    assert!(h.store.is_opted_out(Channel::Sms, BO).await.unwrap());
    let (code, _) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", ANNA), ("Body", "STOP")],
            None,
        )
        .await;
    assert_eq!(code, 403);
    assert!(!h.store.is_opted_out(Channel::Sms, ANNA).await.unwrap());
}

/// Closed by default: without an auth token only a webhook-role token gets in (Bearer, or the
/// Basic password after the challenge Twilio waits for); `--insecure-webhooks` opens them.
#[tokio::test]
async fn without_an_auth_token_only_webhook_tokens_get_in() {
    let h = Harness::new(unsigned()).await;
    let stop = [("From", ANNA), ("Body", "STOP")];
    let (code, challenge, body) = h.post_with("/webhooks/sms/inbound", &stop, &[]).await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(
        challenge.as_deref(),
        Some("Basic realm=\"outagecast webhooks\"")
    );
    assert!(
        body.contains("OUTAGECAST_SMS_AUTH_TOKEN and OUTAGECAST_PUBLIC_URL")
            && body.contains("--role webhook"),
        "{body}"
    );
    let sig = twilio_signature(
        TOKEN,
        &format!("{PUBLIC}/webhooks/sms/inbound"),
        &owned(&stop),
    );
    let (code, _, _) = h
        .post_with(
            "/webhooks/sms/inbound",
            &stop,
            &[("X-Twilio-Signature", &sig)],
        )
        .await;
    assert_eq!(code, 401, "a signature nobody can check");
    let viewer = format!("Bearer {}", TokenSecret::generate([8; 32]).expose());
    let (code, _, body) = h
        .post_with(
            "/webhooks/sms/inbound",
            &stop,
            &[("Authorization", &viewer)],
        )
        .await;
    assert_eq!(code, 403, "a viewer token: {body}");
    let bad_basic = format!("Basic {}", STANDARD.encode("twilio:oc_nonsense"));
    let (code, _, _) = h
        .post_with(
            "/webhooks/sms/inbound",
            &stop,
            &[("Authorization", &bad_basic)],
        )
        .await;
    assert_eq!(code, 401, "an unknown token");
    let (code, _, _) = h
        .post_with(
            "/webhooks/sms/status",
            &[("MessageSid", "SM1"), ("MessageStatus", "delivered")],
            &[],
        )
        .await;
    assert_eq!(code, 401, "receipts too");
    assert!(!h.store.is_opted_out(Channel::Sms, ANNA).await.unwrap());

    let bearer = format!("Bearer {}", h.webhook);
    let (code, _, body) = h
        .post_with(
            "/webhooks/sms/inbound",
            &stop,
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(h.store.is_opted_out(Channel::Sms, ANNA).await.unwrap());
    let (code, _) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", BO), ("Body", "STOP")],
            None,
        )
        .await;
    assert_eq!(code, 200, "the Basic password");
    assert!(h.store.is_opted_out(Channel::Sms, BO).await.unwrap());

    let open = Harness::new(WebhookSettings {
        unsigned: Unsigned::AcceptInsecure,
        ..unsigned()
    })
    .await;
    let (code, _, _) = open.post_with("/webhooks/sms/inbound", &stop, &[]).await;
    assert_eq!(code, 200, "--insecure-webhooks");
    assert!(open.store.is_opted_out(Channel::Sms, ANNA).await.unwrap());
}

#[tokio::test]
async fn stop_start_and_help_by_sms() {
    let h = Harness::new(unsigned()).await;
    assert_eq!(
        h.notice(Channel::Sms, ANNA).await.status,
        NoticeStatus::Pending
    );

    let (code, body) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", ANNA), ("Body", " Stop ")],
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Message>Et saa enää katkoilmoituksia tekstiviestillä. Vastaa START, niin saat ne taas.</Message></Response>\n",
        "a reply in Anna's language"
    );
    assert!(h.store.is_opted_out(Channel::Sms, ANNA).await.unwrap());
    let withdrawn = h.notice(Channel::Sms, ANNA).await;
    assert_eq!(
        withdrawn.status,
        NoticeStatus::Superseded,
        "honoured at once"
    );
    assert_eq!(withdrawn.last_error.as_deref(), Some("opted out"));
    assert_eq!(
        h.notice(Channel::Email, "anna@example.fi").await.status,
        NoticeStatus::Pending,
        "STOP is about SMS only"
    );
    assert_eq!(
        h.notice(Channel::Sms, BO).await.status,
        NoticeStatus::Pending
    );

    let (_, body) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", ANNA), ("Body", "start")],
            None,
        )
        .await;
    assert!(
        body.contains("<Message>Saat taas katkoilmoitukset"),
        "{body}"
    );
    assert!(!h.store.is_opted_out(Channel::Sms, ANNA).await.unwrap());

    let (_, body) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", BO), ("Body", "HELP")],
            None,
        )
        .await;
    assert!(
        body.contains("<Message>Avbrottsmeddelanden (Helsinki Water). Svara STOP"),
        "{body}"
    );
    // An unknown number gets English.
    let (_, body) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", "+447911123456"), ("Body", "info")],
            None,
        )
        .await;
    assert!(
        body.contains("<Message>Outage messages from Helsinki Water."),
        "{body}"
    );

    // Anything else gets no reply and changes nothing.
    let (code, body) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", BO), ("Body", "Is the water <back> yet? & when")],
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response/>\n"
    );
    assert!(!h.store.is_opted_out(Channel::Sms, BO).await.unwrap());

    let (code, _) = h
        .post(
            "/webhooks/sms/inbound",
            &[("From", "anonymous"), ("Body", "STOP")],
            None,
        )
        .await;
    assert_eq!(code, 400);

    // Opt-outs are keyed by number: a re-import of the customers keeps them.
    h.post(
        "/webhooks/sms/inbound",
        &[("From", BO), ("Body", "STOP")],
        None,
    )
    .await;
    let again = vec![
        CustomerRecord {
            account_id: "B".into(),
            lon: "24.9414".into(),
            lat: "60.1710".into(),
            address: "Kaivokatu 1, Helsinki".into(),
            phone: BO.into(),
            email: String::new(),
            language: "sv".into(),
            priority: "false".into(),
            channel: String::new(),
        }
        .parse(RecordRules {
            default_region: None,
            default_language: Language::En,
        })
        .unwrap(),
    ];
    h.store
        .upsert_customers(&again, "test", "again.csv", Utc::now())
        .await
        .unwrap();
    assert!(h.store.is_opted_out(Channel::Sms, BO).await.unwrap());
}

#[tokio::test]
async fn one_click_unsubscribe_by_email() {
    let h = Harness::new(unsigned()).await;
    let token = UnsubscribeKey::new(SECRET).unwrap().token("bo@example.fi");
    let path = format!("/unsubscribe?token={token}");

    // Looking at the link (or a scanner fetching it) changes nothing.
    let (code, page) = h.get(&path).await;
    assert_eq!(code, 200);
    assert!(page.contains("<html lang=\"sv\">"), "{page}");
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""));
    assert!(page.contains("b•••@example.fi"), "{page}");
    assert!(
        !h.store
            .is_opted_out(Channel::Email, "bo@example.fi")
            .await
            .unwrap()
    );

    // RFC 8058: a POST of List-Unsubscribe=One-Click to the link.
    let (code, page) = h
        .post(&path, &[("List-Unsubscribe", "One-Click")], None)
        .await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Inga fler avbrottsmeddelanden"), "{page}");
    assert!(
        h.store
            .is_opted_out(Channel::Email, "bo@example.fi")
            .await
            .unwrap()
    );
    assert_eq!(
        h.notice(Channel::Email, "bo@example.fi").await.status,
        NoticeStatus::Superseded
    );
    assert_eq!(
        h.notice(Channel::Sms, BO).await.status,
        NoticeStatus::Pending
    );
    // Twice is fine.
    let (code, _) = h
        .post(&path, &[("List-Unsubscribe", "One-Click")], None)
        .await;
    assert_eq!(code, 200);

    // Bad or missing tokens.
    let forged = UnsubscribeKey::new("some-other-secret-123456")
        .unwrap()
        .token("anna@example.fi");
    for bad in [
        "/unsubscribe".to_string(),
        "/unsubscribe?token=".to_string(),
        "/unsubscribe?token=abc".to_string(),
        format!("/unsubscribe?token={forged}"),
    ] {
        let (code, page) = h.get(&bad).await;
        assert_eq!(code, 400, "{bad}");
        assert!(page.contains("not valid"));
        let (code, _) = h
            .post(&bad, &[("List-Unsubscribe", "One-Click")], None)
            .await;
        assert_eq!(code, 400, "{bad}");
    }
    assert!(
        !h.store
            .is_opted_out(Channel::Email, "anna@example.fi")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_path(&dir.path().join("t.db")).await.unwrap();
    let e = router(
        store.clone(),
        WebhookSettings {
            sms_auth_token: Some(TOKEN.into()),
            ..WebhookSettings::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("OUTAGECAST_PUBLIC_URL: "), "{e}");
    let e = router(
        store.clone(),
        WebhookSettings {
            unsubscribe_secret: Some("short".into()),
            ..WebhookSettings::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("OUTAGECAST_UNSUBSCRIBE_SECRET: "),
        "{e}"
    );
    let e = WebhookSettings::from_lookup(|k| {
        (k == "OUTAGECAST_DEFAULT_REGION").then(|| "Finland".to_string())
    })
    .unwrap_err();
    assert!(
        e.to_string().starts_with("OUTAGECAST_DEFAULT_REGION: "),
        "{e}"
    );
    let s =
        WebhookSettings::from_lookup(|k| (k == "OUTAGECAST_SMS_AUTH_TOKEN").then(|| TOKEN.into()))
            .unwrap();
    assert!(!format!("{s:?}").contains(TOKEN));
}

#[tokio::test]
async fn unsubscribe_is_off_without_a_secret() {
    let h = Harness::new(WebhookSettings::default()).await;
    let token = UnsubscribeKey::new(SECRET).unwrap().token("bo@example.fi");
    let (code, body) = h.get(&format!("/unsubscribe?token={token}")).await;
    assert_eq!(code, 404);
    assert!(body.contains("OUTAGECAST_UNSUBSCRIBE_SECRET"));
}

/// `OUTAGECAST_SENDER_NAME` feeds the HELP reply; a name that is not one short line is
/// refused naming the setting.
#[test]
fn the_sender_name_is_read_and_checked() {
    let read = |name: &str| {
        let name = name.to_string();
        WebhookSettings::from_lookup(move |key| {
            (key == "OUTAGECAST_SENDER_NAME").then(|| name.clone())
        })
    };
    assert_eq!(
        read(" Helsingin Vesi ").unwrap().sender_name.as_deref(),
        Some("Helsingin Vesi")
    );
    assert_eq!(read("").unwrap().sender_name, None);
    let e = read("two\nlines").unwrap_err().to_string();
    assert!(e.contains("OUTAGECAST_SENDER_NAME"), "{e}");
}
