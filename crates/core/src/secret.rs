//! Secrets that cannot leak by accident: [`Secret`] prints as `***` in `Debug` and `Display`,
//! so a config struct that holds one can derive `Debug`, and a log line or an error message
//! that formats one shows nothing. [`Secret::expose`] is the one, explicit, way to the value.
//!
//! [`redact_url`] hides the password in a URL's userinfo (`postgres://u:***@host/db`), for
//! URLs that are shown but may carry credentials (database and SMTP URLs).
//!
//! [`WithoutContacts`] prints a text (a provider's or mail server's error) with every phone
//! number and email address in it masked, for log lines at INFO and WARN, which name notices
//! and customers by id only.

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

/// Shows a text with the phone numbers (a run of 7 or more digits, with a leading `+` and
/// single spaces, dashes or dots between digits) as `[phone]` and email addresses (a word with
/// an `@` and a dot after it) as `[email]`. Provider errors quote the recipient ("The 'To'
/// number +358401234567 is not a valid phone number", "550 <anna@example.fi>: unknown user");
/// log lines must not.
///
/// ```
/// use outagecast_core::secret::WithoutContacts;
/// assert_eq!(
///     WithoutContacts("21211: The 'To' number +358 40 123 4567 is not valid").to_string(),
///     "21211: The 'To' number [phone] is not valid"
/// );
/// assert_eq!(
///     WithoutContacts("550 5.1.1 <anna.k@example.fi>: Recipient address rejected").to_string(),
///     "550 5.1.1 <[email]>: Recipient address rejected"
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WithoutContacts<'a>(pub &'a str);

impl fmt::Display for WithoutContacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        // `shown`: how much of `text` is written; `i`: where the scan is.
        let mut shown = 0;
        let mut i = 0;
        while i < text.len() {
            let masked = match phone_len(&text[i..]) {
                Some(len) => Some((i, i + len, "[phone]")),
                None => email_span(text, i).map(|(start, end)| (start.max(shown), end, "[email]")),
            };
            match masked {
                Some((start, end, mask)) => {
                    f.write_str(&text[shown..start])?;
                    f.write_str(mask)?;
                    (i, shown) = (end, end);
                }
                None => i += text[i..].chars().next().map_or(1, char::len_utf8),
            }
        }
        f.write_str(&text[shown..])
    }
}

/// The length of a phone number at the start of `text`, if one starts there.
fn phone_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'+'));
    let (mut digits, mut end) = (0, 0);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                i += 1;
                end = i;
            }
            b' ' | b'-' | b'.'
                if digits > 0 && end == i && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                i += 1;
            }
            _ => break,
        }
    }
    (digits >= 7).then_some(end)
}

fn is_email_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// At an `@` (index `at`) with a local part before it and a dotted domain after it: the
/// address's byte range.
fn email_span(text: &str, at: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(at) != Some(&b'@') {
        return None;
    }
    let mut start = at;
    while start > 0 && is_email_char(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < bytes.len() && is_email_char(bytes[end]) {
        end += 1;
    }
    // A full stop after the address ends the sentence, not the domain.
    let domain = text[at + 1..end].trim_end_matches('.');
    (start < at && domain.contains('.')).then_some((start, at + 1 + domain.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_masked_and_the_rest_kept() {
        let shown = |t: &str| WithoutContacts(t).to_string();
        assert_eq!(
            shown("no contacts, code 21610 at 12:30"),
            "no contacts, code 21610 at 12:30"
        );
        assert_eq!(shown("+358401234567"), "[phone]");
        assert_eq!(shown("to 040-123 4567."), "to [phone].");
        assert_eq!(shown("a@b"), "a@b");
        assert_eq!(shown("mail anna@example.fi."), "mail [email].");
        assert_eq!(shown("x <b.c+d@mail.example.fi>, y"), "x <[email]>, y");
        assert_eq!(shown("Müller +358401234567 ß"), "Müller [phone] ß");
        assert_eq!(shown("@@ @x.fi"), "@@ @x.fi");
        assert_eq!(shown("+3584012345678@x.fi"), "[phone][email]");
    }

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
