#![no_main]
//! WKT, with and without default sizes.

use libfuzzer_sys::fuzz_target;
use outagecast_ingest::geojson::Sizes;
use outagecast_ingest::wkt::area;

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
        if let Ok(a) = area(text, "--wkt", sizes, &Default::default()) {
            common::check_area(&a);
        }
    }
});
