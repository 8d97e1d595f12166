//! Where token keys come from, and what a token must say to be accepted.
//!
//! There is no usable default: a service gets its key from configuration
//! ([`super::args::AuthArgs`]), and only the explicit development mode falls
//! back to [`DEVELOPMENT_SECRET`], which is published (it is in this file)
//! and so never accepted outside that mode.

use std::fmt;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::signing::SigningKey;

/// The development mode's secret. Anyone can read it, so a service refuses
/// it unless started in development mode.
pub const DEVELOPMENT_SECRET: &str = "dev-secret-do-not-use-in-production";
/// Shortest HS256 secret accepted: 256 bits, the hash's size (RFC 7518 3.2).
pub const MIN_SECRET_BYTES: usize = 32;
/// The `iss` tokens must carry unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "commerce";
/// The `aud` tokens must carry unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "commerce-api";
/// The longest lifetime (`exp - iat`) a token may have unless configured otherwise.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How bearer tokens are checked.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub keys: KeySource,
    pub policy: TokenPolicy,
    /// Signs and checks consistency tokens and cache entries.
    pub signing: SigningKey,
}

/// What a token must say, whatever key signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must include.
    pub audience: String,
    /// Tokens whose `exp - iat` is longer are refused (and not minted).
    pub max_lifetime: Duration,
}

impl Default for TokenPolicy {
    fn default() -> TokenPolicy {
        TokenPolicy {
            issuer: DEFAULT_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }
}

/// The key material tokens are verified with.
#[derive(Clone)]
pub enum KeySource {
    /// A shared HS256 secret (at least [`MIN_SECRET_BYTES`]): verifies and mints.
    Secret(Vec<u8>),
    /// A PEM public key (`-----BEGIN PUBLIC KEY-----`) for RS256, ES256 or
    /// EdDSA: verifies only.
    PublicKeyPem { pem: Vec<u8>, algorithm: Algorithm },
    /// An identity provider's key set; a token names its key by `kid`.
    Jwks(JwkSet),
}

/// Why no verifier (or minter) could be built: the service refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no token signing key configured: set JWT_SECRET (at least 32 bytes), \
         JWT_PUBLIC_KEY_FILE or JWT_JWKS, or start in development mode (--dev or COMMERCE_DEV=1)"
    )]
    NoKey,
    #[error("the JWT secret is {0} bytes long; at least 32 are required")]
    ShortSecret(usize),
    #[error("the JWT secret is the published development secret; it is accepted only with --dev")]
    PublishedSecret,
    #[error(
        "configure one token key source, not several (JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS)"
    )]
    SeveralKeys,
    #[error(
        "algorithm {0:?} is not supported (RS256, ES256 or EdDSA for keys, HS256 for a secret)"
    )]
    UnsupportedAlgorithm(Algorithm),
    #[error("the key is not a valid {algorithm:?} PEM key: {reason}")]
    Pem {
        algorithm: Algorithm,
        reason: String,
    },
    #[error("the JWKS has no usable RS256, ES256 or EdDSA signing key")]
    EmptyJwks,
    #[error("reading {what}: {reason}")]
    Read { what: String, reason: String },
    #[error(
        "no signing key configured: set SIGNING_KEY (at least 32 bytes) or JWT_SECRET, \
         or start in development mode (--dev or COMMERCE_DEV=1)"
    )]
    NoSigningKey,
    #[error("minting needs JWT_SECRET or a private key (--jwt-private-key-file)")]
    CannotMint,
}

impl AuthConfig {
    /// HS256 with `secret`, the default issuer, audience and lifetime.
    /// The signing key is derived from the secret.
    pub fn hs256(secret: impl Into<Vec<u8>>) -> AuthConfig {
        let secret = secret.into();
        let signing = SigningKey::derived(&secret);
        AuthConfig::with_keys(KeySource::Secret(secret), signing)
    }

    /// The development mode's configuration (the published secret).
    pub fn development() -> AuthConfig {
        AuthConfig::hs256(DEVELOPMENT_SECRET)
    }

    /// `keys` and `signing` with the default issuer, audience and lifetime.
    pub fn with_keys(keys: KeySource, signing: SigningKey) -> AuthConfig {
        AuthConfig {
            keys,
            policy: TokenPolicy::default(),
            signing,
        }
    }

    /// True when this configuration holds the published development secret.
    pub fn is_development(&self) -> bool {
        matches!(&self.keys, KeySource::Secret(s) if s == DEVELOPMENT_SECRET.as_bytes())
    }
}

impl fmt::Debug for KeySource {
    /// Never prints a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(<redacted>)"),
            KeySource::PublicKeyPem { algorithm, .. } => write!(f, "PublicKeyPem({algorithm:?})"),
            KeySource::Jwks(set) => write!(f, "Jwks({} keys)", set.keys.len()),
        }
    }
}

/// A key, the `kid` it is known by, and the one algorithm it verifies.
pub(super) type Decoding = (Option<String>, DecodingKey, Algorithm);

impl KeySource {
    /// The verifying keys, each with its algorithm; refuses short secrets
    /// and keys of other algorithms than HS256, RS256, ES256 and EdDSA.
    pub(super) fn decoding_keys(&self) -> Result<Vec<Decoding>, KeyError> {
        match self {
            KeySource::Secret(secret) => {
                check_secret(secret)?;
                let key = DecodingKey::from_secret(secret);
                Ok(vec![(None, key, Algorithm::HS256)])
            }
            KeySource::PublicKeyPem { pem, algorithm } => {
                let pem_error = |e: jsonwebtoken::errors::Error| KeyError::Pem {
                    algorithm: *algorithm,
                    reason: e.to_string(),
                };
                let key = match algorithm {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(pem).map_err(pem_error)?,
                    Algorithm::ES256 => DecodingKey::from_ec_pem(pem).map_err(pem_error)?,
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem).map_err(pem_error)?,
                    other => return Err(KeyError::UnsupportedAlgorithm(*other)),
                };
                Ok(vec![(None, key, *algorithm)])
            }
            KeySource::Jwks(set) => {
                let keys: Vec<Decoding> = set
                    .keys
                    .iter()
                    .filter(|jwk| jwk.common.public_key_use != Some(PublicKeyUse::Encryption))
                    .filter_map(|jwk| {
                        let algorithm = jwk_algorithm(jwk)?;
                        let key = DecodingKey::from_jwk(jwk).ok()?;
                        Some((jwk.common.key_id.clone(), key, algorithm))
                    })
                    .collect();
                if keys.is_empty() {
                    return Err(KeyError::EmptyJwks);
                }
                Ok(keys)
            }
        }
    }
}

/// A secret long enough to resist guessing offline.
pub(super) fn check_secret(secret: &[u8]) -> Result<(), KeyError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::ShortSecret(secret.len()));
    }
    Ok(())
}

/// The algorithm a JWK verifies: its `alg` when given (one of ours), else
/// what its key type implies. Symmetric keys are never taken from a JWKS.
fn jwk_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Some(implied),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Some(implied),
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Some(implied),
        Some(_) => None,
    }
}
