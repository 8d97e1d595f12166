//! The operator console: one static page (`GET /console`, with its script
//! and style sheet) that works on the JSON APIs with an admin's bearer
//! token, kept in the tab's session storage.
//!
//! The page holds no data: everything it shows comes from admin-only reads
//! of this API (`/orders/{id}`, `/sagas`, `/sagas/{id}`, `/dead-letters`)
//! and from the `forward` routes under `/console/api/`, which pass an
//! admin's request on to the command API (saga retry and resolve) and to the
//! projector service (lag, dead-letter retry and skip). A customer's token
//! gets 403 from every one of them, so a customer sees nothing.
//!
//! Decision: a same-origin forwarding route rather than CORS on the other
//! services. The browser then talks to one origin only: no cross-origin
//! policy to configure (and get wrong) on the command API and the
//! projector, the bearer token never leaves that origin in the browser, and
//! a fixed list of routes with typed path parameters (a UUID, an integer)
//! forwards nothing else. The query API checks the admin role before it
//! forwards; the target checks the token again.
//!
//! No build chain: the page is plain HTML, CSS and JavaScript compiled into
//! the binary with `include_str!`, served with a Content-Security-Policy
//! that allows only same-origin scripts, styles and requests.

mod forward;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::http::AppState;

pub use forward::Upstreams;

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("console.css");

/// Scripts, styles and requests from this origin only; no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { asset(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/console/api/lag", get(forward::lag))
        .route(
            "/console/api/sagas/{order_id}/{action}",
            post(forward::saga),
        )
        .route(
            "/console/api/dead-letters/{id}/{action}",
            post(forward::dead_letter),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests;
