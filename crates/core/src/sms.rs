//! How many SMS segments a text costs: what the provider bills and rate-limits.
//!
//! GSM-7 (3GPP TS 23.038 default alphabet): 160 septets in one message, 153 per part of a
//! concatenated one; characters of the extension table (`^{}\[~]|€` and form feed) take two
//! septets and are never split across parts. Any character outside the alphabet makes the whole
//! text UCS-2: 70 UTF-16 units alone, 67 per part, surrogate pairs never split.

use serde::Serialize;

/// The GSM 03.38 basic character set (ESC, 0x1B, is not a character of its own).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table: each costs an escape plus itself.
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{0C}";

/// The encoding a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// The 7-bit GSM default alphabet.
    Gsm7,
    /// UCS-2 (UTF-16).
    Ucs2,
}

/// The cost of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    /// GSM-7 or UCS-2.
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// Messages the provider sends and bills.
    pub count: u32,
}

fn gsm_cost(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Packs items of the given sizes into parts of `single` (when everything fits in one) or
/// `multi` units, never splitting an item.
fn pack(sizes: impl Iterator<Item = usize> + Clone, single: usize, multi: usize) -> (usize, u32) {
    let total: usize = sizes.clone().sum();
    if total <= single {
        return (total, 1);
    }
    let mut parts = 1;
    let mut used = 0;
    for size in sizes {
        if used + size > multi {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    (total, parts)
}

/// Counts the segments of `text`.
///
/// ```
/// use outagecast_core::sms::{segments, Encoding};
/// let s = segments("Water is back on Kaivokatu.");
/// assert_eq!((s.encoding, s.count), (Encoding::Gsm7, 1));
/// assert_eq!(segments(&"a".repeat(161)).count, 2);
/// let s = segments("Vesikatko Kaivokadulla – korjaus klo 15.");
/// assert_eq!(s.encoding, Encoding::Ucs2, "the en dash is not in GSM-7");
/// ```
pub fn segments(text: &str) -> Segments {
    if text.chars().all(|c| gsm_cost(c).is_some()) {
        let sizes = text.chars().map(|c| gsm_cost(c).unwrap_or(1));
        let (units, count) = pack(sizes, 160, 153);
        Segments {
            encoding: Encoding::Gsm7,
            units,
            count,
        }
    } else {
        let sizes = text.chars().map(char::len_utf16);
        let (units, count) = pack(sizes, 70, 67);
        Segments {
            encoding: Encoding::Ucs2,
            units,
            count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_boundaries() {
        assert_eq!(segments("").count, 1);
        assert_eq!(segments(&"x".repeat(160)).count, 1);
        assert_eq!(segments(&"x".repeat(161)).count, 2);
        assert_eq!(segments(&"x".repeat(306)).count, 2);
        assert_eq!(segments(&"x".repeat(307)).count, 3);
        // Finnish and Swedish letters are in the basic set.
        assert_eq!(segments("Ääkköset: åäö ÅÄÖ").encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_twice_and_are_not_split() {
        let s = segments(&"€".repeat(80));
        assert_eq!((s.encoding, s.units, s.count), (Encoding::Gsm7, 160, 1));
        assert_eq!(segments(&"€".repeat(81)).count, 2);
        // 152 plain + one escape pair: 154 septets do not fit a 153-septet part.
        let text = format!("{}€{}", "x".repeat(152), "x".repeat(10));
        assert_eq!(segments(&text).count, 2);
        let s = segments(&format!("{}€", "x".repeat(152)));
        assert_eq!((s.units, s.count), (154, 1));
    }

    #[test]
    fn ucs2_boundaries() {
        assert_eq!(segments(&"ж".repeat(70)).count, 1);
        assert_eq!(segments(&"ж".repeat(71)).count, 2);
        assert_eq!(segments(&"ж".repeat(134)).count, 2);
        assert_eq!(segments(&"ж".repeat(135)).count, 3);
        // An emoji is a surrogate pair: two units, never split.
        let s = segments(&"😀".repeat(35));
        assert_eq!((s.encoding, s.units, s.count), (Encoding::Ucs2, 70, 1));
    }
}
