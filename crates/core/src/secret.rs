//! Secrets that cannot leak by accident: [`Secret`] prints as `***` in `Debug` and `Display`,
//! so a config struct that holds one can derive `Debug`, and a log line or an error message
//! that formats one shows nothing. [`Secret::expose`] is the one, explicit, way to the value.
//!
//! [`redact_url`] hides the password in a URL's userinfo (`postgres://u:***@host/db`), for
//! URLs that are shown but may carry credentials (database and SMTP URLs).

use std::fmt;

/// What a secret prints as.
pub const REDACTED: &str = "***";

/// A value that must not be printed: an auth token, a password, a signing key.
///
/// ```
/// use outagecast_core::secret::Secret;
/// let token = Secret::new("hunter2".to_string());
/// assert_eq!(format!("{token:?} {token}"), "*** ***");
/// assert_eq!(token.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself, for the one place that must use it (an HMAC key, an HTTP header).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The URL with the password of its userinfo shown as `***`: `smtp://bob:pw@host:25` →
/// `smtp://bob:***@host:25`, `postgres://u:pw@h/db` → `postgres://u:***@h/db`. A URL without
/// a password, and text that is not a URL (a SQLite file path), come back as they are.
///
/// ```
/// use outagecast_core::secret::redact_url;
/// assert_eq!(redact_url("postgres://u:pw@127.0.0.1:1/x"), "postgres://u:***@127.0.0.1:1/x");
/// assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
/// assert_eq!(redact_url("data/outagecast.db"), "data/outagecast.db");
/// ```
pub fn redact_url(url: &str) -> String {
    match url_password_span(url) {
        Some((start, end)) => format!("{}{REDACTED}{}", &url[..start], &url[end..]),
        None => url.to_string(),
    }
}

/// The password part of a URL's userinfo, if there is one.
///
/// ```
/// use outagecast_core::secret::url_password;
/// assert_eq!(url_password("postgres://u:p@h/db"), Some("p"));
/// assert_eq!(url_password("https://h/x@y"), None);
/// ```
pub fn url_password(url: &str) -> Option<&str> {
    url_password_span(url).map(|(start, end)| &url[start..end])
}

/// Byte range of the password in `scheme://user:password@host…`.
fn url_password_span(url: &str) -> Option<(usize, usize)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    (colon + 1 < at).then_some((authority_start + colon + 1, authority_start + at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_as_stars_everywhere() {
        let s: Secret<String> = "abc-token".into();
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "abc-token");
    }

    #[test]
    fn url_passwords_are_hidden_and_nothing_else() {
        assert_eq!(
            redact_url("smtp://bob:hunter2@mail.example.fi:587?tls=none"),
            "smtp://bob:***@mail.example.fi:587?tls=none"
        );
        assert_eq!(redact_url("smtp://mail:25"), "smtp://mail:25");
        assert_eq!(redact_url("https://h/x@y:z"), "https://h/x@y:z");
        assert_eq!(redact_url("postgres://u:@h/db"), "postgres://u:@h/db");
        assert_eq!(redact_url("postgres://u:p:q@h"), "postgres://u:***@h");
        assert_eq!(url_password("postgres://u:p:q@h"), Some("p:q"));
        assert_eq!(url_password("sqlite:data.db"), None);
    }
}
