//! The OpenAPI description is generated from the code; `docs/openapi.json` is the committed
//! copy integrators read. This test keeps the two equal and checks the document against the
//! OpenAPI 3.1 schema (openapi-spec-validator, which `scripts/test` installs).
//!
//! After changing the API: `OUTAGECAST_UPDATE_OPENAPI=1 cargo test -p outagecast-server --test openapi`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_openapi_document_matches_the_code_and_validates_as_3_1() {
    let doc = outagecast_server::api::openapi();
    let text = format!("{}\n", doc.to_pretty_json().unwrap());
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["openapi"], "3.1.0");
    for path in [
        "/v1/incidents",
        "/v1/incidents/{id}",
        "/v1/incidents/{id}/report",
        "/v1/incidents/{id}/progress",
        "/v1/customers",
        "/v1/zones",
        "/v1/audit",
        "/v1/ivr/lookup",
        "/v1/ivr/twilio/voice",
    ] {
        assert!(value["paths"].get(path).is_some(), "{path} is documented");
    }
    let path = committed();
    if std::env::var_os("OUTAGECAST_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/openapi.json is out of date; regenerate it with \
         OUTAGECAST_UPDATE_OPENAPI=1 cargo test -p outagecast-server --test openapi"
    );
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
