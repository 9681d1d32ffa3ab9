//! The adapter against a local stand-in speaking Nominatim's `/search` JSON (wiremock).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use outagecast_ingest::geocode::{Geocoder, pick};
use outagecast_nominatim::{Config, Nominatim, NominatimError};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KAIVOKATU: &str = r#"[{"place_id":1,"lat":"60.1712045","lon":"24.9411971","display_name":"1, Kaivokatu, Kluuvi, Helsinki, 00101, Suomi","place_rank":30,"importance":0.3,"type":"house"},
 {"place_id":2,"lat":"60.1705","lon":"24.9420","display_name":"Kaivokatu, Kluuvi, Helsinki","place_rank":26,"importance":0.2,"type":"tertiary"}]"#;

fn client(server: &MockServer, interval_ms: u64) -> Nominatim {
    let mut config = Config::new(&server.uri(), "outagecast-test (ops@example.org)").unwrap();
    config.min_interval = Duration::from_millis(interval_ms);
    config.timeout = Duration::from_millis(500);
    Nominatim::new(config).unwrap()
}

#[tokio::test]
async fn finds_the_building_with_our_user_agent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .and(query_param("q", "Kaivokatu 1, Helsinki"))
        .and(query_param("format", "jsonv2"))
        .and(header("user-agent", "outagecast-test (ops@example.org)"))
        .respond_with(ResponseTemplate::new(200).set_body_string(KAIVOKATU))
        .expect(1)
        .mount(&server)
        .await;
    let g = client(&server, 10);
    let found = g.candidates("Kaivokatu 1, Helsinki").await.unwrap();
    assert_eq!(found.len(), 2);
    let best = pick("--address", "Kaivokatu 1, Helsinki", found).unwrap();
    assert_eq!(best.point.lon(), 24.9411971);
    assert_eq!(best.confidence, 0.9);
}

#[tokio::test]
async fn requests_are_spaced_by_the_minimum_interval() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .expect(3)
        .mount(&server)
        .await;
    let g = client(&server, 200);
    let start = Instant::now();
    for _ in 0..3 {
        assert!(g.candidates("x").await.unwrap().is_empty());
    }
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    let defaults = Config::new("https://nominatim.example.org/", "ua").unwrap();
    assert_eq!(
        defaults.min_interval,
        Duration::from_secs(1),
        "1 request/s by default"
    );
}

#[tokio::test]
async fn failures_are_errors_not_guesses() {
    let server = MockServer::start().await;
    Mock::given(path("/search"))
        .and(query_param("q", "busy"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    Mock::given(path("/search"))
        .and(query_param("q", "garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&server)
        .await;
    Mock::given(path("/search"))
        .and(query_param("q", "slow"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("[]")
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    Mock::given(path("/search"))
        .and(query_param("q", "offshore"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"[{"lat":"95","lon":"24","display_name":"x"}]"#),
        )
        .mount(&server)
        .await;
    let g = client(&server, 1);
    let e = g.candidates("busy").await.unwrap_err();
    assert!(
        matches!(e, NominatimError::Status { status: 429, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("too many requests"), "{e}");
    assert!(matches!(
        g.candidates("garbage").await.unwrap_err(),
        NominatimError::Decode { .. }
    ));
    assert!(matches!(
        g.candidates("slow").await.unwrap_err(),
        NominatimError::Request { .. }
    ));
    assert!(matches!(
        g.candidates("offshore").await.unwrap_err(),
        NominatimError::Decode { .. }
    ));
    let e = Config::new("nominatim.example.org", "ua")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--nominatim-url"), "{e}");
    let e = Config::new("https://nominatim.example.org", " ")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--nominatim-user-agent"), "{e}");
}
