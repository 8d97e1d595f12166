//! `/console/api/...`: an admin's console action passed on to the service
//! that owns it, with the caller's own bearer token. Only these routes
//! exist, and their path parameters are parsed (an order id, a dead-letter
//! id, an action from a fixed list) before anything is sent.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use events::command::{Principal, Role};
use uuid::Uuid;

use crate::http::{AppState, Caller, QueryError};

/// Where the console's actions go.
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The command API, e.g. `http://127.0.0.1:8080`.
    pub command_url: String,
    /// The projector service, e.g. `http://127.0.0.1:8083`.
    pub projections_url: String,
    pub http: reqwest::Client,
}

/// Request headers passed on (besides `Authorization`).
const PASSED: [HeaderName; 2] = [
    header::CONTENT_TYPE,
    HeaderName::from_static("idempotency-key"),
];

/// The caller must be an admin; the token goes on with the request.
fn admin(caller: &Principal) -> Result<(), QueryError> {
    if !matches!(caller.role, Role::Admin | Role::System) {
        return Err(QueryError::Forbidden("the console"));
    }
    Ok(())
}

/// `GET /console/api/lag`: the projector's `GET /lag`.
pub async fn lag(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    admin(&caller)?;
    let url = format!("{}/lag", state.upstreams.projections_url);
    send(
        &state,
        reqwest::Method::GET,
        url,
        &headers,
        Bytes::new(),
        "projector",
    )
    .await
}

/// `POST /console/api/sagas/{order_id}/retry|resolve`: the command API's
/// operator endpoints.
pub async fn saga(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((order_id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, QueryError> {
    admin(&caller)?;
    let id = Uuid::parse_str(&order_id).map_err(|_| QueryError::BadId(order_id))?;
    let action = match action.as_str() {
        "retry" => "retry",
        "resolve" => "resolve",
        _ => return Err(QueryError::NotFound("console action")),
    };
    let url = format!("{}/sagas/{id}/{action}", state.upstreams.command_url);
    send(
        &state,
        reqwest::Method::POST,
        url,
        &headers,
        body,
        "command api",
    )
    .await
}

/// `POST /console/api/dead-letters/{id}/retry|skip`: the projector's.
pub async fn dead_letter(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    admin(&caller)?;
    let id: i64 = id.parse().map_err(|_| QueryError::BadId(id))?;
    let action = match action.as_str() {
        "retry" => "retry",
        "skip" => "skip",
        _ => return Err(QueryError::NotFound("console action")),
    };
    let url = format!(
        "{}/dead-letters/{id}/{action}",
        state.upstreams.projections_url
    );
    send(
        &state,
        reqwest::Method::POST,
        url,
        &headers,
        Bytes::new(),
        "projector",
    )
    .await
}

/// Sends the request with the caller's token and answers what came back
/// (status, content type and body), or 503 when the target does not answer.
async fn send(
    state: &AppState,
    method: reqwest::Method,
    url: String,
    headers: &HeaderMap,
    body: Bytes,
    target: &'static str,
) -> Result<Response, QueryError> {
    let mut request = state.upstreams.http.request(method, url).body(body);
    for name in std::iter::once(header::AUTHORIZATION).chain(PASSED) {
        if let Some(value) = headers.get(&name) {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = request.send().await.map_err(|e| {
        tracing::warn!(error = %e, target, "console forwarding failed");
        QueryError::UpstreamUnavailable(target)
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let bytes = answer
        .bytes()
        .await
        .map_err(|_| QueryError::UpstreamUnavailable(target))?;
    Ok((status, [(header::CONTENT_TYPE, content_type)], bytes).into_response())
}
