//! Twilio's request signature, and the one check every route Twilio calls goes through (the
//! SMS status callback, inbound SMS, the voice webhook).
//!
//! `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, URL + every POST parameter's name and
//! value, sorted by name)), where the URL is the one Twilio called: the configured public URL
//! plus the request's path and query.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use outagecast_core::secret::Secret;
use sha1::Sha1;

use crate::api::error::ApiError;

/// Twilio's request signature: base64(HMAC-SHA1(auth token, url + sorted name+value pairs)),
/// over the decoded parameter values.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(
        signature_mac(auth_token, url, params)
            .finalize()
            .into_bytes(),
    )
}

fn signature_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    // Sorted by name, then value; a repeated name+value pair counts once (as Twilio's SDKs).
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    // HMAC accepts a key of any length; the error case cannot happen, and is not unwrapped.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| <Hmac<Sha1> as Mac>::new(&Default::default()));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The URL as signed, with and without the scheme's default port: Twilio's own libraries
/// accept both, because proxies differ in what they pass on.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once(':') {
        Some((host, port)) if port == default_port => out.push(format!("{scheme}://{host}{tail}")),
        Some((_, port)) if port.chars().all(|c| c.is_ascii_digit()) => {}
        _ => out.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    out
}

/// Put in a request's extensions by a layer that has already authenticated the caller by other
/// means (a bearer token with the `webhook` role, for a gateway that cannot sign like Twilio):
/// the Twilio check then lets the request through without a signature.
#[derive(Debug, Clone, Copy)]
pub struct BearerAuthorized;

/// Checks `X-Twilio-Signature` on a request Twilio made to this server.
#[derive(Debug, Clone)]
pub struct TwilioSigner {
    /// The account's auth token (the HMAC key).
    pub auth_token: Secret<String>,
    /// The address Twilio reaches this server at (`https://outage.example.fi`), no trailing `/`.
    pub public_url: String,
}

impl TwilioSigner {
    /// Whether the request to `uri` with form `params` carries Twilio's signature.
    pub fn verify(&self, uri: &Uri, headers: &HeaderMap, params: &[(String, String)]) -> bool {
        let Some(given) = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| STANDARD.decode(v.trim()).ok())
        else {
            return false;
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let base = self.public_url.trim_end_matches('/');
        url_variants(&format!("{base}{path}")).iter().any(|url| {
            signature_mac(self.auth_token.expose(), url, params)
                .verify_slice(&given)
                .is_ok()
        })
    }
}

/// What happens to a request on a route Twilio calls that carries neither a valid signature
/// nor a `webhook` token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unsigned {
    /// Refused: anyone can reach a public URL, and an unsigned STOP would opt a customer out.
    #[default]
    Refuse,
    /// Let through (`serve --insecure-webhooks`): a lab without Twilio credentials only.
    AcceptInsecure,
}

/// Whether a request Twilio makes may go on: signed with the configured auth token, or already
/// authorised by a `webhook` token ([`BearerAuthorized`]). Anything else is refused unless
/// [`Unsigned::AcceptInsecure`] was asked for: without an auth token only tokens get in.
#[derive(Debug, Clone, Default)]
pub struct TwilioGuard {
    signer: Option<Arc<TwilioSigner>>,
    unsigned: Unsigned,
}

impl TwilioGuard {
    /// Checks signatures with `signer` (none: only tokens, or `unsigned` requests when
    /// [`Unsigned::AcceptInsecure`]).
    pub fn new(signer: Option<TwilioSigner>, unsigned: Unsigned) -> Self {
        TwilioGuard {
            signer: signer.map(Arc::new),
            unsigned,
        }
    }

    /// The signer, when signatures are checked.
    pub fn signer(&self) -> Option<&TwilioSigner> {
        self.signer.as_deref()
    }

    /// Whether requests without a signature or token are let through (`--insecure-webhooks`).
    pub fn is_insecure(&self) -> bool {
        self.unsigned == Unsigned::AcceptInsecure
    }

    /// Whether the request may go on; a [`Refused`] (401 or 403) when it may not.
    pub fn check(
        &self,
        bearer: Option<BearerAuthorized>,
        uri: &Uri,
        headers: &HeaderMap,
        params: &[(String, String)],
    ) -> Result<(), Refused> {
        if bearer.is_some() || self.is_insecure() {
            return Ok(());
        }
        match &self.signer {
            Some(signer) if signer.verify(uri, headers, params) => Ok(()),
            Some(_) => Err(Refused::BadSignature),
            None => Err(Refused::CannotVerify),
        }
    }
}

/// What `serve` logs at start and `/healthz` shows while `--insecure-webhooks` is on.
pub const INSECURE_WARNING: &str = "--insecure-webhooks: the SMS webhooks and the voice webhook \
     accept UNSIGNED requests from anyone (anyone can opt customers out, fake receipts and hear \
     announcements); for a lab only";

/// The other way in, named in every refusal.
const USE_A_TOKEN: &str = "use a webhook-role token (`outagecast token create --role webhook \
     --name NAME`) as the password in the webhook URL (https://twilio:TOKEN@host/path) or as \
     `Authorization: Bearer TOKEN`";

/// A request that should have come from Twilio and is not authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// An auth token is configured and the signature is missing or does not match: 403.
    BadSignature,
    /// No auth token is configured, so no signature can be checked, and no token came: 401
    /// with a Basic challenge, because Twilio sends the credentials of a webhook URL
    /// (`https://user:password@host/...`) only after a 401 that asks for them.
    CannotVerify,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::BadSignature => ApiError::forbidden(format!(
                "X-Twilio-Signature is missing or does not match OUTAGECAST_SMS_AUTH_TOKEN over \
                 OUTAGECAST_PUBLIC_URL and this path (check both settings); or {USE_A_TOKEN}"
            ))
            .at("X-Twilio-Signature")
            .into_response(),
            Refused::CannotVerify => {
                let mut response = ApiError::unauthorized(format!(
                    "this route takes Twilio's X-Twilio-Signature or a webhook-role token, and \
                     this server cannot check signatures: set OUTAGECAST_SMS_AUTH_TOKEN and \
                     OUTAGECAST_PUBLIC_URL, or {USE_A_TOKEN}"
                ))
                .at("Authorization")
                .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"outagecast webhooks\""),
                );
                response
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signature_matches_twilios_published_examples() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            twilio_signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(
            twilio_signature("12345", url, &reversed),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            "order of the form does not matter"
        );
        // A repeated parameter: every value, sorted.
        let repeated = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            twilio_signature("12345", url, &repeated),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
        // Values are signed decoded and as UTF-8 ('+' is a plus, not a space).
        assert_eq!(
            twilio_signature(
                "12345",
                "https://customer.example/cb",
                &pairs(&[("From", "+4915123456789"), ("Body", "hello+world")])
            ),
            "RPmvJzz674XdYurPkoSZxwiOiWM="
        );
        assert_eq!(
            twilio_signature(
                "12345",
                "https://customer.example/cb",
                &pairs(&[("Caller", "Müller"), ("Greeting", "Grüß Gott")])
            ),
            "1u+8eedolvqsC8ybKmeUbdyKfrU="
        );
        assert_ne!(
            twilio_signature("12345", &format!("{url}&x=1"), &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn url_variants_add_or_drop_the_default_port() {
        assert_eq!(
            url_variants("https://a.fi/x?y=1"),
            ["https://a.fi/x?y=1", "https://a.fi:443/x?y=1"]
        );
        assert_eq!(
            url_variants("https://a.fi:443/x"),
            ["https://a.fi:443/x", "https://a.fi/x"]
        );
        assert_eq!(
            url_variants("http://127.0.0.1:8080/x"),
            ["http://127.0.0.1:8080/x"]
        );
        assert_eq!(url_variants("nonsense"), ["nonsense"]);
    }

    #[test]
    fn the_signer_never_prints_the_auth_token() {
        let signer = TwilioSigner {
            auth_token: "twilio-auth-token".into(),
            public_url: "https://notify.example.fi".into(),
        };
        let shown = format!(
            "{signer:?} {:?}",
            TwilioGuard::new(Some(signer.clone()), Unsigned::Refuse)
        );
        assert!(!shown.contains("twilio-auth-token"), "{shown}");
        assert!(shown.contains("https://notify.example.fi"), "{shown}");
    }
}
