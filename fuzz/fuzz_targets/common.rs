// Shared checks: whatever an entry point accepts must be a usable area.
use outagecast_core::area::{Area, LonLat};

/// An accepted area answers membership, has envelopes, describes itself and survives the
/// store's JSON round trip.
pub fn check_area(area: &Area) {
    for (lon, lat) in [(24.94, 60.17), (0.0, 0.0), (-179.9, -89.9), (180.0, 90.0)] {
        let _ = area.contains(LonLat::parse(lon, lat).expect("valid point"));
    }
    assert!(
        !area.envelopes().is_empty(),
        "an area has at least one envelope"
    );
    let _ = area.describe();
    let json = serde_json::to_string(area).expect("an area serialises");
    let back: Area = serde_json::from_str(&json).expect("an accepted area reads back");
    assert_eq!(back.parts().len(), area.parts().len());
    let _ = outagecast_ingest::swap::swapped(area);
}
