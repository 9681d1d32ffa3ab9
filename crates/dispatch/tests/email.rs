//! The email adapter against a real SMTP server (mailin-embedded, in process): what arrives,
//! and what the SMTP replies mean for the notice.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server, SslConfig};
use outagecast_core::contact::{Channel, SenderName};
use outagecast_dispatch::email::{DEFAULT_SMTP_TIMEOUT, EmailSettings, SmtpEmail, UnsubscribeKey};
use outagecast_dispatch::transport::{LookupError, OutgoingMessage, SendOutcome, Transport};
use tokio::sync::mpsc;

const SECRET: &str = "test-secret-0123456789abcdef";

/// One message as the server received it.
#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

/// Accepts everything except `bounce@…` (550) and `busy@…` (451); hands each message over a
/// channel at the end of DATA, so a test waits for exactly the message it sent.
#[derive(Clone)]
struct Sink {
    current: Arc<Mutex<Option<Received>>>,
    delivered: mpsc::UnboundedSender<Received>,
}

impl Handler for Sink {
    fn rcpt(&mut self, to: &str) -> Response {
        if to.starts_with("bounce@") {
            NO_MAILBOX
        } else if to.starts_with("busy@") {
            INTERNAL_ERROR
        } else {
            OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        *self.current.lock().unwrap() = Some(Received {
            from: from.to_string(),
            to: to.to_vec(),
            data: String::new(),
        });
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(r) = self.current.lock().unwrap().as_mut() {
            r.data.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(r) = self.current.lock().unwrap().take() {
            let _ = self.delivered.send(r);
        }
        OK
    }
}

/// Starts an SMTP server on a free port; returns its port and the stream of messages.
fn smtp_server() -> (u16, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut server = Server::new(Sink {
        current: Arc::new(Mutex::new(None)),
        delivered: tx,
    });
    server
        .with_name("mx.test")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_num_threads(2)
        .with_tcp_listener(listener);
    // The server runs for the rest of the test process.
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, rx)
}

fn settings(url: String) -> EmailSettings {
    EmailSettings {
        smtp_url: url.into(),
        from: "Helsinki Water <noreply@vesi.example.fi>".into(),
        public_url: "https://notify.example.fi".into(),
        unsubscribe_secret: SECRET.into(),
        timeout: DEFAULT_SMTP_TIMEOUT,
        sender_name: None,
    }
}

fn notice(id: i64, to: &str) -> OutgoingMessage {
    OutgoingMessage {
        notice_id: id,
        incident_id: 7,
        channel: Channel::Email,
        to: to.into(),
        subject: "Vesikatko: putkirikko Kaivokadulla".into(),
        body: "Vesikatko: putkirikko Kaivokadulla <A & B>. Arvioitu korjausaika klo 15.00. Viite INC-7"
            .into(),
        language: "fi".into(),
    }
}

/// The headers (unfolded) and the body of a message or MIME part.
fn split(data: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = data.split_once("\r\n\r\n").unwrap_or((data, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push_str(line.trim_start());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_string(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Decodes a part's body by its Content-Transfer-Encoding.
fn decode(headers: &[(String, String)], body: &str) -> String {
    match header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase()
        .as_str()
    {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap(),
            )
            .unwrap()
        }
        "quoted-printable" => {
            let mut out = Vec::new();
            let soft = body.replace("=\r\n", "");
            let bytes = soft.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        _ => body.to_string(),
    }
}

/// The parts of a multipart/alternative message: (content type, decoded body).
fn parts(data: &str) -> Vec<(String, String)> {
    let (headers, body) = split(data);
    let ct = header(&headers, "Content-Type").unwrap();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_string();
    body.split(&format!("--{boundary}"))
        .map(|p| p.trim_start_matches("\r\n"))
        .filter(|p| !p.is_empty() && !p.starts_with("--"))
        .map(|p| {
            let (h, b) = split(p);
            let ct = header(&h, "Content-Type").unwrap().to_string();
            (ct, decode(&h, b.trim_end()))
        })
        .collect()
}

#[tokio::test]
async fn a_notice_arrives_as_multipart_with_one_click_unsubscribe_and_a_stable_id() {
    let (port, mut inbox) = smtp_server();
    let email = SmtpEmail::new(&settings(format!("smtp://127.0.0.1:{port}?tls=none"))).unwrap();
    let message = notice(42, "anna@example.fi");

    let outcome = email.send(&message).await;
    assert_eq!(
        outcome,
        SendOutcome::Accepted {
            provider_id: "<notice-42.7@vesi.example.fi>".into()
        }
    );
    let got = inbox.recv().await.unwrap();
    assert_eq!(got.from, "noreply@vesi.example.fi");
    assert_eq!(got.to, vec!["anna@example.fi".to_string()]);

    let (headers, _) = split(&got.data);
    assert_eq!(
        header(&headers, "Message-ID"),
        Some("<notice-42.7@vesi.example.fi>")
    );
    assert_eq!(header(&headers, "Content-Language"), Some("fi"));
    assert_eq!(
        header(&headers, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(header(&headers, "Auto-Submitted"), Some("auto-generated"));
    assert!(
        header(&headers, "From")
            .unwrap()
            .contains("<noreply@vesi.example.fi>")
    );
    assert!(header(&headers, "Subject").is_some());
    assert!(header(&headers, "Date").is_some());

    // The unsubscribe link is https, on the public URL, and its token names this address.
    let list = header(&headers, "List-Unsubscribe").unwrap();
    let url = list
        .strip_prefix("<https://notify.example.fi/unsubscribe?token=")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or_else(|| panic!("List-Unsubscribe: {list}"));
    let key = UnsubscribeKey::new(SECRET).unwrap();
    assert_eq!(key.verify(url).as_deref(), Some("anna@example.fi"));

    let parts = parts(&got.data);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let (plain_ct, plain) = &parts[0];
    assert!(plain_ct.starts_with("text/plain"), "{plain_ct}");
    assert!(plain.starts_with(&message.body), "{plain}");
    assert!(plain.contains("Peru tilaus: https://notify.example.fi/unsubscribe?token="));
    let (html_ct, html) = &parts[1];
    assert!(html_ct.starts_with("text/html"), "{html_ct}");
    assert!(html.contains("<html lang=\"fi\">"), "{html}");
    assert!(
        html.contains("putkirikko Kaivokadulla &lt;A &amp; B&gt;."),
        "text is escaped: {html}"
    );
    assert!(!html.contains("<A & B>"));
    assert!(html.contains("href=\"https://notify.example.fi/unsubscribe?token="));

    // A resend (after a crash) is the same message to a mail client.
    assert!(matches!(
        email.send(&message).await,
        SendOutcome::Accepted { .. }
    ));
    let again = inbox.recv().await.unwrap();
    let (headers2, _) = split(&again.data);
    assert_eq!(
        header(&headers2, "Message-ID"),
        header(&headers, "Message-ID")
    );
    assert_eq!(
        email.find_sent(&message).await,
        Err(LookupError::Unsupported),
        "SMTP cannot be asked: the in-doubt policy decides"
    );
    assert_eq!(email.cost(&message), 1);
    assert_eq!(email.channel(), Channel::Email);
}

#[tokio::test]
async fn smtp_replies_map_to_permanent_and_retry() {
    let (port, mut inbox) = smtp_server();
    let email = SmtpEmail::new(&settings(format!("smtp://127.0.0.1:{port}?tls=none"))).unwrap();

    match email.send(&notice(1, "bounce@example.fi")).await {
        SendOutcome::Permanent { reason } => assert!(reason.contains("550"), "{reason}"),
        other => panic!("550 should be permanent: {other:?}"),
    }
    match email.send(&notice(2, "busy@example.fi")).await {
        SendOutcome::Retry {
            reason, in_doubt, ..
        } => {
            assert!(reason.contains("451"), "{reason}");
            assert!(!in_doubt, "a refused RCPT was not delivered");
        }
        other => panic!("451 should be retried: {other:?}"),
    }
    // The pooled connection is still good after the refusals.
    assert!(matches!(
        email.send(&notice(3, "anna@example.fi")).await,
        SendOutcome::Accepted { .. }
    ));
    assert_eq!(inbox.recv().await.unwrap().to, vec!["anna@example.fi"]);
}

#[tokio::test]
async fn no_server_or_no_starttls_stops_the_channel_instead_of_failing_the_notice() {
    // Nothing listens on a port we bound and closed.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let email = SmtpEmail::new(&settings(format!("smtp://127.0.0.1:{port}?tls=none"))).unwrap();
    match email.send(&notice(1, "anna@example.fi")).await {
        SendOutcome::ProviderDown { reason } => {
            assert!(reason.contains("OUTAGECAST_SMTP_URL"), "{reason}")
        }
        other => panic!("no server is the provider's fault: {other:?}"),
    }

    // smtp:// without ?tls=none requires STARTTLS; this server does not offer it, so nothing
    // is sent in the clear and the notice waits for the operator to fix the setup.
    let (port, _inbox) = smtp_server();
    let email = SmtpEmail::new(&settings(format!("smtp://127.0.0.1:{port}"))).unwrap();
    match email.send(&notice(2, "anna@example.fi")).await {
        SendOutcome::ProviderDown { reason } => assert!(reason.contains("STARTTLS"), "{reason}"),
        other => panic!("missing STARTTLS stops the channel: {other:?}"),
    }
}

/// `OUTAGECAST_SENDER_NAME` names a bare sender address; a name in `OUTAGECAST_EMAIL_FROM`
/// wins.
#[tokio::test]
async fn the_sender_name_names_a_bare_from_address() {
    let (port, mut inbox) = smtp_server();
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let mut bare = settings(url.clone());
    bare.from = "noreply@vesi.example.fi".into();
    bare.sender_name = Some(SenderName::parse("Helsingin Vesi").unwrap());
    let mut named = settings(url);
    named.sender_name = Some(SenderName::parse("Helsingin Vesi").unwrap());
    for (s, shown) in [
        (bare, "\"Helsingin Vesi\" <noreply@vesi.example.fi>"),
        (named, "\"Helsinki Water\" <noreply@vesi.example.fi>"),
    ] {
        let email = SmtpEmail::new(&s).unwrap();
        email.send(&notice(43, "anna@example.fi")).await;
        let got = inbox.recv().await.unwrap();
        let (headers, _) = split(&got.data);
        assert_eq!(header(&headers, "From"), Some(shown));
    }
}
