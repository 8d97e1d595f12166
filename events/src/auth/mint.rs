//! Minting tokens: with the HS256 secret (development, or a deployment that
//! shares one secret) or with a private key whose public half the services
//! verify with. A minted token carries the configured issuer and audience
//! and never lives longer than the configured maximum.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::keys::{AuthConfig, KeyError, KeySource, TokenPolicy, check_secret};
use super::{AuthError, checked_principal, role_claim, unix_now};
use crate::command::Principal;

/// Signs tokens.
pub struct Minter {
    key: EncodingKey,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
    max_lifetime: Duration,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    role: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl Minter {
    /// Mints with `config`'s HS256 secret; a verify-only configuration
    /// (public key, JWKS) cannot mint.
    pub fn new(config: &AuthConfig) -> Result<Minter, KeyError> {
        let KeySource::Secret(secret) = &config.keys else {
            return Err(KeyError::CannotMint);
        };
        check_secret(secret)?;
        Ok(Minter::with_key(
            EncodingKey::from_secret(secret),
            Algorithm::HS256,
            &config.policy,
        ))
    }

    /// Mints with a PEM private key (PKCS#8 for ES256 and EdDSA) of
    /// `algorithm`, for `policy`'s issuer, audience and lifetime.
    pub fn from_private_pem(
        pem: &[u8],
        algorithm: Algorithm,
        policy: &TokenPolicy,
    ) -> Result<Minter, KeyError> {
        let pem_error = |e: jsonwebtoken::errors::Error| KeyError::Pem {
            algorithm,
            reason: e.to_string(),
        };
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem).map_err(pem_error)?,
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem).map_err(pem_error)?,
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).map_err(pem_error)?,
            other => return Err(KeyError::UnsupportedAlgorithm(other)),
        };
        Ok(Minter::with_key(key, algorithm, policy))
    }

    fn with_key(key: EncodingKey, algorithm: Algorithm, policy: &TokenPolicy) -> Minter {
        Minter {
            key,
            algorithm,
            issuer: policy.issuer.clone(),
            audience: policy.audience.clone(),
            max_lifetime: policy.max_lifetime,
        }
    }

    /// A token for `principal`, valid for `ttl` (at most the maximum lifetime).
    pub fn mint(&self, principal: &Principal, ttl: Duration) -> Result<String, AuthError> {
        if ttl > self.max_lifetime {
            return Err(AuthError::Mint(format!(
                "a lifetime of {}s exceeds the maximum of {}s",
                ttl.as_secs(),
                self.max_lifetime.as_secs()
            )));
        }
        let principal = checked_principal(principal.subject.clone(), principal.role)
            .map_err(|e| AuthError::Mint(e.to_string()))?;
        let role = role_claim(principal.role)
            .ok_or_else(|| AuthError::Mint("the system role is not for tokens".into()))?;
        let now = unix_now();
        let claims = MintedClaims {
            sub: &principal.subject,
            role,
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|e| AuthError::Mint(e.to_string()))
    }
}

/// Mints an HS256 token for `principal` with the default issuer, audience
/// and lifetime (tests and the benchmark, whose services use
/// [`AuthConfig::hs256`] with the same secret).
pub fn mint_hs256(
    secret: &[u8],
    principal: &Principal,
    ttl: Duration,
) -> Result<String, AuthError> {
    Minter::new(&AuthConfig::hs256(secret))
        .map_err(|e| AuthError::Mint(e.to_string()))?
        .mint(principal, ttl)
}
