//! How a customer is reached: phone numbers (E.164), email addresses, language and channel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// The country whose national number formats are accepted when a number has no country code
/// (`OUTAGECAST_DEFAULT_REGION`, e.g. `FI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(phonenumber::country::Id);

impl Region {
    /// Parses an ISO 3166-1 alpha-2 code such as `FI` or `se`.
    pub fn parse(code: &str) -> Result<Self> {
        let upper = code.trim().to_ascii_uppercase();
        phonenumber::country::Id::from_str(&upper)
            .map(Region)
            .map_err(|_| {
                CoreError::invalid(
                    "default region",
                    format!("{code:?} is not a two-letter country code such as FI, SE or GB"),
                )
            })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Whether a number can take an SMS. Only mobile numbers get text messages; every kind of
/// number is armed in the IVR, because landlines call in too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneKind {
    /// Mobile (also numbers a numbering plan cannot tell apart from mobile, as in the US).
    Mobile,
    /// Fixed line, VoIP, toll-free and anything else that cannot receive SMS.
    Landline,
}

impl PhoneKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneKind::Mobile => "mobile",
            PhoneKind::Landline => "landline",
        }
    }

    /// The inverse of [`PhoneKind::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mobile" => Ok(PhoneKind::Mobile),
            "landline" => Ok(PhoneKind::Landline),
            other => Err(CoreError::invalid(
                "phone kind",
                format!("{other:?} is not mobile or landline"),
            )),
        }
    }
}

/// A valid phone number in E.164 form (`+358401234567`) with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhoneNumber {
    e164: String,
    kind: PhoneKind,
}

impl PhoneNumber {
    /// Parses a number written in international form (`+358 40 123 4567`, `00358…`) or, when a
    /// default region is set, in that country's national form (`040 123 4567`). The number
    /// must be valid in libphonenumber's numbering plan, not merely look like one.
    ///
    /// ```
    /// use outagecast_core::contact::{PhoneKind, PhoneNumber, Region};
    /// let fi = Region::parse("FI").unwrap();
    /// let n = PhoneNumber::parse("040 123 4567", Some(fi)).unwrap();
    /// assert_eq!(n.e164(), "+358401234567");
    /// assert_eq!(n.kind(), PhoneKind::Mobile);
    /// assert!(PhoneNumber::parse("040 123 4567", None).is_err()); // national form needs a region
    /// ```
    pub fn parse(text: &str, default_region: Option<Region>) -> Result<Self> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(CoreError::invalid("phone", "is empty"));
        }
        // `00` is the international prefix in most of the world; libphonenumber only reads it
        // when the default region uses it, so normalise it here for every region.
        let normalised = match trimmed.strip_prefix("00") {
            Some(rest) if !rest.is_empty() => format!("+{rest}"),
            _ => trimmed.to_string(),
        };
        let international = normalised.starts_with('+');
        let region = match (international, default_region) {
            (true, _) => None,
            (false, Some(r)) => Some(r.0),
            (false, None) => {
                return Err(CoreError::invalid(
                    "phone",
                    format!(
                        "{trimmed:?} has no country code; write it as +<country code><number> \
                         or set OUTAGECAST_DEFAULT_REGION (e.g. FI) for national numbers"
                    ),
                ));
            }
        };
        let parsed = phonenumber::parse(region, &normalised).map_err(|e| {
            CoreError::invalid("phone", format!("{trimmed:?} is not a phone number ({e})"))
        })?;
        if !parsed.is_valid() {
            return Err(CoreError::invalid(
                "phone",
                format!(
                    "{trimmed:?} is not a valid number in its country's numbering plan; check the digits and the country code"
                ),
            ));
        }
        let kind = match parsed.number_type(&phonenumber::metadata::DATABASE) {
            phonenumber::Type::Mobile | phonenumber::Type::FixedLineOrMobile => PhoneKind::Mobile,
            _ => PhoneKind::Landline,
        };
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(PhoneNumber { e164, kind })
    }

    /// Rebuilds a number read back from the store, which only ever holds parsed numbers.
    pub fn from_stored(e164: String, kind: PhoneKind) -> Self {
        PhoneNumber { e164, kind }
    }

    /// `+358401234567`.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// Mobile or landline.
    pub fn kind(&self) -> PhoneKind {
        self.kind
    }

    /// The number with all but the last three digits hidden, for logs and operator screens.
    pub fn masked(&self) -> String {
        mask_tail(&self.e164, 3)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Keeps the first character (`+`) and the last `keep` characters.
fn mask_tail(s: &str, keep: usize) -> String {
    let n = s.chars().count();
    s.chars()
        .enumerate()
        .map(|(i, c)| if i == 0 || i + keep >= n { c } else { '•' })
        .collect()
}

/// A syntactically valid email address (RFC 5321/5322 via the `email_address` crate), with the
/// domain lower-cased so that the same mailbox is one contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// ```
    /// use outagecast_core::contact::EmailAddress;
    /// assert_eq!(EmailAddress::parse(" Anna@Example.COM ").unwrap().as_str(), "Anna@example.com");
    /// assert!(EmailAddress::parse("anna.example.com").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        if !email_address::EmailAddress::is_valid(trimmed) {
            return Err(CoreError::invalid(
                "email",
                format!("{trimmed:?} is not an email address (expected name@domain.tld)"),
            ));
        }
        let (local, domain) = trimmed
            .rsplit_once('@')
            .ok_or_else(|| CoreError::invalid("email", format!("{trimmed:?} has no @")))?;
        if !domain.contains('.') {
            return Err(CoreError::invalid(
                "email",
                format!("{trimmed:?} has no domain name after the @ (expected name@domain.tld)"),
            ));
        }
        Ok(EmailAddress(format!(
            "{local}@{}",
            domain.to_ascii_lowercase()
        )))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with the local part hidden but its first letter, for logs.
    pub fn masked(&self) -> String {
        match self.0.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}•••@{domain}")
            }
            None => "•••".to_string(),
        }
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        EmailAddress::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> Self {
        e.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The utility's name as customers know it (`OUTAGECAST_SENDER_NAME`, "Helsinki Water"): in the
/// HELP reply and as the display name of email sent from a bare address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SenderName(String);

impl SenderName {
    /// One line of 1 to 60 characters, trimmed.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.is_empty() || t.chars().count() > 60 || t.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "OUTAGECAST_SENDER_NAME",
                format!(
                    "{text:?} is not a name of one line and at most 60 characters, e.g. \"Helsinki Water\""
                ),
            ));
        }
        Ok(SenderName(t.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SenderName {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        SenderName::parse(&s)
    }
}

impl From<SenderName> for String {
    fn from(n: SenderName) -> String {
        n.0
    }
}

/// The languages that messages and announcements are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Finnish.
    Fi,
    /// Swedish.
    Sv,
    /// English.
    En,
}

impl Language {
    /// Every supported language.
    pub const ALL: [Language; 3] = [Language::Fi, Language::Sv, Language::En];

    /// Accepts `fi`, `FI`, `fi-FI`, `sv_FI` and the like.
    pub fn parse(text: &str) -> Result<Self> {
        let primary = text
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "fi" => Ok(Language::Fi),
            "sv" => Ok(Language::Sv),
            "en" => Ok(Language::En),
            _ => Err(CoreError::invalid(
                "language",
                format!("{text:?} is not supported; use fi, sv or en"),
            )),
        }
    }

    /// The ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Language::Fi => "fi",
            Language::Sv => "sv",
            Language::En => "en",
        }
    }

    /// The BCP 47 tag a text-to-speech engine expects (`fi-FI`).
    pub fn speech_tag(self) -> &'static str {
        match self {
            Language::Fi => "fi-FI",
            Language::Sv => "sv-SE",
            Language::En => "en-GB",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How a notice travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A text message to a mobile number.
    Sms,
    /// An email.
    Email,
    /// A call to a phone, the message spoken (landlines, and customers who ask for calls).
    Voice,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Voice];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Voice => "voice",
        }
    }

    /// The inverse of [`Channel::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sms" => Ok(Channel::Sms),
            "email" => Ok(Channel::Email),
            "voice" => Ok(Channel::Voice),
            other => Err(CoreError::invalid(
                "channel",
                format!("{other:?} is not sms, email or voice"),
            )),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phone number as any text (E.164 or not, valid or not) with its middle digits hidden, for
/// log lines at info level and above: the country code and the following digits (at most five
/// digits in all) and the last two stay, at least four digits are always hidden, and anything
/// that is not a digit is kept as written.
///
/// ```
/// use outagecast_core::contact::mask_phone;
/// assert_eq!(mask_phone("+358401234567"), "+35840*****67");
/// assert_eq!(mask_phone("+1 555 010 9999"), "+1 555 0** **99");
/// assert_eq!(mask_phone("040123"), "****23");
/// assert_eq!(mask_phone("112"), "***");
/// ```
pub fn mask_phone(text: &str) -> String {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let tail = if digits >= 6 { 2 } else { 0 };
    let head = 5.min(digits.saturating_sub(tail + 4));
    let mut seen = 0;
    text.chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen <= head || seen > digits - tail {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// An email address as any text with all of its local part but the first character hidden,
/// for log lines at info level and above. The domain stays; text without an `@` is hidden
/// whole.
///
/// ```
/// use outagecast_core::contact::mask_email;
/// assert_eq!(mask_email("anna.virtanen@example.fi"), "a***@example.fi");
/// assert_eq!(mask_email("@example.fi"), "***@example.fi");
/// assert_eq!(mask_email("not an address"), "***");
/// ```
pub fn mask_email(text: &str) -> String {
    match text.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fi() -> Option<Region> {
        Some(Region::parse("fi").unwrap())
    }

    #[test]
    fn international_and_national_forms_agree() {
        let a = PhoneNumber::parse("+358 40 123 4567", None).unwrap();
        let b = PhoneNumber::parse("00358401234567", None).unwrap();
        let c = PhoneNumber::parse("040-123 4567", fi()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.masked(), "+•••••••••567");
    }

    #[test]
    fn landlines_are_told_apart_from_mobiles() {
        let helsinki = PhoneNumber::parse("+358 9 310 1641", None).unwrap();
        assert_eq!(helsinki.kind(), PhoneKind::Landline);
        let sample = PhoneNumber::parse("+358481234567", None).unwrap();
        assert_eq!(sample.kind(), PhoneKind::Mobile);
    }

    #[test]
    fn junk_is_refused_with_the_field_named() {
        for bad in ["", "hello", "+358 12", "+999 1234567"] {
            let err = PhoneNumber::parse(bad, fi()).unwrap_err().to_string();
            assert!(err.starts_with("phone"), "{bad}: {err}");
        }
        let err = PhoneNumber::parse("0401234567", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("OUTAGECAST_DEFAULT_REGION"), "{err}");
        assert!(Region::parse("XX").is_err());
    }

    #[test]
    fn languages_accept_locale_forms() {
        assert_eq!(Language::parse("sv-FI").unwrap(), Language::Sv);
        assert_eq!(Language::parse("EN").unwrap(), Language::En);
        assert!(Language::parse("de").is_err());
        assert!(Language::parse("").is_err());
    }
}
