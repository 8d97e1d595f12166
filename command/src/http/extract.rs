//! Extractors whose rejections are all [`ApiError`]s (so problem+json):
//! JSON bodies, path segments, the authenticated caller and the headers
//! commands care about (`Idempotency-Key`, `If-Match`, `traceparent`).

use std::error::Error as _;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use events::command::{Principal, Role};

use super::error::ApiError;
use crate::auth::JwtVerifier;

/// A JSON body; syntax errors are 400, a wrong shape (unknown fields, wrong
/// types) 422, a wrong content type 415 and an oversized body 413.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // The source is serde's message prefixed with the JSON path
        // (`lines[1]: unknown field ...`), which names the offending field.
        let detail = rejection
            .source()
            .map_or_else(|| rejection.body_text(), |source| source.to_string());
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::InvalidBody(detail),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::BodyTooLarge
            }
            _ => ApiError::MalformedJson(detail),
        }
    }
}

/// Path parameters; a segment that cannot be decoded is 400.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::InvalidPath {
            name: "path",
            reason: rejection.body_text(),
        }
    }
}

/// The set of roles an endpoint admits.
pub trait Allowed {
    const ROLES: &'static [Role];
}

/// Operators only.
pub struct AdminOnly;
/// Customers (for what is theirs; the processor checks ownership) and operators.
pub struct CustomerOrAdmin;
/// Customers only: placing an order needs a customer id.
pub struct CustomerOnly;
/// Carriers and operators.
pub struct CarrierOrAdmin;
/// Any authenticated caller.
pub struct Anyone;

impl Allowed for AdminOnly {
    const ROLES: &'static [Role] = &[Role::Admin];
}
impl Allowed for CustomerOrAdmin {
    const ROLES: &'static [Role] = &[Role::Customer, Role::Admin];
}
impl Allowed for CustomerOnly {
    const ROLES: &'static [Role] = &[Role::Customer];
}
impl Allowed for CarrierOrAdmin {
    const ROLES: &'static [Role] = &[Role::Carrier, Role::Admin];
}
impl Allowed for Anyone {
    const ROLES: &'static [Role] = &[Role::Customer, Role::Admin, Role::Carrier];
}

/// The authenticated caller, whose role is one of `R::ROLES`: a missing or
/// bad token is 401, another role 403. Extracted before the body, so an
/// unauthenticated request learns nothing about what the body should be.
pub struct Caller<R> {
    pub principal: Principal,
    roles: PhantomData<fn() -> R>,
}

impl<S, R> FromRequestParts<S> for Caller<R>
where
    R: Allowed,
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Arc::<JwtVerifier>::from_ref(state)
            .request_caller(&parts.headers, &mut parts.extensions)
            .map_err(ApiError::Unauthenticated)?;
        if !R::ROLES.contains(&principal.role) {
            return Err(ApiError::Forbidden(principal.role));
        }
        Ok(Self {
            principal,
            roles: PhantomData,
        })
    }
}

/// The only value of a header that must not repeat; `Ok(None)` when absent.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    first.to_str().map(Some).map_err(|_| ())
}

/// `Idempotency-Key`: 1 to 255 printable ASCII characters. Extracting it
/// directly makes it required (400 when missing); `Option<IdempotencyKey>`
/// makes it optional but still validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

impl IdempotencyKey {
    fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let value =
            single(headers, &IDEMPOTENCY_KEY).map_err(|()| ApiError::InvalidIdempotencyKey)?;
        let Some(value) = value else {
            return Ok(None);
        };
        let printable = value.bytes().all(|b| (0x20..0x7f).contains(&b));
        if value.trim().is_empty() || value.len() > MAX_IDEMPOTENCY_KEY_CHARS || !printable {
            return Err(ApiError::InvalidIdempotencyKey);
        }
        Ok(Some(Self(value.to_owned())))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&parts.headers)?.ok_or(ApiError::MissingIdempotencyKey)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Self::from_headers(&parts.headers)
    }
}

/// `If-Match: 3` or `If-Match: "3"`: the version the caller last saw.
/// `*` (any current version) and an absent header both mean "no check".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub Option<u64>);

impl IfMatch {
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        let value = value.trim();
        if value == "*" {
            return Ok(Self(None));
        }
        let unquoted = match value.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"').ok_or(ApiError::InvalidIfMatch)?,
            None => value,
        };
        let digits = !unquoted.is_empty() && unquoted.bytes().all(|b| b.is_ascii_digit());
        let version = unquoted.parse().ok().filter(|_| digits);
        version
            .map(|v| Self(Some(v)))
            .ok_or(ApiError::InvalidIfMatch)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match single(&parts.headers, &header::IF_MATCH).map_err(|()| ApiError::InvalidIfMatch)? {
            Some(value) => Self::parse(value),
            None => Ok(Self(None)),
        }
    }
}

/// The incoming W3C `traceparent`, kept only when well-formed (the trace
/// context spec says to ignore an invalid one rather than fail the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceparent(pub Option<String>);

impl Traceparent {
    pub fn is_valid(value: &str) -> bool {
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
        let parts: Vec<&str> = value.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return false;
        };
        hex(version, 2)
            && *version != "ff"
            && hex(trace_id, 32)
            && nonzero(trace_id)
            && hex(parent_id, 16)
            && nonzero(parent_id)
            && hex(flags, 2)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Traceparent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let name = HeaderName::from_static("traceparent");
        let value = single(&parts.headers, &name).ok().flatten();
        Ok(Self(value.filter(|v| Self::is_valid(v)).map(str::to_owned)))
    }
}
