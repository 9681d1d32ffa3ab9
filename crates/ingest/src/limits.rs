//! Size limits on what one request may ask the engine to work through: vertices per area and
//! characters per address (CAP's own limits are in [`crate::cap`]). Each refusal names the
//! limit and the setting that changes it, so an operator with a genuinely larger outline knows
//! what to do.

use outagecast_core::area::Area;

use crate::error::{IngestError, Result};

/// Most vertices in one area, summed over every ring of every polygon, every line and every
/// part of a union. A district drawn by hand has hundreds; a coastline export can have millions,
/// and is better simplified first.
pub const DEFAULT_MAX_AREA_VERTICES: usize = 100_000;
/// Longest street address accepted, in characters. A real address is under 100.
pub const DEFAULT_MAX_ADDRESS_CHARS: usize = 200;
/// The setting for [`Limits::max_area_vertices`].
pub const MAX_AREA_VERTICES_KEY: &str = "OUTAGECAST_MAX_AREA_VERTICES";
/// The setting for [`Limits::max_address_chars`].
pub const MAX_ADDRESS_CHARS_KEY: &str = "OUTAGECAST_MAX_ADDRESS_CHARS";

/// How large an area or an address may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most vertices in one area.
    pub max_area_vertices: usize,
    /// Most characters in one address.
    pub max_address_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_area_vertices: DEFAULT_MAX_AREA_VERTICES,
            max_address_chars: DEFAULT_MAX_ADDRESS_CHARS,
        }
    }
}

impl Limits {
    /// The settings read by [`Limits::from_lookup`], with their defaults.
    pub const KEYS: &'static [(&'static str, Option<&'static str>)] = &[
        (MAX_AREA_VERTICES_KEY, Some("100000")),
        (MAX_ADDRESS_CHARS_KEY, Some("200")),
    ];

    /// The limits from settings looked up by name (environment, then the config file); an
    /// unset one keeps its default.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Limits> {
        let read = |key: &str, default: usize| -> Result<usize> {
            match get(key) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(IngestError::invalid(
                        key,
                        format!("{text:?} is not a positive whole number (default {default})"),
                    )),
                },
            }
        };
        Ok(Limits {
            max_area_vertices: read(MAX_AREA_VERTICES_KEY, DEFAULT_MAX_AREA_VERTICES)?,
            max_address_chars: read(MAX_ADDRESS_CHARS_KEY, DEFAULT_MAX_ADDRESS_CHARS)?,
        })
    }

    /// Refuses an area with more vertices than [`Limits::max_area_vertices`].
    pub fn area(&self, area: &Area, field: &str) -> Result<()> {
        self.vertices(area.vertex_count(), field)
    }

    /// Refuses `n` positions, counted in a parsed document before any area is built from it:
    /// the parsers call this so that an oversized outline costs a count, not a validity check.
    pub fn vertices(&self, n: usize, field: &str) -> Result<()> {
        if n > self.max_area_vertices {
            return Err(IngestError::too_large(
                field,
                format!(
                    "has {n} vertices, more than the limit of {} ({MAX_AREA_VERTICES_KEY}); simplify the outline or split it into zones",
                    self.max_area_vertices
                ),
            ));
        }
        Ok(())
    }

    /// Refuses an address longer than [`Limits::max_address_chars`], before any geocoding.
    pub fn address(&self, text: &str, field: &str) -> Result<()> {
        // Counting stops one past the limit: a megabyte of text costs no more than a long line.
        let n = text.chars().take(self.max_address_chars + 1).count();
        if n > self.max_address_chars {
            return Err(IngestError::too_large(
                field,
                format!(
                    "is longer than the limit of {} characters ({MAX_ADDRESS_CHARS_KEY}); give the street, house number and city only",
                    self.max_address_chars
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::area::polygon_from_ring;

    #[test]
    fn limits_name_themselves_and_their_setting() {
        let square = Area::Polygon(
            polygon_from_ring(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
                .unwrap(),
        );
        let tight = Limits {
            max_area_vertices: 4,
            max_address_chars: 5,
        };
        let err = tight.area(&square, "area").unwrap_err();
        assert!(matches!(err, IngestError::TooLarge { .. }));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "area: has 5 vertices, more than the limit of 4 (OUTAGECAST_MAX_AREA_VERTICES)"
            ),
            "{text}"
        );
        assert!(Limits::default().area(&square, "area").is_ok());
        let text = tight
            .address("Kaivokatu 1", "--address")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("limit of 5 characters (OUTAGECAST_MAX_ADDRESS_CHARS)"),
            "{text}"
        );
        assert!(
            tight.address("Töölö", "--address").is_ok(),
            "characters, not bytes"
        );
        let long = "a ".repeat(500_000);
        assert!(Limits::default().address(&long, "address").is_err());
    }

    #[test]
    fn settings_are_read_and_checked() {
        let limits =
            Limits::from_lookup(|k| (k == MAX_AREA_VERTICES_KEY).then(|| "500".into())).unwrap();
        assert_eq!(limits.max_area_vertices, 500);
        assert_eq!(limits.max_address_chars, DEFAULT_MAX_ADDRESS_CHARS);
        let err = Limits::from_lookup(|k| (k == MAX_ADDRESS_CHARS_KEY).then(|| "lots".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("OUTAGECAST_MAX_ADDRESS_CHARS: \"lots\""),
            "{err}"
        );
    }
}
