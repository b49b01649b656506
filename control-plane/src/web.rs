//! The browser client, embedded in the binary at build time so that
//! `veche serve` works from any directory and a deployment is one file.
//! `build.rs` decides which files under `web/public/` are embedded (every
//! page, script and style, in any folder such as `web/public/lib/`); the
//! client's tests and type-checking tools live beside `public/` in `web/`
//! and never ship.
//!
//! Every response here carries the security headers of [`security_headers`]:
//! a Content-Security-Policy that allows no inline script and no foreign
//! origin, `nosniff`, and `no-referrer` so a room link (the meeting's only
//! credential) never leaks to another site in a `Referer`.

use crate::admission::HttpConfig;
use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

fn lookup(path: &str) -> Option<&'static [u8]> {
    WEB_FILES
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| WEB_FILES[i].1)
}

fn file(path: &str) -> Response {
    match lookup(path) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // The client is small and versioned with the server; never
                // let a browser run a stale copy against a newer server.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The Content-Security-Policy of the web client. Scripts, styles and
/// everything else come from this origin only, with no inline script or
/// style; media and images may also be `blob:`/`data:` (video elements,
/// avatars). Signalling may go to any `ws:`/`wss:` origin, because a media
/// node's `ws_url` may name another host.
pub(crate) fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob:; media-src 'self' blob:; \
         connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {}",
        frame_ancestors.trim()
    )
}

/// The headers added to every web-client response.
fn security_headers(config: &HttpConfig) -> Vec<(HeaderName, HeaderValue)> {
    let csp = HeaderValue::from_str(&content_security_policy(&config.frame_ancestors))
        .expect("frame_ancestors was validated at start-up");
    vec![
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>(config: &HttpConfig) -> Router<S> {
    let headers = std::sync::Arc::new(security_headers(config));
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/signin", get(|| async { file("signin.html") }))
        .route("/profile", get(|| async { file("profile.html") }))
        .route("/admin", get(|| async { file("admin.html") }))
        // The recordings list and the player. Only the page is served
        // here: it reads the recording (and checks `?share=`) through
        // `/api/recordings`, which decides who may see what.
        .route("/recordings", get(|| async { file("recordings.html") }))
        .route(
            "/recordings/{id}",
            get(|_: Path<String>| async { file("recording.html") }),
        )
        .route(
            "/r/{slug}",
            get(|_: Path<String>| async { file("room.html") }),
        )
        .route(
            "/static/{*path}",
            get(|Path(p): Path<String>| async move {
                if p.split('/').any(|seg| seg == ".." || seg.is_empty()) {
                    return (StatusCode::NOT_FOUND, "not found").into_response();
                }
                file(&p)
            }),
        )
        .layer(axum::middleware::map_response(move |mut resp: Response| {
            let headers = headers.clone();
            async move {
                for (name, value) in headers.iter() {
                    resp.headers_mut().insert(name.clone(), value.clone());
                }
                resp
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_and_the_scripts_are_embedded_but_not_the_tests() {
        for path in [
            "index.html",
            "room.html",
            "signin.html",
            "profile.html",
            "recordings.html",
            "recording.html",
            "recordings.js",
            "recording.js",
            "style.css",
        ] {
            assert!(lookup(path).is_some(), "{path} is not embedded");
        }
        assert!(
            WEB_FILES.iter().any(|(p, _)| p.ends_with(".js")),
            "no script is embedded"
        );
        assert!(
            WEB_FILES
                .iter()
                .all(|(p, _)| !p.starts_with("test/") && !p.contains("node_modules")),
            "tests or npm packages are embedded"
        );
        assert!(lookup("package.json").is_none());
    }

    #[test]
    fn every_script_and_style_a_page_names_is_embedded() {
        // A page that names a file the binary does not carry (a new page
        // whose script was left out, a renamed stylesheet) loads blank.
        let mut checked = 0;
        for (path, bytes) in WEB_FILES.iter().filter(|(p, _)| p.ends_with(".html")) {
            let html = String::from_utf8_lossy(bytes);
            for attr in ["src=\"/static/", "href=\"/static/"] {
                for (i, _) in html.match_indices(attr) {
                    let rest = &html[i + attr.len()..];
                    let name = &rest[..rest.find('"').unwrap_or(rest.len())];
                    assert!(
                        lookup(name).is_some(),
                        "{path} names /static/{name}, which is not embedded"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10, "only {checked} references were found");
        for page in ["recordings.html", "recording.html"] {
            let html = String::from_utf8_lossy(lookup(page).expect("embedded"));
            assert!(
                html.contains("src=\"/static/recording"),
                "{page} has no script of its own"
            );
        }
    }

    #[test]
    fn the_vendored_mls_library_is_embedded_and_served_as_javascript() {
        // E2EE rooms import it as ES modules: a wrong type (or a missing
        // file) and the browser refuses the module, so no key agreement.
        for path in [
            "vendor/mls/mls.js",
            "vendor/mls/ts-mls/clientState.js",
            "vendor/mls/hpke-core/mod.js",
            "e2ee/session.js",
        ] {
            assert!(lookup(path).is_some(), "{path} is not embedded");
            assert_eq!(content_type(path), "text/javascript; charset=utf-8");
        }
        assert!(
            WEB_FILES
                .iter()
                .all(|(p, _)| !p.ends_with(".ts") && !p.ends_with("LICENSE")),
            "type declarations or licence files are served"
        );
    }

    #[test]
    fn the_policy_forbids_inline_script_and_names_the_configured_ancestors() {
        let csp = content_security_policy("'none'");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
        let csp = content_security_policy("'self' https://intranet.example.com");
        assert!(
            csp.ends_with("frame-ancestors 'self' https://intranet.example.com"),
            "{csp}"
        );
    }

    #[test]
    fn no_web_page_has_an_inline_script_or_style() {
        // The policy would block them in the browser; fail here first.
        for (path, bytes) in WEB_FILES.iter().filter(|(p, _)| p.ends_with(".html")) {
            let html = String::from_utf8_lossy(bytes).to_lowercase();
            for (i, _) in html.match_indices("<script") {
                let tag_end = html[i..].find('>').map_or(html.len(), |e| i + e);
                assert!(
                    html[i..tag_end].contains("src="),
                    "{path} has an inline <script>"
                );
            }
            assert!(!html.contains("<style"), "{path} has an inline <style>");
            assert!(!html.contains(" style="), "{path} has a style attribute");
            assert!(!html.contains(" onclick="), "{path} has an inline handler");
        }
    }
}
