//! What every service binary shares: shutdown, Prometheus metrics, health
//! endpoints, the HTTP request span, and problem+json errors (logs and
//! traces are set up by [`crate::telemetry`]).
//!
//! Kept here rather than in a crate of its own because every service already
//! depends on `events`, and the owner fixed the set of crates.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod metrics_recorder;
mod requests;

pub use metrics_recorder::metrics_handle;
use requests::{Requests, track_requests};

/// A token cancelled on SIGTERM or ctrl-c.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {},
                        _ = term.recv() => {},
                    }
                }
                Err(_) => drop(ctrl_c.await),
            }
        }
        #[cfg(not(unix))]
        drop(ctrl_c.await);
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

/// A named readiness check: Ok when the dependency answers.
pub type CheckFn = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync + 'static,
>;

/// Extra facts a service reports with its readiness (never decides it).
pub type DetailsFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync + 'static>;

/// The dependencies a service needs before it is ready.
#[derive(Clone, Default)]
pub struct Health {
    checks: Vec<(&'static str, CheckFn)>,
    details: Option<DetailsFn>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    pub fn check<F, Fut, E>(mut self, name: &'static str, check: F) -> Health
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let check = Arc::new(check);
        self.checks.push((
            name,
            Arc::new(move || {
                let fut = check();
                Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
            }),
        ));
        self
    }

    /// Adds the `kafka` check: the cluster answers a metadata request
    /// ([`KafkaConfig::check`](crate::KafkaConfig::check)).
    pub fn kafka(self, kafka: crate::KafkaConfig) -> Health {
        self.check("kafka", move || {
            let kafka = kafka.clone();
            async move { kafka.check().await }
        })
    }

    /// Adds a `details` object to the readiness answer (a projector's lag,
    /// say); it is informational and never makes the service unready.
    pub fn details<F>(mut self, details: F) -> Health
    where
        F: Fn() -> serde_json::Value + Send + Sync + 'static,
    {
        self.details = Some(Arc::new(details));
        self
    }
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: std::collections::BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

async fn ready(State(health): State<Health>) -> Response {
    let mut ok = true;
    let mut checks = std::collections::BTreeMap::new();
    for (name, check) in &health.checks {
        let outcome = tokio::time::timeout(Duration::from_secs(3), check()).await;
        let text = match outcome {
            Ok(Ok(())) => "ok".to_owned(),
            // The dependency's own error text (addresses, user names) is
            // for the log, not for whoever asks.
            Ok(Err(e)) => {
                tracing::warn!(check = name, error = %e, "readiness check failed");
                ok = false;
                "failed".to_owned()
            }
            Err(_) => {
                ok = false;
                "timed out".to_owned()
            }
        };
        checks.insert(*name, text);
    }
    let (code, status) = if ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    let details = health.details.as_ref().map(|details| details());
    (
        code,
        Json(Readiness {
            status,
            checks,
            details,
        }),
    )
        .into_response()
}

/// Readiness without the checks and details: ready or not.
async fn ready_status(State(health): State<Health>) -> Response {
    let response = ready(State(health)).await;
    let status = response.status();
    let word = if status == StatusCode::OK {
        "ready"
    } else {
        "not_ready"
    };
    (status, Json(serde_json::json!({ "status": word }))).into_response()
}

async fn render_metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}

/// `/health/live`, `/health/ready` and `/metrics`, merged into a service's
/// router, which also gets request metrics and a problem+json 404.
pub fn with_ops(router: Router, service: &'static str, health: Health) -> Router {
    metrics_handle();
    let ops = Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(health)
        .route("/metrics", get(render_metrics));
    router
        .merge(ops)
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such resource") })
        .layer(middleware::from_fn_with_state(
            Requests::new(service),
            track_requests,
        ))
}

/// Serves a public API (`app`) on `listener` with the limits of `http`
/// (timeouts, connection and in-flight bounds, per-caller rate limit; see
/// [`crate::http`]). With `http.ops_addr` set, `/metrics` and detailed
/// readiness are served only on that second listener, and the public
/// `/health/ready` answers its status alone.
pub async fn serve_api(
    listener: TcpListener,
    app: Router,
    service: &'static str,
    health: Health,
    http: &crate::http::HttpConfig,
    caller: crate::http::CallerKey,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let Some(ops_addr) = http.ops_addr else {
        let router = crate::http::limit(with_ops(app, service, health), http, caller);
        return crate::http::serve(listener, router, http, shutdown).await;
    };
    let ops_listener = TcpListener::bind(ops_addr).await?;
    tracing::info!(addr = %ops_listener.local_addr()?, service, "ops listener (metrics, health details)");
    let public = Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready_status))
        .with_state(health.clone());
    let public = app
        .merge(public)
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such resource") })
        .layer(middleware::from_fn_with_state(
            Requests::new(service),
            track_requests,
        ));
    let public = crate::http::limit(public, http, caller);
    let ops = with_ops(Router::new(), service, health);
    let (served, ops_served) = tokio::join!(
        crate::http::serve(listener, public, http, shutdown.clone()),
        crate::http::serve(ops_listener, ops, http, shutdown),
    );
    served.and(ops_served)
}

/// Serves `router` (an ops-only router: health and metrics) until
/// `shutdown` is cancelled, with the default timeouts and connection bounds
/// but no rate limit, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let config = crate::http::HttpConfig {
        rate: None,
        ..crate::http::HttpConfig::default()
    };
    let router = crate::http::limit(router, &config, std::sync::Arc::new(|_, _| None));
    crate::http::serve(listener, router, &config, shutdown).await
}

/// An RFC 9457 problem details body. `kind` is the stable machine-readable part
/// of the `type` URI.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        rename = "retry_after_seconds"
    )]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub const TYPE_BASE: &'static str = "https://commerce.example/problems/";

    pub fn new(status: StatusCode, kind: &str, title: impl Into<String>) -> Problem {
        Problem {
            type_uri: format!("{}{kind}", Problem::TYPE_BASE),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    /// For 503s: when the client may try again.
    pub fn retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self.retry_after;
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(self),
        )
            .into_response();
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}
