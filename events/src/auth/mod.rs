//! Who is calling: bearer tokens (JWT) turned into a [`Principal`], checked
//! in this one place for both HTTP APIs.
//!
//! - [`keys`]: where the keys come from ([`AuthConfig`]: a shared HS256
//!   secret of at least 32 bytes, a public key PEM file or a JWKS document
//!   for RS256, ES256 or EdDSA), the issuer, audience and longest lifetime
//!   tokens must have, and the explicit development mode.
//! - [`args`]: the flags and environment variables every service reads them from.
//! - [`mint`]: minting tokens (HS256 secret or a private key).
//! - [`signing`]: the internal HMAC key of consistency tokens and cache entries.
//! - `verified`: the tokens that verified recently, answered without
//!   checking their signature again.
//!
//! A token must name this deployment's issuer (`iss`) and audience (`aud`),
//! carry `sub`, `role`, `iat` and `exp`, and live no longer than the
//! configured maximum. Only the configured algorithms are accepted, so a
//! token cannot pick a weaker one (or an HMAC keyed with a public key).

pub mod args;
pub mod keys;
pub mod mint;
pub mod signing;
mod verified;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::header::AUTHORIZATION;
use axum::http::{Extensions, HeaderMap};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

pub use self::args::AuthArgs;
pub use self::keys::{AuthConfig, KeyError, KeySource, TokenPolicy};
pub use self::mint::{Minter, mint_hs256};
use self::verified::VerifiedTokens;
use crate::command::{Principal, Role};
use crate::domain::CustomerId;

/// How far a token's `exp` may lie in the past (and its `iat` in the
/// future) and still be accepted, to absorb clock skew between the issuer
/// and this service.
const CLOCK_SKEW_SECONDS: u64 = 30;

/// Why a caller could not be identified (HTTP 401), or a token not minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed bearer token")]
    Malformed,
    #[error("token expired")]
    Expired,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token claim {0} is missing or invalid")]
    InvalidClaim(&'static str),
    #[error("token lives longer than this deployment allows")]
    LifetimeTooLong,
    #[error("cannot mint a token: {0}")]
    Mint(String),
}

/// The roles a token may carry, by their claim value. `system` is missing on
/// purpose: it belongs to the services inside the deployment (the saga) and
/// never comes over HTTP.
const TOKEN_ROLES: [(Role, &str); 3] = [
    (Role::Customer, "customer"),
    (Role::Admin, "admin"),
    (Role::Carrier, "carrier"),
];

/// The claims this service reads. Absent claims decode as empty so that the
/// checks below, not the JSON decoder, say which one is wrong; `iss` and
/// `aud` are checked by `jsonwebtoken` itself.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Claims {
    sub: String,
    role: String,
    exp: u64,
    iat: u64,
}

/// One key a token may be signed with.
struct VerifyingKey {
    /// The JWKS `kid`, if the key came from a key set.
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// Checks bearer tokens and extracts the caller. It holds only what
/// verifies (a public key verifies without being able to mint).
pub struct JwtVerifier {
    keys: Vec<VerifyingKey>,
    max_lifetime_seconds: u64,
    verified: VerifiedTokens,
}

/// What verifying a request's bearer token gave, in the request's
/// extensions (see [`JwtVerifier::request_caller`]). Private: only the
/// verifier puts it there, so a handler cannot be handed a caller that
/// was never verified.
#[derive(Clone)]
struct Checked(Result<Principal, AuthError>);

impl JwtVerifier {
    /// The verifier of `config`'s keys, issuer, audience and lifetime.
    pub fn new(config: &AuthConfig) -> Result<JwtVerifier, KeyError> {
        let keys = config
            .keys
            .decoding_keys()?
            .into_iter()
            .map(|(kid, key, algorithm)| VerifyingKey {
                kid,
                key,
                validation: validation(&config.policy, algorithm),
            })
            .collect();
        Ok(JwtVerifier {
            keys,
            max_lifetime_seconds: config.policy.max_lifetime.as_secs(),
            verified: VerifiedTokens::new(),
        })
    }

    /// The caller named by the request's `Authorization: Bearer <token>`;
    /// the scheme is case-insensitive (RFC 9110), another scheme is no
    /// bearer credential at all (missing). Callers outside ask through
    /// [`Self::request_caller`], which checks a request once.
    fn caller(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.verify(bearer_token(headers)?)
    }

    /// [`Self::caller`] at most once per request: the answer is kept in the
    /// request's `extensions` for whoever asks next (the rate limit asks
    /// first, then the handler), so a token's signature is checked once.
    pub fn request_caller(
        &self,
        headers: &HeaderMap,
        extensions: &mut Extensions,
    ) -> Result<Principal, AuthError> {
        if let Some(Checked(answer)) = extensions.get::<Checked>() {
            return answer.clone();
        }
        let answer = self.caller(headers);
        extensions.insert(Checked(answer.clone()));
        answer
    }

    /// Who a rate limit counts the request against: the verified caller's
    /// role and subject, or `None` (then the client address counts).
    pub fn rate_key(&self, headers: &HeaderMap, extensions: &mut Extensions) -> Option<String> {
        let principal = self.request_caller(headers, extensions).ok()?;
        Some(format!("{:?}:{}", principal.role, principal.subject))
    }

    /// The caller a token names, if its signature, issuer, audience,
    /// lifetime and claims hold.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_at(token, unix_now())
    }

    /// [`Self::verify`] at `now` (seconds since the epoch): from the
    /// verified tokens if it is one of them, else by the full check.
    fn verify_at(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        if let Some(principal) = self.verified.get(token, now) {
            return Ok(principal);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = self.key_for(header.kid.as_deref())?;
        if !key.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::Malformed);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation)
            .map_err(|e| claim_error(e.kind()))?;
        let claims = data.claims;
        // jsonwebtoken checked `exp` by its own clock; `now` decides too,
        // as it does for the verified tokens.
        let valid_until = claims.exp.saturating_add(CLOCK_SKEW_SECONDS);
        if valid_until < now {
            return Err(AuthError::Expired);
        }
        if claims.iat == 0 || claims.iat > now + CLOCK_SKEW_SECONDS {
            return Err(AuthError::InvalidClaim("iat"));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime_seconds {
            return Err(AuthError::LifetimeTooLong);
        }
        let role = TOKEN_ROLES
            .iter()
            .find(|(_, name)| *name == claims.role)
            .map(|(role, _)| *role)
            .ok_or(AuthError::InvalidClaim("role"))?;
        let principal = checked_principal(claims.sub, role)?;
        self.verified.insert(token, principal.clone(), valid_until);
        Ok(principal)
    }

    /// The key a token names by `kid`; without one, the only key there is.
    fn key_for(&self, kid: Option<&str>) -> Result<&VerifyingKey, AuthError> {
        match (kid, self.keys.as_slice()) {
            (None, [only]) => Ok(only),
            (_, [only]) if only.kid.is_none() => Ok(only),
            (Some(kid), keys) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or(AuthError::BadSignature),
            (None, _) => Err(AuthError::Malformed),
        }
    }
}

fn validation(policy: &TokenPolicy, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = CLOCK_SKEW_SECONDS;
    // `iat` is not among the claims jsonwebtoken can require; `verify` checks it.
    validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    validation.set_issuer(&[&policy.issuer]);
    validation.set_audience(&[&policy.audience]);
    validation
}

fn claim_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::InvalidClaim("iss"),
        ErrorKind::InvalidAudience => AuthError::InvalidClaim("aud"),
        ErrorKind::ImmatureSignature => AuthError::InvalidClaim("nbf"),
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::InvalidClaim("exp"),
            "iat" => AuthError::InvalidClaim("iat"),
            "iss" => AuthError::InvalidClaim("iss"),
            "aud" => AuthError::InvalidClaim("aud"),
            _ => AuthError::InvalidClaim("sub"),
        },
        _ => AuthError::Malformed,
    }
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Missing);
    }
    match token.trim() {
        "" => Err(AuthError::Malformed),
        token => Ok(token),
    }
}

/// Checks the subject of a verified (or about to be minted) token.
fn checked_principal(subject: String, role: Role) -> Result<Principal, AuthError> {
    // Customer ids and operator names follow the same rules: bounded,
    // printable, so the subject is safe in logs and id derivations.
    let subject = CustomerId::new(subject).map_err(|_| AuthError::InvalidClaim("sub"))?;
    Ok(Principal {
        subject: subject.into(),
        role,
    })
}

fn role_claim(role: Role) -> Option<&'static str> {
    TOKEN_ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, name)| *name)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
