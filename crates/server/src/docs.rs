//! `GET /docs`: a browser for the API, over the same `/openapi.json` the server serves.
//!
//! The viewer is RapiDoc from the npm registry, vendored under `assets/rapidoc/` (version,
//! checksum and licences there) and compiled into the binary: no download at build or run
//! time, and nothing the page loads comes from another server. The page's
//! Content-Security-Policy holds the browser to that (`'self'` only), and it turns off the
//! bundle's web fonts (`load-fonts="false"`, system fonts instead), which it would otherwise
//! fetch from Google. Open without a token,
//! like the document itself; trying a route out needs a token, entered in the page.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The vendored viewer.
const RAPIDOC_JS: &[u8] = include_bytes!("../assets/rapidoc/rapidoc-min.js");
/// Where the page loads it from; the version in the path lets it be cached for good.
const RAPIDOC_PATH: &str = "/docs/rapidoc-9.3.8.js";

/// This server only: scripts, styles (RapiDoc sets inline styles), images, fonts and the
/// document the viewer fetches; no frames, no form posts elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>outagecast API</title>
<script type="module" src="/docs/rapidoc-9.3.8.js"></script>
</head>
<body>
<noscript>The API browser needs JavaScript; the API's description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<rapi-doc spec-url="/openapi.json" render-style="read" show-header="false" load-fonts="false" allow-spec-url-load="false"
  allow-spec-file-load="false" allow-server-selection="false" allow-authentication="true"
  regular-font="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
  mono-font="ui-monospace, 'DejaVu Sans Mono', monospace" theme="light"></rapi-doc>
</body>
</html>
"#;

/// `/docs` and its script.
pub fn docs_routes() -> Router {
    Router::new()
        .route("/docs", get(page))
        .route(RAPIDOC_PATH, get(script))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // The path carries the version: a new viewer is a new URL.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        RAPIDOC_JS,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every asset the page names is on this server, and the script it names is the one served.
    #[test]
    fn the_page_loads_only_from_this_server() {
        for attr in ["src=\"", "href=\""] {
            for (i, _) in PAGE.match_indices(attr) {
                let url = &PAGE[i + attr.len()..];
                assert!(url.starts_with('/'), "{}", &url[..40.min(url.len())]);
            }
        }
        assert!(PAGE.contains(RAPIDOC_PATH));
        assert!(!PAGE.contains("//"), "no scheme-relative or absolute URL");
        assert!(RAPIDOC_JS.len() > 100_000);
    }
}
