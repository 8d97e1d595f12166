//! What every HTTP request gets: its span (continuing the caller's trace)
//! and the request metrics, `http_requests_total` and
//! `http_request_duration_seconds` by service, method, route and status.
//!
//! A metric's handle is looked up once per label combination and kept, so a
//! request pays neither the labels' allocations nor the registry's lookup.
//! The combinations are bounded: routes are the router's templates (or
//! `unmatched`), methods the standard ones (or `other`), statuses three digits.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use tracing::Instrument;

use crate::telemetry;

/// One service's request metrics, by route, then method and status.
pub(crate) struct Requests {
    service: &'static str,
    handles: RwLock<HashMap<Box<str>, Vec<Handles>>>,
}

struct Handles {
    method: &'static str,
    status: u16,
    count: Counter,
    duration: Histogram,
}

impl Requests {
    pub(crate) fn new(service: &'static str) -> Arc<Requests> {
        Arc::new(Requests {
            service,
            handles: RwLock::default(),
        })
    }

    fn record(&self, route: &str, method: &'static str, status: u16, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        let found = |handles: &HashMap<Box<str>, Vec<Handles>>| {
            let known = handles.get(route)?;
            let handle = known
                .iter()
                .find(|h| h.method == method && h.status == status)?;
            handle.count.increment(1);
            handle.duration.record(seconds);
            Some(())
        };
        let read = self.handles.read().unwrap_or_else(|p| p.into_inner());
        if found(&read).is_some() {
            return;
        }
        drop(read);
        let mut write = self.handles.write().unwrap_or_else(|p| p.into_inner());
        if found(&write).is_some() {
            return;
        }
        let labels = [
            ("service", self.service.to_owned()),
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let handle = Handles {
            method,
            status,
            count: metrics::counter!("http_requests_total", &labels),
            duration: metrics::histogram!("http_request_duration_seconds", &labels),
        };
        handle.count.increment(1);
        handle.duration.record(seconds);
        write.entry(route.into()).or_default().push(handle);
    }
}

/// The method label of request metrics: the standard methods by name, any
/// other as `other`, so a client cannot create series at will.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, name)| name)
}

pub(crate) async fn track_requests(
    State(requests): State<Arc<Requests>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Route templates, never raw paths: unmatched requests share one label.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    // Probes and scrapes would bury the requests that matter in the traces.
    let traced = !(route.starts_with("/health/") || route == "/metrics");
    let span = if traced {
        tracing::info_span!(
            target: telemetry::TARGET,
            "http request",
            otel.name = %format_args!("{method} {route}"),
            otel.kind = "server",
            http.request.method = %method,
            http.route = %route,
            http.response.status_code = tracing::field::Empty,
            service = requests.service,
        )
    } else {
        tracing::Span::none()
    };
    telemetry::continue_from_http(&span, request.headers());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    // W3C Trace Context level 2: tells the caller which trace to look up.
    if let Some((traceparent, _)) = telemetry::context_of(&span)
        && let Ok(value) = HeaderValue::from_str(&traceparent)
    {
        response.headers_mut().insert("traceresponse", value);
    }
    requests.record(route, method, status, started);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_handle_counts_into_the_same_series_and_others_get_their_own() {
        let handle = crate::service::metrics_handle();
        let requests = Requests::new("requests-test");
        let started = Instant::now();
        for _ in 0..3 {
            requests.record("/things/{id}", "GET", 200, started);
        }
        requests.record("/things/{id}", "GET", 404, started);
        requests.record("unmatched", "other", 404, started);
        let text = handle.render();
        let count = |labels: &str| {
            let series = format!("http_requests_total{{service=\"requests-test\",{labels}}} ");
            text.lines()
                .find_map(|line| line.strip_prefix(&series))
                .map(str::to_owned)
        };
        assert_eq!(
            count(r#"method="GET",route="/things/{id}",status="200""#).as_deref(),
            Some("3"),
            "{text}"
        );
        assert_eq!(
            count(r#"method="GET",route="/things/{id}",status="404""#).as_deref(),
            Some("1")
        );
        assert_eq!(
            count(r#"method="other",route="unmatched",status="404""#).as_deref(),
            Some("1")
        );
    }
}
