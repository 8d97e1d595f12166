//! The deployment's internal signing key: HMAC-SHA256 tags on data one
//! service hands another through a party that must not alter it
//! (consistency tokens through the client, cache entries through Redis).
//!
//! The key is `SIGNING_KEY` (at least 32 bytes), or derived from
//! `JWT_SECRET` when that is set (so a deployment with one shared secret
//! needs nothing more), or from the published development secret in
//! development mode. Each use derives its own subkey by label, so a tag
//! made for one purpose never verifies for another.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keys::{DEVELOPMENT_SECRET, KeyError, check_secret};

type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 key, with the MAC's state after the key already computed
/// (two SHA-256 blocks), so a tag costs only its message: the query API
/// checks one on every cache hit.
#[derive(Clone)]
pub struct SigningKey {
    key: [u8; 32],
    keyed: HmacSha256,
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &SigningKey) -> bool {
        self.key == other.key
    }
}

impl Eq for SigningKey {}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// The key derived from `secret` (at least 32 bytes).
    pub fn from_secret(secret: &[u8]) -> Result<SigningKey, KeyError> {
        check_secret(secret)?;
        Ok(SigningKey::derived(secret))
    }

    /// The development mode's key (derived from the published secret).
    pub fn development() -> SigningKey {
        SigningKey::derived(DEVELOPMENT_SECRET.as_bytes())
    }

    /// The key derived from `secret`, whatever its length (the caller checks).
    pub(super) fn derived(secret: &[u8]) -> SigningKey {
        SigningKey::new(tag(mac(secret), &[b"commerce signing key v1"]))
    }

    fn new(key: [u8; 32]) -> SigningKey {
        SigningKey {
            key,
            keyed: mac(&key),
        }
    }

    /// The subkey for one purpose.
    pub fn derive(&self, label: &str) -> SigningKey {
        SigningKey::new(tag(self.keyed.clone(), &[label.as_bytes()]))
    }

    /// The tag of `parts` (each length-prefixed, so boundaries count),
    /// base64url without padding.
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(tag(self.keyed.clone(), parts))
    }

    /// True when `signature` is the tag of `parts` (compared in constant time).
    pub fn verify(&self, parts: &[&[u8]], signature: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        update(self.keyed.clone(), parts)
            .verify_slice(&bytes)
            .is_ok()
    }
}

/// The signing key these settings name: `signing_key`, else one derived
/// from `jwt_secret`, else the development key in development mode.
pub fn signing_key(
    signing_key: Option<&str>,
    jwt_secret: Option<&str>,
    dev: bool,
) -> Result<SigningKey, KeyError> {
    match (signing_key, jwt_secret) {
        (Some(key), _) => SigningKey::from_secret(key.as_bytes()),
        (None, Some(secret)) => SigningKey::from_secret(secret.as_bytes()),
        (None, None) if dev => Ok(SigningKey::development()),
        (None, None) => Err(KeyError::NoSigningKey),
    }
}

/// The HMAC-SHA256 state keyed with `key`, before any message.
fn mac(key: &[u8]) -> HmacSha256 {
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(key).expect("hmac accepts keys of any length")
}

/// `mac` fed `parts`, each prefixed with its length.
fn update(mut mac: HmacSha256, parts: &[&[u8]]) -> HmacSha256 {
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The flags of a service that needs only the signing key (the projector).
#[derive(Debug, Clone, clap::Args)]
pub struct SigningArgs {
    /// Development mode: without a key, use one derived from the published
    /// development secret. Never in production.
    #[arg(
        long = "dev",
        env = super::args::DEV_ENV,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub dev: bool,
    /// The internal HMAC key (at least 32 bytes), shared by the command
    /// API, the projector and the query API.
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// The command API's token secret, when the key is derived from it.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

impl SigningArgs {
    /// The key these flags name; an error means the service must not start.
    pub fn key(&self) -> Result<SigningKey, KeyError> {
        signing_key(
            self.signing_key.as_deref(),
            self.jwt_secret.as_deref(),
            self.dev,
        )
    }
}

fn tag(mac: HmacSha256, parts: &[&[u8]]) -> [u8; 32] {
    update(mac, parts).finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_only_for_the_same_key_label_and_parts() {
        let key = SigningKey::from_secret(b"a-signing-secret-of-32-bytes-yes").unwrap();
        let tokens = key.derive("tokens");
        let tag = tokens.sign(&[b"orders", b"3"]);
        assert!(tokens.verify(&[b"orders", b"3"], &tag));
        assert!(!tokens.verify(&[b"orders", b"4"], &tag));
        assert!(!tokens.verify(&[b"orders3"], &tag));
        assert!(!key.derive("cache").verify(&[b"orders", b"3"], &tag));
        assert!(
            !SigningKey::development()
                .derive("tokens")
                .verify(&[b"orders", b"3"], &tag)
        );
        assert!(!tokens.verify(&[b"orders", b"3"], "not base64!"));
        assert!(matches!(
            SigningKey::from_secret(b"short"),
            Err(KeyError::ShortSecret(5))
        ));
    }

    #[test]
    fn a_tag_is_the_plain_hmac_of_the_length_prefixed_parts() {
        // The keyed state is computed once per key; the tag must be what
        // HMAC-SHA256 over the key gives from scratch, as before, so tags
        // made by an older build still verify.
        let key = SigningKey::development().derive("cache");
        let mut mac = HmacSha256::new_from_slice(&key.key).unwrap();
        mac.update(&6u64.to_be_bytes());
        mac.update(b"orders");
        mac.update(&1u64.to_be_bytes());
        mac.update(b"3");
        let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(key.sign(&[b"orders", b"3"]), expected);
    }
}
