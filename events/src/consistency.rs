//! Consistency tokens: what a command answer hands the client so that a later
//! read on the query API can wait until the views reflect the write.
//!
//! Format (version 2), a URL- and header-safe ASCII string:
//!
//! ```text
//! v2.<aggregate>.<version>.<signature>.<aggregate id>
//! v2.orders.3.Xq3...Q.0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b
//! ```
//!
//! `<aggregate>` is `AggregateType::as_str` (the topic name: `catalog`,
//! `orders`, `payments`, `shipments`, `sagas`), `<version>` the aggregate's
//! sequence number after the command (decimal), `<signature>` the
//! HMAC-SHA256 (base64url) of aggregate, version and id under a subkey of
//! the deployment's signing key, and the id comes last so it may itself
//! contain dots. Bytes of the id outside `A-Z a-z 0-9 - . _ ~` are
//! percent-encoded (`%2F`). Clients treat the token as opaque; the query API
//! checks it with [`ConsistencyToken::verify`], so a token cannot be made
//! up (to learn whether an order exists, or to make the service wait) and
//! names the one aggregate it was issued for.

use std::fmt::Write as _;

use crate::auth::signing::SigningKey;
use crate::envelope::AggregateType;

const PREFIX: &str = "v2";
/// The purpose the signing subkey is derived for.
const LABEL: &str = "consistency tokens";

/// A verified token: "the view of this aggregate at this version".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    pub aggregate: AggregateType,
    pub id: String,
    pub version: u64,
}

/// The token is malformed or its signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid consistency token")]
pub struct InvalidConsistencyToken;

/// The signed token for `aggregate` `id` at `version`, as command answers carry it.
pub fn consistency_token(
    aggregate: AggregateType,
    id: &str,
    version: u64,
    key: &SigningKey,
) -> String {
    ConsistencyToken {
        aggregate,
        id: id.to_owned(),
        version,
    }
    .signed(key)
}

impl ConsistencyToken {
    /// The token's text, signed with `key`.
    pub fn signed(&self, key: &SigningKey) -> String {
        let version = self.version.to_string();
        let signature = key.derive(LABEL).sign(&[
            self.aggregate.as_str().as_bytes(),
            version.as_bytes(),
            self.id.as_bytes(),
        ]);
        let mut text = format!(
            "{PREFIX}.{}.{version}.{signature}.",
            self.aggregate.as_str()
        );
        for byte in self.id.bytes() {
            if is_unreserved(byte) {
                text.push(char::from(byte));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(text, "%{byte:02X}");
            }
        }
        text
    }

    /// The token `text` names, if it is well-formed and signed with `key`.
    pub fn verify(text: &str, key: &SigningKey) -> Result<Self, InvalidConsistencyToken> {
        let (token, signature) = Self::parse_unverified(text)?;
        let version = token.version.to_string();
        let parts: [&[u8]; 3] = [
            token.aggregate.as_str().as_bytes(),
            version.as_bytes(),
            token.id.as_bytes(),
        ];
        if key.derive(LABEL).verify(&parts, signature) {
            Ok(token)
        } else {
            Err(InvalidConsistencyToken)
        }
    }

    /// The fields of `text` and its signature, unchecked (for clients and
    /// tests; the query API uses [`ConsistencyToken::verify`]).
    pub fn parse_unverified(text: &str) -> Result<(Self, &str), InvalidConsistencyToken> {
        let mut parts = text.splitn(5, '.');
        let (Some(PREFIX), Some(aggregate), Some(version), Some(signature), Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(InvalidConsistencyToken);
        };
        let aggregate = AggregateType::parse(aggregate).ok_or(InvalidConsistencyToken)?;
        let digits = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
        let version = version
            .parse()
            .ok()
            .filter(|_| digits)
            .ok_or(InvalidConsistencyToken)?;
        let id = percent_decode(id).ok_or(InvalidConsistencyToken)?;
        if id.is_empty() || signature.is_empty() {
            return Err(InvalidConsistencyToken);
        }
        let token = Self {
            aggregate,
            id,
            version,
        };
        Ok((token, signature))
    }
}

/// RFC 3986 unreserved characters: safe in paths, queries and headers.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            byte if is_unreserved(byte) => {
                out.push(byte);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_secret(b"a-signing-secret-of-32-bytes-yes").unwrap()
    }

    #[test]
    fn tokens_have_the_documented_shape() {
        let order = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        let text = consistency_token(AggregateType::Order, order, 3, &key());
        assert!(text.starts_with("v2.orders.3."), "{text}");
        assert!(text.ends_with(&format!(".{order}")), "{text}");
        let text = consistency_token(AggregateType::CatalogItem, "SKU-1.a", 12, &key());
        assert!(text.starts_with("v2.catalog.12."), "{text}");
        assert!(text.ends_with(".SKU-1.a"), "{text}");
    }

    #[test]
    fn tokens_round_trip_even_for_unusual_ids() {
        for id in ["SKU-1", "a.b.c", "with space/slash", "ümlaut%"] {
            let text = consistency_token(AggregateType::Shipment, id, u64::MAX, &key());
            assert!(
                text.bytes().all(|b| is_unreserved(b) || b == b'%'),
                "{text}"
            );
            let parsed = ConsistencyToken::verify(&text, &key()).unwrap();
            assert_eq!(parsed.id, id);
            assert_eq!(parsed.version, u64::MAX);
            assert_eq!(parsed.aggregate, AggregateType::Shipment);
        }
    }

    #[test]
    fn altered_or_foreign_tokens_are_refused() {
        let order = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        let text = consistency_token(AggregateType::Order, order, 3, &key());
        let (_, signature) = ConsistencyToken::parse_unverified(&text).unwrap();
        let other = "0190a5b2-3c4d-7e8f-9a0b-000000000000";
        for forged in [
            text.replace(".3.", ".4."),
            text.replace("v2.orders", "v2.payments"),
            text.replace(order, other),
            format!("v2.orders.3.{signature}.{other}"),
            consistency_token(AggregateType::Order, order, 3, &SigningKey::development()),
        ] {
            assert_eq!(
                ConsistencyToken::verify(&forged, &key()),
                Err(InvalidConsistencyToken),
                "{forged}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let bad = [
            "",
            "v2",
            "v2.orders.3",
            "v2.orders.3.sig",
            "v2.orders.3.sig.",
            "v2.orders.3..x",
            "v1.orders.3.x",
            "v2.nope.3.sig.x",
            "v2.orders.-3.sig.x",
            "v2.orders.+3.sig.x",
            "v2.orders.99999999999999999999.sig.x",
            "v2.orders.3.sig.a%2",
            "v2.orders.3.sig.a%zz",
            "v2.orders.3.sig.a b",
            "v2.orders.3.sig.%FF",
        ];
        for token in bad {
            assert_eq!(
                ConsistencyToken::parse_unverified(token).map(|(t, _)| t),
                Err(InvalidConsistencyToken),
                "{token:?}"
            );
        }
    }
}
