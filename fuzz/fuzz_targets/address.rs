#![no_main]
//! Address text against a small gazetteer, and gazetteer CSV parsing.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use outagecast_core::area::LonLat;
use outagecast_ingest::geocode::{Gazetteer, parse_gazetteer_csv, pick};

fn gazetteer() -> &'static Gazetteer {
    static G: OnceLock<Gazetteer> = OnceLock::new();
    G.get_or_init(|| {
        let at = |lon, lat| LonLat::parse(lon, lat).expect("point");
        Gazetteer::new([
            (
                "Kaivokatu 1, 00101 Helsinki".to_string(),
                at(24.9412, 60.1712),
            ),
            (
                "Asemahalli, Kaivokatu 1, 00100 Helsinki".to_string(),
                at(24.9415, 60.1711),
            ),
            (
                "Aleksanterinkatu 13 A, 5. krs./Floor 5, 00100 Helsinki".to_string(),
                at(24.9458, 60.1690),
            ),
            (
                "Iso Roobertinkatu 3-5, 00120 Helsinki".to_string(),
                at(24.9422, 60.1630),
            ),
            (
                "Pohjoisesplanadi 33 Keskuskatu 5, 00130 Helsinki".to_string(),
                at(24.9464, 60.1682),
            ),
        ])
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let found = gazetteer().search(text);
    for c in &found {
        assert!(
            (0.0..=1.0).contains(&c.confidence),
            "confidence {}",
            c.confidence
        );
    }
    let _ = pick("--address", text, found);
    if let Ok(rows) = parse_gazetteer_csv(text, "--gazetteer") {
        let _ = gazetteer().clone().with_rows(rows).search("Kaivokatu 1");
    }
});
