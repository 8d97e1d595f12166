//! The query HTTP API: routes, the shared state, and the steps every read
//! shares (who is calling, read-your-writes).
//!
//! - `error`: [`QueryError`], the one problem+json error type.
//! - `catalog`: `GET /catalog/items/{sku}` (public).
//! - `orders`: `GET /orders/{id}` (the order's customer, admins, carriers).
//! - `history`: `GET /customers/{id}/orders` (that customer, admins).
//! - `probes`: `GET /probes/{id}` (public).
//! - `dead_letters`: `GET /dead-letters` (admins).
//! - `sales`: `GET /sales` (admins).
//! - `sagas`: `GET /sagas/{order_id}` (the order's customer, admins) and
//!   `GET /sagas` (admins).

pub(crate) mod catalog;
pub(crate) mod dead_letters;
mod error;
pub(crate) mod history;
pub(crate) mod orders;
mod probes;
pub(crate) mod sagas;
pub(crate) mod sales;

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use events::command::Principal;
use events::consistency::ConsistencyToken;
use projections::read::{Cache, CacheError, Cached, documents};
use sqlx::PgPool;
use tokio::sync::Semaphore;

pub use error::QueryError;

use crate::consistency::{self, Resource};
use events::auth::JwtVerifier;
use events::auth::signing::SigningKey;

/// What a handler is handed: a reference to the [`Shared`] state, so a
/// request's clone of it is one reference count (cloning every field cost
/// about 3 % of the query API's CPU on a cache hit).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state every request shares.
pub struct Shared {
    pub pool: PgPool,
    /// Tried first for the hot views; PostgreSQL answers when it misses or fails.
    pub cache: Arc<Cache>,
    pub verifier: Arc<JwtVerifier>,
    /// Longest a read waits for the views to reach a consistency token.
    pub consistency_wait: Duration,
    /// Wakes those waits when a projector batch commits.
    pub progress: consistency::Progress,
    /// Reads of the hot views that PostgreSQL answers at the same time at
    /// most (cache misses); more answer 503 at once rather than queue for
    /// the database's few connections.
    pub fallbacks: Semaphore,
    /// Where the console's actions are passed on to.
    pub upstreams: crate::console::Upstreams,
    /// Checks consistency tokens (the command API signs them).
    pub signing: SigningKey,
    /// Reads waiting for a consistency token at the same time at most; more
    /// answer 503 at once, so waits cannot tie up PostgreSQL's polling.
    pub waits: Semaphore,
    /// Cache writes of documents PostgreSQL answered, in flight at most
    /// (see [`AppState::fill`]); beyond it a read is answered without one.
    pub fills: Arc<Semaphore>,
}

/// The authenticated caller, or 401. First among a handler's arguments, so
/// an unauthenticated request learns nothing about the rest of it. The rate
/// limit may have verified the token already; it is not checked twice.
pub(crate) struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = QueryError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, QueryError> {
        state
            .verifier
            .request_caller(&parts.headers, &mut parts.extensions)
            .map(Caller)
            .map_err(QueryError::Unauthorized)
    }
}

/// The request's `X-Consistency-Token` header alone: a `HeaderMap` argument
/// would copy every header of every read.
pub(crate) struct TokenHeader(Option<HeaderValue>);

impl<S: Sync> FromRequestParts<S> for TokenHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(TokenHeader(parts.headers.get(consistency::HEADER).cloned()))
    }
}

/// Cache misses PostgreSQL answers at the same time at most (its pool has 16
/// connections; a few per connection may wait).
pub const MAX_FALLBACKS: usize = 64;
/// Reads waiting for their consistency token at the same time at most.
pub const MAX_WAITS: usize = 128;
/// Cache writes of documents read from PostgreSQL in flight at most.
pub const MAX_FILLS: usize = 64;

impl AppState {
    /// A slot for a read PostgreSQL answers instead of the cache, or 503.
    fn fallback(&self) -> Result<tokio::sync::SemaphorePermit<'_>, QueryError> {
        self.fallbacks.try_acquire().map_err(|_| {
            metrics::counter!("query_shed_total", "reason" => "fallbacks").increment(1);
            QueryError::Busy
        })
    }

    /// Writes an order document PostgreSQL answered into the cache, in the
    /// background, so the order's next reads are cache hits (an entry the
    /// projector left without a body, one a swap or a Redis restart
    /// removed, or one whose lifetime ran out). `generation` is the cache's,
    /// taken before the read: the write goes through the same version guard
    /// and epoch check as the projector's, so it never replaces a newer
    /// entry, and one read before the cache was emptied is refused.
    fn fill(&self, generation: u64, document: documents::OrderDocument, body: String) {
        let Ok(permit) = self.fills.clone().try_acquire_owned() else {
            metrics::counter!("query_cache_fills_total", "outcome" => "skipped").increment(1);
            return;
        };
        let cache = self.cache.clone();
        tokio::spawn(async move {
            let entry = cache.order_entry_of(&document, body);
            let outcome = match cache.put(generation, &[entry]).await {
                Ok(1) => "written",
                Ok(_) => "superseded",
                Err(CacheError::Stale) => "stale",
                Err(e) => {
                    tracing::debug!(error = %e, "filling the cache failed");
                    "error"
                }
            };
            metrics::counter!("query_cache_fills_total", "outcome" => outcome).increment(1);
            drop(permit);
        });
    }

    /// The request's `X-Consistency-Token`, if any. A malformed or unsigned
    /// one, or one issued for another resource than `resource`, is a 400
    /// at once (never a wait).
    fn token(
        &self,
        header: &TokenHeader,
        resource: Resource<'_>,
    ) -> Result<Option<ConsistencyToken>, QueryError> {
        let Some(value) = &header.0 else {
            return Ok(None);
        };
        value
            .to_str()
            .ok()
            .map(|text| consistency::parse(text, &self.signing))
            .and_then(Result::ok)
            .filter(|token| resource.admits(token))
            .map(Some)
            .ok_or(QueryError::InvalidConsistencyToken)
    }

    /// Waits (bounded) until the PostgreSQL views have reached `token`; a
    /// timeout is a 503 `stale_read`, and so is (at once) a full wait queue.
    /// Callers authorize before they wait.
    async fn wait_for(&self, token: Option<&ConsistencyToken>) -> Result<(), QueryError> {
        if let Some(token) = token {
            let _slot = self.waits.try_acquire().map_err(|_| {
                metrics::counter!("query_shed_total", "reason" => "waits").increment(1);
                QueryError::Busy
            })?;
            let span = read_span("consistency wait", "postgres", "token");
            consistency::wait(token, &self.pool, &self.progress, self.consistency_wait)
                .instrument(span)
                .await?;
        }
        Ok(())
    }

    /// Honours `X-Consistency-Token` for reads served from PostgreSQL only.
    async fn read_your_writes(
        &self,
        header: &TokenHeader,
        resource: Resource<'_>,
    ) -> Result<(), QueryError> {
        let token = self.token(header, resource)?;
        self.wait_for(token.as_ref()).await
    }

    /// The cached document `lookup` finds for the entity `id`, when it
    /// reflects `token`. A miss, a Redis failure or timeout, or an entry
    /// older than the token all answer `None`: PostgreSQL decides then.
    async fn cached(
        &self,
        view: &'static str,
        id: &str,
        token: Option<&ConsistencyToken>,
        lookup: impl Future<Output = Result<Option<Cached>, CacheError>>,
    ) -> Option<Cached> {
        let span = read_span("query read", "redis", view);
        let (outcome, found) = match lookup.instrument(span.clone()).await {
            Ok(Some(entry)) if covers(&entry, id, token) => ("hit", Some(entry)),
            Ok(Some(_)) => ("behind_token", None),
            Ok(None) => ("miss", None),
            Err(e) => {
                tracing::debug!(error = %e, view, "cache read failed; reading postgresql");
                ("error", None)
            }
        };
        span.record("outcome", outcome);
        metrics::counter!("query_cache_lookups_total", "view" => view, "outcome" => outcome)
            .increment(1);
        found
    }
}

/// The span of one read of a view (`db`: redis or postgres).
pub(crate) fn read_span(name: &'static str, db: &'static str, view: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: events::telemetry::TARGET,
        "query read",
        otel.name = %format_args!("{name} {view}"),
        otel.kind = "client",
        db.system = db,
        view,
        outcome = tracing::field::Empty,
    )
}

/// True when a cached entry of `id` is at least as new as `token` asks.
fn covers(entry: &Cached, id: &str, token: Option<&ConsistencyToken>) -> bool {
    match token {
        None => true,
        Some(token) => {
            token.id == id
                && entry.version(token.aggregate)
                    >= i64::try_from(token.version).unwrap_or(i64::MAX)
        }
    }
}

/// Where an answer came from, for operators and tests.
const SOURCE_HEADER: &str = "x-served-from";

/// A cached body, answered as is.
fn cached_response(body: String) -> Response {
    encoded_response(body, "cache")
}

/// A document read from PostgreSQL.
fn database_response(document: impl serde::Serialize) -> Response {
    let mut response = axum::Json(document).into_response();
    response
        .headers_mut()
        .insert(SOURCE_HEADER, HeaderValue::from_static("postgres"));
    response
}

/// A document read from PostgreSQL, already encoded.
fn database_body(body: String) -> Response {
    encoded_response(body, "postgres")
}

/// An encoded JSON document, answered as is, saying where it came from.
fn encoded_response(body: String, source: &'static str) -> Response {
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(SOURCE_HEADER, HeaderValue::from_static(source));
    response
}

pub fn router(state: Shared) -> Router {
    let state = AppState(Arc::new(state));
    Router::new()
        .route("/probes/{probe_id}", get(probes::probe))
        .route("/dead-letters", get(dead_letters::list))
        .route("/sales", get(sales::report))
        .route("/sagas", get(sagas::list))
        .route("/sagas/{order_id}", get(sagas::saga))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/asyncapi.json", get(crate::openapi::serve_asyncapi))
        .route("/catalog/items/{sku}", get(catalog::item))
        .route("/orders/{order_id}", get(orders::order))
        .route(
            "/customers/{customer_id}/orders",
            get(history::customer_orders),
        )
        .merge(crate::console::router())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_read_postgresql_would_answer_beyond_the_bound_is_refused_at_once() {
        // Nothing listens on port 1: the cache fails at once, so the read
        // would fall back to PostgreSQL, for which no slot is left.
        let state = Shared {
            pool: projections::read::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap(),
            cache: Arc::new(
                Cache::new("redis://127.0.0.1:1", "t:".into(), Duration::from_secs(1)).unwrap(),
            ),
            verifier: Arc::new(
                JwtVerifier::new(&events::auth::AuthConfig::hs256(
                    b"test-secret-of-thirty-two-bytes!",
                ))
                .unwrap(),
            ),
            consistency_wait: Duration::from_millis(10),
            progress: consistency::Progress::unheard(),
            fallbacks: Semaphore::new(0),
            fills: Arc::new(Semaphore::new(0)),
            upstreams: crate::console::Upstreams {
                command_url: "http://127.0.0.1:1".into(),
                projections_url: "http://127.0.0.1:1".into(),
                http: reqwest::Client::new(),
            },
            signing: SigningKey::development(),
            waits: Semaphore::new(1),
        };
        let request = Request::get("/catalog/items/SKU-1")
            .body(Body::empty())
            .unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["type"].as_str().unwrap().ends_with("/overloaded"),
            "{problem}"
        );
    }
}
