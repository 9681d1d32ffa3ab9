//! The safety rails checked before a declaration writes anything, in order: an area that
//! holds nobody but would with longitude and latitude swapped is refused as swapped; an empty
//! area is refused unless allowed; an area holding more customers than the confirmation
//! threshold is refused unless the exact count is repeated.
//!
//! An update that grows the area passes the same rails: the new area may not be empty (or look
//! swapped), and the customers it adds must be confirmed above the threshold.
//!
//! The rules are one; the words differ by front end (`--allow-empty` on the command line,
//! `allow_empty` in the API), so a [`Refusal`] is explained with a [`Spelling`].

/// Customers an area may hold before a declaration needs the count confirmed.
pub const DEFAULT_CONFIRM_THRESHOLD: u64 = 5_000;

/// What the operator allowed or confirmed for one declaration.
#[derive(Debug, Clone, Copy)]
pub struct Rails {
    /// Declare an area that holds nobody.
    pub allow_empty: bool,
    /// The count the operator confirmed, if any.
    pub confirm: Option<u64>,
    /// Customers an area may hold before `confirm` is needed.
    pub confirm_threshold: u64,
}

impl Default for Rails {
    fn default() -> Self {
        Rails {
            allow_empty: false,
            confirm: None,
            confirm_threshold: DEFAULT_CONFIRM_THRESHOLD,
        }
    }
}

/// Why a declaration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody inside, but `mirrored` customers with the coordinates swapped.
    Swapped {
        /// The area, described.
        area: String,
        /// Customers in the mirrored area.
        mirrored: usize,
    },
    /// Nobody inside.
    Empty {
        /// The area, described.
        area: String,
    },
    /// The confirmed count is not the count.
    ConfirmMismatch {
        /// What the operator confirmed.
        given: u64,
        /// What the area holds, or adds.
        count: u64,
        /// Which count needs confirming.
        counted: Counted,
    },
    /// More customers than the threshold, and no confirmation.
    NeedsConfirm {
        /// What the area holds, or adds.
        count: u64,
        /// The threshold.
        threshold: u64,
        /// Which count needs confirming.
        counted: Counted,
    },
}

/// Which count the confirmation rail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The customers a declared area holds.
    Holds,
    /// The customers an updated area adds (the newly affected).
    Adds,
}

impl Counted {
    fn phrase(self, count: u64) -> String {
        match self {
            Counted::Holds => format!("holds {count} customers"),
            Counted::Adds => format!("adds {count} customers (newly affected)"),
        }
    }

    fn object(self) -> &'static str {
        match self {
            Counted::Holds => "this area holds",
            Counted::Adds => "the new area adds",
        }
    }
}

/// How a front end names the rails' inputs in its messages.
#[derive(Debug, Clone, Copy)]
pub struct Spelling {
    /// The switch that allows an empty area (`--allow-empty`).
    pub allow_empty: &'static str,
    /// The confirmed count (`--confirm`).
    pub confirm: &'static str,
    /// Where the threshold is set.
    pub threshold: &'static str,
    /// How to preview (`incident preview`).
    pub preview: &'static str,
    /// How the input writes coordinates, for the swapped hint.
    pub order: &'static str,
    /// The GeoJSON area input.
    pub geojson: &'static str,
    /// The WKT area input.
    pub wkt: &'static str,
    /// The polygon-only GeoJSON input.
    pub polygon: &'static str,
    /// The one-line GeoJSON input (a corridor).
    pub corridor: &'static str,
    /// The zone input.
    pub zone: &'static str,
    /// The address input.
    pub address: &'static str,
    /// The radius around an address or a point.
    pub radius: &'static str,
    /// How to list the zones.
    pub zones_list: &'static str,
    /// How to import zones.
    pub zones_import: &'static str,
}

/// How GeoJSON, WKT and the command line write coordinates.
pub const LON_LAT: &str = "GeoJSON, WKT and --circle write longitude first: lon,lat";
/// How CAP writes coordinates.
pub const LAT_LON: &str = "CAP writes latitude first: lat,lon";

impl Spelling {
    /// The command line's words.
    pub const CLI: Spelling = Spelling {
        allow_empty: "--allow-empty",
        confirm: "--confirm",
        threshold: "--confirm-threshold, OUTAGECAST_CONFIRM_THRESHOLD",
        preview: "`incident preview`",
        order: LON_LAT,
        geojson: "--geojson",
        wkt: "--wkt",
        polygon: "--polygon",
        corridor: "--corridor",
        zone: "--zone",
        address: "--address",
        radius: "--radius",
        zones_list: "`outagecast zones list`",
        zones_import: "`outagecast zones import FILE.geojson --name-property PROP`",
    };

    /// The HTTP API's words.
    pub const API: Spelling = Spelling {
        allow_empty: "\"allow_empty\": true",
        confirm: "\"confirm\"",
        threshold: "OUTAGECAST_CONFIRM_THRESHOLD",
        preview: "POST /v1/incidents/preview",
        order: "GeoJSON writes longitude first: [lon, lat]",
        geojson: "area",
        wkt: "wkt",
        polygon: "area",
        corridor: "area",
        zone: "zone",
        address: "address",
        radius: "radius_m",
        zones_list: "GET /v1/zones",
        zones_import: "POST /v1/zones",
    };

    /// The same words for an input that writes coordinates in `order`.
    #[must_use]
    pub const fn with_order(self, order: &'static str) -> Spelling {
        Spelling { order, ..self }
    }
}

impl Refusal {
    /// The input at fault: `area`, or `confirm`.
    pub fn field(&self) -> &'static str {
        match self {
            Refusal::Swapped { .. } | Refusal::Empty { .. } | Refusal::NeedsConfirm { .. } => {
                "area"
            }
            Refusal::ConfirmMismatch { .. } => "confirm",
        }
    }

    /// One line naming the problem and the fix, in the front end's words.
    pub fn explain(&self, s: &Spelling) -> String {
        match self {
            Refusal::Swapped { area, mirrored } => format!(
                "area: holds no customers ({area}), but with longitude and latitude swapped it would hold {mirrored}: the coordinates look swapped ({}); swap them, or pass {} to declare it anyway",
                s.order, s.allow_empty
            ),
            Refusal::Empty { area } => format!(
                "area: holds no customers ({area}); check the coordinates ({}) and the size, or pass {} to declare it anyway",
                s.order, s.allow_empty
            ),
            Refusal::ConfirmMismatch {
                given,
                count,
                counted,
            } => format!(
                "{}: {given} does not match the {count} customers {}; check the area with {}, then repeat the exact count",
                s.confirm.trim_matches('"'),
                counted.object(),
                s.preview
            ),
            Refusal::NeedsConfirm {
                count,
                threshold,
                counted,
            } => format!(
                "area: {}, more than the confirmation threshold of {threshold} ({}); check the area with {}, then repeat the exact count with {} {count}",
                counted.phrase(*count),
                s.threshold,
                s.preview,
                s.confirm
            ),
        }
    }
}

/// Checks `rails` for an area (described as `area`) that holds `count` customers;
/// `mirrored` counts the customers of the area with its coordinates swapped (asked only when
/// the area is empty).
pub fn check(
    rails: &Rails,
    area: &str,
    count: u64,
    mirrored: impl FnOnce() -> usize,
) -> Option<Refusal> {
    check_counts(rails, area, count, count, Counted::Holds, mirrored)
}

/// [`check`] for an update to an area that holds `count` customers, `added` of them not
/// affected before: the empty and swapped rails look at the new area, the confirmation at
/// the customers it adds (those are the ones who will be told).
pub fn check_growth(
    rails: &Rails,
    area: &str,
    count: u64,
    added: u64,
    mirrored: impl FnOnce() -> usize,
) -> Option<Refusal> {
    check_counts(rails, area, count, added, Counted::Adds, mirrored)
}

fn check_counts(
    rails: &Rails,
    area: &str,
    count: u64,
    confirmed: u64,
    counted: Counted,
    mirrored: impl FnOnce() -> usize,
) -> Option<Refusal> {
    if count == 0 && !rails.allow_empty {
        let mirrored = mirrored();
        if mirrored > 0 {
            return Some(Refusal::Swapped {
                area: area.to_string(),
                mirrored,
            });
        }
        return Some(Refusal::Empty {
            area: area.to_string(),
        });
    }
    match rails.confirm {
        Some(given) if given != confirmed => Some(Refusal::ConfirmMismatch {
            given,
            count: confirmed,
            counted,
        }),
        None if confirmed > rails.confirm_threshold => Some(Refusal::NeedsConfirm {
            count: confirmed,
            threshold: rails.confirm_threshold,
            counted,
        }),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rails_in_order() {
        let r = Rails::default();
        assert!(matches!(
            check(&r, "a", 0, || 3),
            Some(Refusal::Swapped { mirrored: 3, .. })
        ));
        assert!(matches!(
            check(&r, "a", 0, || 0),
            Some(Refusal::Empty { .. })
        ));
        let allowed = Rails {
            allow_empty: true,
            ..r
        };
        assert_eq!(check(&allowed, "a", 0, || 3), None);
        assert_eq!(check(&r, "a", 5_000, || 0), None);
        assert_eq!(
            check(&r, "a", 5_001, || 0),
            Some(Refusal::NeedsConfirm {
                count: 5_001,
                threshold: 5_000,
                counted: Counted::Holds,
            })
        );
        let confirmed = Rails {
            confirm: Some(5_001),
            ..r
        };
        assert_eq!(check(&confirmed, "a", 5_001, || 0), None);
        assert_eq!(
            check(&confirmed, "a", 7, || 0),
            Some(Refusal::ConfirmMismatch {
                given: 5_001,
                count: 7,
                counted: Counted::Holds,
            })
        );
    }

    #[test]
    fn growth_confirms_the_customers_added_not_the_whole_area() {
        let r = Rails {
            confirm_threshold: 100,
            ..Rails::default()
        };
        // 10,000 in the new area, 50 of them new: nothing to confirm.
        assert_eq!(check_growth(&r, "a", 10_000, 50, || 0), None);
        let needs = check_growth(&r, "a", 10_000, 101, || 0);
        assert_eq!(
            needs,
            Some(Refusal::NeedsConfirm {
                count: 101,
                threshold: 100,
                counted: Counted::Adds,
            })
        );
        assert!(needs.unwrap().explain(&Spelling::CLI).contains(
            "adds 101 customers (newly affected), more than the confirmation threshold of 100"
        ));
        let confirmed = Rails {
            confirm: Some(101),
            ..r
        };
        assert_eq!(check_growth(&confirmed, "a", 10_000, 101, || 0), None);
        assert_eq!(
            check_growth(&confirmed, "a", 10_000, 100, || 0),
            Some(Refusal::ConfirmMismatch {
                given: 101,
                count: 100,
                counted: Counted::Adds,
            })
        );
        // An empty new area is refused as a declaration's would be.
        assert!(matches!(
            check_growth(&r, "a", 0, 0, || 0),
            Some(Refusal::Empty { .. })
        ));
    }

    #[test]
    fn each_front_end_names_its_own_inputs() {
        let r = Refusal::NeedsConfirm {
            count: 6_000,
            threshold: 5_000,
            counted: Counted::Holds,
        };
        assert!(r.explain(&Spelling::CLI).contains("--confirm 6000"));
        assert!(r.explain(&Spelling::API).contains("\"confirm\" 6000"));
        let e = Refusal::Empty { area: "x".into() };
        assert!(e.explain(&Spelling::API).contains("\"allow_empty\": true"));
        assert_eq!(
            Refusal::ConfirmMismatch {
                given: 1,
                count: 2,
                counted: Counted::Holds
            }
            .field(),
            "confirm"
        );
    }
}
