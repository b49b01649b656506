//! The browser client, embedded in the binary at build time so that
//! `veche serve` works from any directory and a deployment is one file.
//! Only `web/public/` is embedded: `web/` also holds the client's tests and
//! its type-checking tools (`node_modules/`), which must not ship.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/public");

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn file(path: &str) -> Response {
    match WEB.get_file(path) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                // The client is small and versioned with the server; never
                // let a browser run a stale copy against a newer server.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            f.contents(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route(
            "/r/{slug}",
            get(|_: Path<String>| async { file("room.html") }),
        )
        .route(
            "/static/{*path}",
            get(|Path(p): Path<String>| async move {
                if p.split('/').any(|seg| seg == ".." || seg.is_empty()) || p.starts_with("test/") {
                    return (StatusCode::NOT_FOUND, "not found").into_response();
                }
                file(&p)
            }),
        )
}
