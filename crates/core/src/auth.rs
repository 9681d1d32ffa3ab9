//! Who may do what through the API: roles, the actions routes perform, and API token secrets.
//!
//! Pure like the rest of the core: [`TokenSecret::generate`] takes its random bytes from the
//! caller, and the store keeps only [`TokenSecret::hash`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

/// What a token may do, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including managing tokens.
    Admin,
    /// The control room: declare and follow incidents, import customers, read the audit log.
    Operator,
    /// Read incidents, customers and the audit log; change nothing.
    Viewer,
    /// The phone system: look caller numbers up, nothing else.
    Ivr,
    /// A provider posting delivery receipts and replies, nothing else.
    Webhook,
}

impl Role {
    /// Every role, in order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Ivr,
        Role::Webhook,
    ];

    /// The spelling on the command line, in JSON and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Ivr => "ivr",
            Role::Webhook => "webhook",
        }
    }

    /// The inverse of [`Role::as_str`] (any case, surrounding spaces ignored).
    ///
    /// ```
    /// use outagecast_core::auth::Role;
    /// assert_eq!(Role::parse(" Operator ").unwrap(), Role::Operator);
    /// let e = Role::parse("root").unwrap_err().to_string();
    /// assert!(e.starts_with("role:") && e.contains("admin, operator, viewer, ivr, webhook"));
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim().to_ascii_lowercase();
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == t)
            .ok_or_else(|| {
                CoreError::invalid(
                    "role",
                    format!(
                        "{text:?} is not a role; use one of {}",
                        Role::ALL.map(Role::as_str).join(", ")
                    ),
                )
            })
    }

    /// Whether this role may perform `action`. The whole policy is this one table.
    pub fn allows(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            // Metrics are for the scraper, with the admin token or on `--metrics-listen`.
            Role::Operator => !matches!(action, ManageTokens | Webhook | ReadMetrics),
            Role::Viewer => matches!(action, ReadIncidents | ReadCustomers | ReadAudit),
            Role::Ivr => matches!(action, IvrLookup),
            Role::Webhook => matches!(action, Webhook),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API route does, for [`Role::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Get, list, report on or preview incidents.
    ReadIncidents,
    /// Declare, update, restore or cancel an incident.
    Declare,
    /// Upload or delete customers; import zones.
    ImportCustomers,
    /// List or get customers.
    ReadCustomers,
    /// Read the audit log.
    ReadAudit,
    /// Look a caller number up (the IVR routes).
    IvrLookup,
    /// Post a provider webhook (delivery receipts, replies).
    Webhook,
    /// Create, list or revoke API tokens.
    ManageTokens,
    /// Scrape `/metrics`.
    ReadMetrics,
}

impl Action {
    /// Every action, in order.
    pub const ALL: [Action; 9] = [
        Action::ReadIncidents,
        Action::Declare,
        Action::ImportCustomers,
        Action::ReadCustomers,
        Action::ReadAudit,
        Action::IvrLookup,
        Action::Webhook,
        Action::ManageTokens,
        Action::ReadMetrics,
    ];

    /// The spelling in error messages and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadIncidents => "read_incidents",
            Action::Declare => "declare",
            Action::ImportCustomers => "import_customers",
            Action::ReadCustomers => "read_customers",
            Action::ReadAudit => "read_audit",
            Action::IvrLookup => "ivr_lookup",
            Action::Webhook => "webhook",
            Action::ManageTokens => "manage_tokens",
            Action::ReadMetrics => "read_metrics",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API token as its holder presents it: `oc_` and 43 characters of unpadded base64url
/// (32 random bytes). It is shown once, at creation; the store keeps only its [`hash`].
///
/// It has no `Display` and no `Serialize`, and its `Debug` hides it, so it cannot end up in a
/// log line or a JSON answer by accident: [`TokenSecret::expose`] is the one way to the text.
///
/// [`hash`]: TokenSecret::hash
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

/// What every token starts with, so that a leaked one is recognisable (secret scanners).
const TOKEN_PREFIX: &str = "oc_";
/// Unpadded base64 of 32 bytes.
const TOKEN_BODY_LEN: usize = 43;

impl TokenSecret {
    /// The token for 32 random bytes (the caller draws them from a CSPRNG).
    ///
    /// ```
    /// use outagecast_core::auth::TokenSecret;
    /// let t = TokenSecret::generate([7; 32]);
    /// assert!(t.expose().starts_with("oc_") && t.expose().len() == 46);
    /// assert_eq!(TokenSecret::parse(t.expose()).unwrap(), t);
    /// ```
    pub fn generate(rng_bytes: [u8; 32]) -> TokenSecret {
        TokenSecret(format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(rng_bytes)
        ))
    }

    /// A token as presented (e.g. from an `Authorization: Bearer` header), checked for shape.
    /// The error never repeats the text: it may be a real secret pasted in the wrong place.
    pub fn parse(text: &str) -> Result<TokenSecret> {
        let bad = |problem: &str| {
            CoreError::invalid(
                "token",
                format!(
                    "{problem}; a token is \"oc_\" followed by {TOKEN_BODY_LEN} characters \
                     (A-Z a-z 0-9 - _), as printed once by `token create`"
                ),
            )
        };
        let t = text.trim();
        let body = t
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| bad("does not start with \"oc_\""))?;
        if body.len() != TOKEN_BODY_LEN {
            return Err(bad(&format!(
                "has {} characters after \"oc_\"",
                body.chars().count()
            )));
        }
        // The engine rejects characters outside the alphabet and non-zero trailing bits, so
        // every accepted text is exactly what `generate` makes of some 32 bytes.
        match URL_SAFE_NO_PAD.decode(body) {
            Ok(bytes) if bytes.len() == 32 => Ok(TokenSecret(t.to_string())),
            _ => Err(bad("is not a token this server issued")),
        }
    }

    /// The token's text, to print once at creation or to send as a client. Nothing else
    /// should need it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The lowercase hex SHA-256 of the token's text: what the store keeps and looks up.
    ///
    /// ```
    /// use outagecast_core::auth::TokenSecret;
    /// let h = TokenSecret::generate([0; 32]).hash();
    /// assert_eq!(h.len(), 64);
    /// assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    /// ```
    pub fn hash(&self) -> String {
        use fmt::Write as _;
        let digest = Sha256::digest(self.0.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(oc_…)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_print_and_serialise_alike() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
            assert_eq!(Role::parse(&r.as_str().to_uppercase()).unwrap(), r);
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
            assert_eq!(r.to_string(), r.as_str());
        }
        let e = Role::parse("superuser").unwrap_err();
        match &e {
            CoreError::Invalid { field, problem } => {
                assert_eq!(field, "role");
                assert!(problem.contains("\"superuser\""), "{problem}");
                assert!(
                    problem.contains("admin, operator, viewer, ivr, webhook"),
                    "{problem}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }

    #[test]
    fn the_whole_permission_table() {
        use Action::*;
        // One row per role: the actions it may perform. Everything not listed is refused.
        let table: [(Role, &[Action]); 5] = [
            (
                Role::Admin,
                &[
                    ReadIncidents,
                    Declare,
                    ImportCustomers,
                    ReadCustomers,
                    ReadAudit,
                    IvrLookup,
                    Webhook,
                    ManageTokens,
                    ReadMetrics,
                ],
            ),
            (
                Role::Operator,
                &[
                    ReadIncidents,
                    Declare,
                    ImportCustomers,
                    ReadCustomers,
                    ReadAudit,
                    IvrLookup,
                ],
            ),
            (Role::Viewer, &[ReadIncidents, ReadCustomers, ReadAudit]),
            (Role::Ivr, &[IvrLookup]),
            (Role::Webhook, &[Webhook]),
        ];
        for (role, allowed) in table {
            for action in Action::ALL {
                assert_eq!(
                    role.allows(action),
                    allowed.contains(&action),
                    "{role} {action}"
                );
            }
        }
        assert_eq!(
            table.map(|(r, _)| r),
            Role::ALL,
            "every role is in the table"
        );
    }

    #[test]
    fn a_generated_token_parses_back_and_hashes_stably() {
        let t = TokenSecret::generate([0xAB; 32]);
        let text = t.expose().to_string();
        assert_eq!(text.len(), 3 + 43);
        assert!(
            text[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let back = TokenSecret::parse(&format!(" {text}\n")).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.hash(), t.hash());
        assert_ne!(TokenSecret::generate([0xAC; 32]).hash(), t.hash());
        // Known answer: SHA-256 of the text, lowercase hex.
        let zero = TokenSecret::generate([0; 32]);
        assert_eq!(zero.expose(), format!("oc_{}", "A".repeat(43)));
        assert_eq!(
            zero.hash(),
            "481a5d6b204fb7727a27d345f4f87fdb5a57eddd25c6579ce784aad8d47726ee"
        );
    }

    #[test]
    fn malformed_tokens_are_refused_without_echoing_them() {
        let good = TokenSecret::generate([5; 32]).expose().to_string();
        let body = &good[3..];
        let cases = [
            String::new(),
            body.to_string(),                  // no prefix
            format!("oc_{}", &body[..42]),     // short
            format!("{good}A"),                // long
            format!("oc_{}+", &body[..42]),    // standard base64, not url-safe
            format!("oc_{}=", &body[..42]),    // padding
            format!("oc_{}B", "A".repeat(42)), // non-zero trailing bits: not canonical
            format!("Oc_{body}"),              // prefix is case-sensitive
            format!("oc_{}é", &body[..41]),    // non-ASCII, 43 bytes
        ];
        for case in cases {
            let e = TokenSecret::parse(&case).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("token: "), "{msg}");
            if case.len() > 3 {
                assert!(!msg.contains(&case[3..]), "{msg} echoes the input");
            }
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = TokenSecret::generate([9; 32]);
        let shown = format!("{t:?} {:?}", Some(&t));
        assert!(!shown.contains(&t.expose()[3..]), "{shown}");
        assert!(!shown.contains(&t.expose()[3..10]), "{shown}");
    }
}
