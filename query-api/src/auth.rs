//! Who is reading: `Authorization: Bearer <JWT>` checked against an HS256
//! secret. The claims are those the command API mints: `sub`, `role`
//! (`customer`, `admin` or `carrier`) and `exp`.
//!
//! Written here rather than imported from `command` because the query API
//! must not depend on the write side; the rules are small and the tests pin
//! the shared claim names.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use events::command::{Principal, Role};
use events::domain::CustomerId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How far in the past a token's `exp` may be, to absorb clock skew.
const CLOCK_SKEW_SECONDS: u64 = 30;

/// Why a caller could not be identified (HTTP 401).
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Claims {
    sub: String,
    role: String,
}

/// Checks bearer tokens.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn hs256(secret: &[u8]) -> Verifier {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Verifier {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The caller named by the request's bearer token.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AuthError::Malformed)?;
        self.verify(token.trim())
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => {
                    AuthError::InvalidClaim("exp")
                }
                ErrorKind::MissingRequiredClaim(_) => AuthError::InvalidClaim("sub"),
                _ => AuthError::Malformed,
            },
        )?;
        let role = match data.claims.role.as_str() {
            "customer" => Role::Customer,
            "admin" => Role::Admin,
            "carrier" => Role::Carrier,
            // `system` belongs to services inside the deployment, never to HTTP callers.
            _ => return Err(AuthError::InvalidClaim("role")),
        };
        let subject =
            CustomerId::new(data.claims.sub).map_err(|_| AuthError::InvalidClaim("sub"))?;
        Ok(Principal {
            subject: subject.into(),
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &[u8] = b"test-secret";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        let key = EncodingKey::from_secret(secret);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    fn verify(claims: serde_json::Value) -> Result<Principal, AuthError> {
        Verifier::hs256(SECRET).verify(&token(claims, SECRET))
    }

    #[test]
    fn a_valid_token_names_its_caller() {
        let principal =
            verify(serde_json::json!({"sub": "c-1", "role": "customer", "exp": now() + 60}));
        assert_eq!(
            principal,
            Ok(Principal {
                subject: "c-1".into(),
                role: Role::Customer
            })
        );
    }

    #[test]
    fn forged_expired_and_incomplete_tokens_are_refused() {
        let claims = serde_json::json!({"sub": "ops", "role": "admin", "exp": now() + 60});
        let forged = token(claims, b"other-secret");
        assert_eq!(
            Verifier::hs256(SECRET).verify(&forged),
            Err(AuthError::BadSignature)
        );
        let expired = serde_json::json!({"sub": "ops", "role": "admin", "exp": now() - 3600});
        assert_eq!(verify(expired), Err(AuthError::Expired));
        let system = serde_json::json!({"sub": "saga", "role": "system", "exp": now() + 60});
        assert_eq!(verify(system), Err(AuthError::InvalidClaim("role")));
        let no_sub = serde_json::json!({"role": "admin", "exp": now() + 60});
        assert_eq!(verify(no_sub), Err(AuthError::InvalidClaim("sub")));
        assert_eq!(
            Verifier::hs256(SECRET).verify("a.b.c"),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn the_header_must_be_a_bearer_token() {
        let verifier = Verifier::hs256(SECRET);
        assert_eq!(verifier.caller(&HeaderMap::new()), Err(AuthError::Missing));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(verifier.caller(&headers), Err(AuthError::Malformed));
    }
}
