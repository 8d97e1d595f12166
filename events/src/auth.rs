//! Who is calling: bearer tokens (JWT) turned into a [`Principal`].
//!
//! Development deployments sign tokens with a shared HS256 secret
//! ([`JwtVerifier::hs256`], [`mint_hs256`]). The verifier is pluggable through
//! its key: [`JwtVerifier::with_key`] accepts any `jsonwebtoken` decoding key
//! and algorithm (an identity provider's RS256 or ES256 public key, say), and
//! the claims it reads stay the same: `sub`, `role`, `exp`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::command::{Principal, Role};
use crate::domain::CustomerId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// How far a token's `exp` may lie in the past and still be accepted, to
/// absorb clock skew between the issuer and this service.
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

/// The claims this service reads and mints. Absent claims decode as empty so
/// that the checks below, not the JSON decoder, say which one is wrong.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Claims {
    sub: String,
    role: String,
    exp: u64,
    iat: u64,
}

/// Checks bearer tokens and extracts the caller.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// Verifies tokens signed with the shared `secret` (development setups).
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with_key(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Verifies tokens signed with `algorithm` under `key`; only that
    /// algorithm is accepted, so a token cannot pick a weaker one.
    pub fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    /// The caller a token names, if its signature, expiry and claims hold.
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
        let role = TOKEN_ROLES
            .iter()
            .find(|(_, name)| *name == data.claims.role)
            .map(|(role, _)| *role)
            .ok_or(AuthError::InvalidClaim("role"))?;
        checked_principal(data.claims.sub, role)
    }
}

/// Mints a development token for `principal`, valid for `ttl`.
pub fn mint_hs256(
    secret: &[u8],
    principal: &Principal,
    ttl: Duration,
) -> Result<String, AuthError> {
    let principal = checked_principal(principal.subject.clone(), principal.role)
        .map_err(|e| AuthError::Mint(e.to_string()))?;
    let (_, role) = TOKEN_ROLES
        .iter()
        .find(|(role, _)| *role == principal.role)
        .ok_or_else(|| AuthError::Mint("the system role is not for tokens".into()))?;
    let now = unix_now();
    let claims = Claims {
        sub: principal.subject,
        role: (*role).to_owned(),
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Mint(e.to_string()))
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret";

    fn who(role: Role, subject: &str) -> Principal {
        Principal {
            subject: subject.into(),
            role,
        }
    }

    fn raw_token(claims: &serde_json::Value, secret: &[u8]) -> String {
        let key = EncodingKey::from_secret(secret);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_to_the_same_principal() {
        for role in [Role::Customer, Role::Admin, Role::Carrier] {
            let token = mint_hs256(SECRET, &who(role, "user-1"), Duration::from_secs(60)).unwrap();
            let verified = JwtVerifier::hs256(SECRET).verify(&token);
            assert_eq!(verified, Ok(who(role, "user-1")));
        }
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token =
            mint_hs256(b"other", &who(Role::Admin, "ops"), Duration::from_secs(60)).unwrap();
        let verified = JwtVerifier::hs256(SECRET).verify(&token);
        assert_eq!(verified, Err(AuthError::BadSignature));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let exp = unix_now() - 3600;
        let claims =
            serde_json::json!({"sub": "u", "role": "customer", "exp": exp, "iat": exp - 60});
        let verified = JwtVerifier::hs256(SECRET).verify(&raw_token(&claims, SECRET));
        assert_eq!(verified, Err(AuthError::Expired));
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "abc", "a.b.c", "Bearer x.y.z"] {
            let verified = JwtVerifier::hs256(SECRET).verify(bad);
            assert_eq!(verified, Err(AuthError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn missing_or_invalid_claims_are_refused() {
        let exp = unix_now() + 600;
        let cases = [
            (serde_json::json!({"sub": "u", "role": "customer"}), "exp"),
            (serde_json::json!({"role": "customer", "exp": exp}), "sub"),
            (
                serde_json::json!({"sub": "u", "role": "root", "exp": exp, "iat": 0}),
                "role",
            ),
            (
                serde_json::json!({"sub": "u", "role": "system", "exp": exp, "iat": 0}),
                "role",
            ),
            (serde_json::json!({"sub": "u", "exp": exp}), "role"),
            (
                serde_json::json!({"sub": " ", "role": "admin", "exp": exp, "iat": 0}),
                "sub",
            ),
            (
                serde_json::json!({"sub": "a\nb", "role": "admin", "exp": exp, "iat": 0}),
                "sub",
            ),
        ];
        for (claims, claim) in cases {
            let verified = JwtVerifier::hs256(SECRET).verify(&raw_token(&claims, SECRET));
            assert_eq!(verified, Err(AuthError::InvalidClaim(claim)), "{claims}");
        }
    }

    #[test]
    fn another_algorithm_than_the_configured_one_is_refused() {
        let claims =
            serde_json::json!({"sub": "u", "role": "admin", "exp": unix_now() + 600, "iat": 0});
        let key = EncodingKey::from_secret(SECRET);
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
        assert_eq!(
            JwtVerifier::hs256(SECRET).verify(&token),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn minting_refuses_system_and_invalid_subjects() {
        let ttl = Duration::from_secs(60);
        assert!(matches!(
            mint_hs256(SECRET, &who(Role::System, "saga"), ttl),
            Err(AuthError::Mint(_))
        ));
        assert!(matches!(
            mint_hs256(SECRET, &who(Role::Admin, ""), ttl),
            Err(AuthError::Mint(_))
        ));
    }
}
