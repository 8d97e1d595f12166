//! The flags (and environment variables) every service reads its token keys
//! from, and the explicit development mode.
//!
//! Exactly one key source: `JWT_SECRET` (HS256, at least 32 bytes),
//! `JWT_PUBLIC_KEY_FILE` (a PEM public key; `JWT_ALGORITHM` RS256, ES256 or
//! EdDSA) or `JWT_JWKS` (a JWKS file, or an `https://` URL fetched at
//! start). Without one a service refuses to start, unless started with
//! `--dev` or `COMMERCE_DEV=1`: then the published development secret is
//! used, and that secret is refused in any other mode.

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgAction;
use clap::builder::BoolishValueParser;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;

use super::keys::{
    AuthConfig, DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEVELOPMENT_SECRET, KeyError, KeySource,
    TokenPolicy,
};

/// The environment variable of the development mode (`--dev`).
pub const DEV_ENV: &str = "COMMERCE_DEV";

/// Token settings of a service that verifies tokens.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// Development mode: without a configured key, tokens are signed and
    /// checked with the published development secret. Never in production.
    #[arg(
        long = "dev",
        env = DEV_ENV,
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub dev: bool,
    /// HS256 secret that signs and verifies bearer tokens (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM public key that verifies bearer tokens (algorithm: --jwt-algorithm).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS of the identity provider: a file, or an https:// URL read at start.
    #[arg(long, env = "JWT_JWKS")]
    pub jwt_jwks: Option<String>,
    /// Algorithm of the PEM key: RS256, ES256 or EdDSA.
    #[arg(long, env = "JWT_ALGORITHM", default_value = "RS256", value_parser = parse_algorithm)]
    pub jwt_algorithm: Algorithm,
    /// The `iss` every token must carry.
    #[arg(long, env = "JWT_ISSUER", default_value = DEFAULT_ISSUER)]
    pub jwt_issuer: String,
    /// The `aud` every token must include.
    #[arg(long, env = "JWT_AUDIENCE", default_value = DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
    /// The internal HMAC key of consistency tokens and cache entries (at
    /// least 32 bytes; default: derived from JWT_SECRET). Needed when
    /// tokens are verified with a public key or JWKS.
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// Longest token lifetime (`exp - iat`) accepted, e.g. 1h or 1d.
    #[arg(long, env = "JWT_MAX_LIFETIME", default_value = "1d", value_parser = parse_duration)]
    pub jwt_max_lifetime: Duration,
}

impl AuthArgs {
    /// The configuration these flags name, reading key files (and fetching
    /// a JWKS URL); an error means the service must not start.
    pub async fn config(&self) -> Result<AuthConfig, KeyError> {
        let sources = [
            self.jwt_secret.is_some(),
            self.jwt_public_key_file.is_some(),
            self.jwt_jwks.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(KeyError::SeveralKeys);
        }
        let keys = if let Some(secret) = &self.jwt_secret {
            if secret == DEVELOPMENT_SECRET && !self.dev {
                return Err(KeyError::PublishedSecret);
            }
            KeySource::Secret(secret.clone().into_bytes())
        } else if let Some(path) = &self.jwt_public_key_file {
            KeySource::PublicKeyPem {
                pem: read_file(path)?,
                algorithm: self.jwt_algorithm,
            }
        } else if let Some(location) = &self.jwt_jwks {
            KeySource::Jwks(read_jwks(location).await?)
        } else if self.dev {
            tracing::warn!("development mode: tokens use the published development secret");
            KeySource::Secret(DEVELOPMENT_SECRET.as_bytes().to_vec())
        } else {
            return Err(KeyError::NoKey);
        };
        let signing = super::signing::signing_key(
            self.signing_key.as_deref(),
            self.jwt_secret.as_deref(),
            self.dev,
        )?;
        let config = AuthConfig {
            keys,
            policy: self.policy(),
            signing,
        };
        // Fails now, not at the first request, on a short secret or a bad key.
        super::JwtVerifier::new(&config)?;
        Ok(config)
    }
}

impl AuthArgs {
    /// The issuer, audience and lifetime these flags name.
    pub fn policy(&self) -> TokenPolicy {
        TokenPolicy {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            max_lifetime: self.jwt_max_lifetime,
        }
    }
}

/// The bytes of a key file.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|e| KeyError::Read {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

async fn read_jwks(location: &str) -> Result<JwkSet, KeyError> {
    let read_error = |reason: String| KeyError::Read {
        what: location.to_owned(),
        reason,
    };
    let bytes = if location.starts_with("https://") || location.starts_with("http://") {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map(|client| client.get(location))
            .map_err(|e| read_error(e.to_string()))?
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| read_error(e.to_string()))?;
        response
            .bytes()
            .await
            .map_err(|e| read_error(e.to_string()))?
            .to_vec()
    } else {
        read_file(std::path::Path::new(location))?
    };
    serde_json::from_slice(&bytes).map_err(|e| read_error(e.to_string()))
}

fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    match text {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        _ => Err(format!(
            "unsupported algorithm {text:?}: RS256, ES256 or EdDSA"
        )),
    }
}

/// A duration like `30s`, `30m`, `1h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: expected e.g. 30m, 1h or 7d");
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(unit_at);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(invalid()),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    Ok(Duration::from_secs(number.saturating_mul(unit_seconds)))
}
