#![no_main]
//! CAP 1.2: parse, resolve the area (every geocode names a zone of its own), read every field.

use libfuzzer_sys::fuzz_target;
use outagecast_core::area::{Area, Circle, LonLat};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(alert) = outagecast_ingest::cap::parse(text, "--cap") else {
        return;
    };
    let zone = Area::Circle(
        Circle::new(LonLat::parse(24.94, 60.17).expect("point"), 100.0).expect("circle"),
    );
    if let Ok(area) = alert.area(|name| (name.len() % 2 == 0).then(|| zone.clone())) {
        common::check_area(&area);
    }
    let _ = (
        alert.severity(),
        alert.urgency(),
        alert.certainty(),
        alert.headline(),
    );
    let _ = (
        alert.description(),
        alert.expires(),
        alert.cause(),
        alert.kind(),
        alert.etr(),
    );
});
