//! Each customer's time zone, from the service location: the time-zone boundaries are
//! compiled in (`tzf-rs`), so no lookup leaves the process. Quiet hours use it; a notice with
//! no location, or a zone name this build's time-zone database does not know, falls back to
//! the utility's zone.

use std::sync::LazyLock;

use chrono_tz::Tz;
use outagecast_core::area::LonLat;

/// Decoding the boundaries takes about a tenth of a second and some 30 MB, so only a
/// dispatcher with quiet hours loads them.
static FINDER: LazyLock<tzf_rs::DefaultFinder> = LazyLock::new(tzf_rs::DefaultFinder::new);

/// Loads the boundaries now (call off the async threads).
pub fn preload() {
    LazyLock::force(&FINDER);
}

/// The IANA time zone at `location`, if known.
pub fn zone_at(location: LonLat) -> Option<Tz> {
    FINDER
        .get_tz_name(location.lon(), location.lat())
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_of_known_places() {
        let at = |lon, lat| LonLat::parse(lon, lat).ok().and_then(zone_at);
        assert_eq!(at(24.9414, 60.1710), Some(chrono_tz::Europe::Helsinki));
        assert_eq!(at(-73.9857, 40.7484), Some(chrono_tz::America::New_York));
        assert_eq!(at(19.9449, 60.0973), Some(chrono_tz::Europe::Mariehamn));
        assert_eq!(at(-0.1276, 51.5072), Some(chrono_tz::Europe::London));
    }
}
