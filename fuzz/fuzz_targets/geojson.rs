#![no_main]
//! GeoJSON: areas (with and without default sizes) and zone files.

use libfuzzer_sys::fuzz_target;
use outagecast_ingest::geojson::{Sizes, area};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for sizes in [
        Sizes::default(),
        Sizes {
            radius_m: Some(250.0),
            buffer_m: Some(30.0),
        },
    ] {
        if let Ok(a) = area(text, "--geojson", sizes, &Default::default()) {
            common::check_area(&a);
        }
    }
    if let Ok(zones) = outagecast_ingest::zone::zones_from_geojson(text, "FILE", "name", &Default::default()) {
        for z in zones {
            common::check_area(&z.area);
        }
    }
});
