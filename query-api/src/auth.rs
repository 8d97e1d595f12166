//! Who is reading: the request's `Authorization: Bearer <JWT>`, checked by
//! the verifier both APIs share ([`events::auth::JwtVerifier`]).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
pub use events::auth::AuthError;
use events::auth::JwtVerifier;
use events::command::Principal;

/// Checks bearer tokens.
pub struct Verifier(JwtVerifier);

impl Verifier {
    pub fn hs256(secret: &[u8]) -> Verifier {
        Verifier(JwtVerifier::hs256(secret))
    }

    /// The caller named by the request's bearer token.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(AuthError::Malformed)?;
        self.0.verify(token.trim())
    }

    /// Who the rate limit counts a request against: the verified caller's
    /// role and subject, or `None` (then the client address counts).
    pub fn rate_key(&self, headers: &HeaderMap) -> Option<String> {
        let principal = self.caller(headers).ok()?;
        Some(format!("{:?}:{}", principal.role, principal.subject))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use events::command::Role;

    use super::*;

    const SECRET: &[u8] = b"test-secret";

    #[test]
    fn a_bearer_token_names_its_caller() {
        let alice = Principal {
            subject: "alice".into(),
            role: Role::Customer,
        };
        let token = events::auth::mint_hs256(SECRET, &alice, Duration::from_secs(60)).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        assert_eq!(Verifier::hs256(SECRET).caller(&headers), Ok(alice));
        assert_eq!(
            Verifier::hs256(b"other-secret").caller(&headers),
            Err(AuthError::BadSignature)
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
