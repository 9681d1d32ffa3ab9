//! A caller number as the index keys it.

use std::fmt;

use outagecast_core::contact::Region;
use outagecast_core::ivr::normalise_caller;

/// A caller number in E.164, held as its digits in a `u64` (E.164 has at most 15 digits and
/// never starts with 0, so the digits alone are unambiguous). Eight bytes, hashed and compared
/// in one instruction: this is what keeps a 10-million-number index small and fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallerKey(u64);

impl CallerKey {
    /// Reads a number already in E.164 form (`+358401234567`), as the store holds them.
    /// `None` for anything else; no numbering-plan check (the store only holds valid numbers).
    ///
    /// ```
    /// use outagecast_ivr::CallerKey;
    /// assert_eq!(CallerKey::parse("+358401234567").unwrap().to_string(), "+358401234567");
    /// assert!(CallerKey::parse("358401234567").is_none());
    /// assert!(CallerKey::parse("+0401234567").is_none());
    /// ```
    pub fn parse(e164: &str) -> Option<Self> {
        digits_key(e164.strip_prefix('+')?)
    }

    /// Reads whatever a phone system sends as the caller number (see
    /// [`outagecast_core::ivr::normalise_caller`]). `None` when it is not a valid number.
    pub fn read(raw: &str, default_region: Option<Region>) -> Option<Self> {
        normalise_caller(raw, default_region).and_then(|e164| Self::parse(&e164))
    }

    /// The shortcut for the form phone platforms nearly always send: `+` and digits, or a
    /// space and digits where a query string's `+` was decoded as a space. No numbering-plan
    /// check, so a hit in the index is authoritative (the index only holds valid numbers) but
    /// a miss is not: the caller then tries [`CallerKey::read`].
    pub fn fast(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix('+').or_else(|| raw.strip_prefix(' '))?;
        digits_key(rest.trim_end())
    }

    /// The number as E.164 text.
    pub fn e164(self) -> String {
        self.to_string()
    }

    /// The digits as an integer (for hashing into shards).
    pub(crate) fn value(self) -> u64 {
        self.0
    }

    /// The inverse of [`CallerKey::value`], for keys the index itself stored.
    pub(crate) fn from_value(n: u64) -> Self {
        CallerKey(n)
    }
}

/// 1–15 ASCII digits, the first not 0.
fn digits_key(digits: &str) -> Option<CallerKey> {
    let bytes = digits.as_bytes();
    if bytes.is_empty() || bytes.len() > 15 || bytes[0] == b'0' {
        return None;
    }
    let mut n: u64 = 0;
    for b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        // Fifteen digits are below 10^15 < 2^50: no overflow.
        n = n * 10 + u64::from(b - b'0');
    }
    Some(CallerKey(n))
}

impl fmt::Display for CallerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fast_path_takes_plus_and_decoded_plus_only() {
        let k = CallerKey::parse("+358401234567").unwrap();
        assert_eq!(CallerKey::fast("+358401234567"), Some(k));
        assert_eq!(CallerKey::fast(" 358401234567"), Some(k));
        assert_eq!(CallerKey::fast(" 358401234567\r\n"), Some(k));
        for other in [
            "358401234567",
            "0401234567",
            "+358 40 123 4567",
            "+",
            " ",
            "",
        ] {
            assert_eq!(CallerKey::fast(other), None, "{other:?}");
        }
        assert_eq!(CallerKey::fast("+1234567890123456"), None, "16 digits");
    }

    #[test]
    fn read_agrees_with_the_core_normaliser() {
        let fi = Some(Region::parse("FI").unwrap());
        let k = CallerKey::parse("+358401234567").unwrap();
        for raw in [
            "0401234567",
            "00358401234567",
            "358401234567",
            "+358 40 123 4567",
        ] {
            assert_eq!(CallerKey::read(raw, fi), Some(k), "{raw}");
        }
        assert_eq!(CallerKey::read("anonymous", fi), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn keys_round_trip(n in 1u64..999_999_999_999_999) {
            let text = format!("+{n}");
            let k = CallerKey::parse(&text).unwrap();
            prop_assert_eq!(k.to_string(), text);
        }

        /// Never a panic, and a fast key is always the same number as E.164 with a '+'.
        #[test]
        fn fast_never_panics(raw in ".{0,40}") {
            if let Some(k) = CallerKey::fast(&raw) {
                prop_assert_eq!(CallerKey::parse(&k.e164()), Some(k));
            }
            let _ = CallerKey::read(&raw, None);
        }
    }
}
