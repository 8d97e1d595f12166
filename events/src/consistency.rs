//! Consistency tokens: what a command answer hands the client so that a later
//! read on the query API can wait until the views reflect the write.
//!
//! Format (version 1), a URL- and header-safe ASCII string:
//!
//! ```text
//! v1.<aggregate>.<version>.<aggregate id>
//! v1.orders.3.0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b
//! v1.catalog.12.SKU-1
//! ```
//!
//! `<aggregate>` is `AggregateType::as_str` (the topic name: `catalog`,
//! `orders`, `payments`, `shipments`, `sagas`), `<version>` the aggregate's sequence
//! number after the command (decimal), and the id comes last so it may itself
//! contain dots. Bytes of the id outside `A-Z a-z 0-9 - . _ ~` are
//! percent-encoded (`%2F`); SKUs and UUIDs never need it. Clients treat the
//! token as opaque; the query API parses it with [`ConsistencyToken::parse`]
//! and waits until the view of that aggregate has reached `version`.

use std::fmt;
use std::str::FromStr;

use crate::envelope::AggregateType;

const PREFIX: &str = "v1";

/// A parsed consistency token: "the view of this aggregate at this version".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyToken {
    pub aggregate: AggregateType,
    pub id: String,
    pub version: u64,
}

/// The token could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid consistency token")]
pub struct InvalidConsistencyToken;

/// The token for `aggregate` `id` at `version`, as command answers carry it.
pub fn consistency_token(aggregate: AggregateType, id: &str, version: u64) -> String {
    ConsistencyToken {
        aggregate,
        id: id.to_owned(),
        version,
    }
    .to_string()
}

impl ConsistencyToken {
    pub fn parse(token: &str) -> Result<Self, InvalidConsistencyToken> {
        let mut parts = token.splitn(4, '.');
        let (Some(PREFIX), Some(aggregate), Some(version), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
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
        if id.is_empty() {
            return Err(InvalidConsistencyToken);
        }
        Ok(Self {
            aggregate,
            id,
            version,
        })
    }
}

impl FromStr for ConsistencyToken {
    type Err = InvalidConsistencyToken;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        Self::parse(token)
    }
}

impl fmt::Display for ConsistencyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}.{}.{}.", self.aggregate.as_str(), self.version)?;
        for byte in self.id.bytes() {
            if is_unreserved(byte) {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "%{byte:02X}")?;
            }
        }
        Ok(())
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

    #[test]
    fn tokens_have_the_documented_shape() {
        let order = "0190a5b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        assert_eq!(
            consistency_token(AggregateType::Order, order, 3),
            format!("v1.orders.3.{order}")
        );
        assert_eq!(
            consistency_token(AggregateType::CatalogItem, "SKU-1.a", 12),
            "v1.catalog.12.SKU-1.a"
        );
    }

    #[test]
    fn tokens_round_trip_even_for_unusual_ids() {
        for id in ["SKU-1", "a.b.c", "with space/slash", "ümlaut%"] {
            let text = consistency_token(AggregateType::Shipment, id, u64::MAX);
            assert!(
                text.bytes().all(|b| is_unreserved(b) || b == b'%'),
                "{text}"
            );
            let parsed = ConsistencyToken::parse(&text).unwrap();
            assert_eq!(parsed.id, id);
            assert_eq!(parsed.version, u64::MAX);
            assert_eq!(parsed.aggregate, AggregateType::Shipment);
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let bad = [
            "",
            "v1",
            "v1.orders.3",
            "v1.orders.3.",
            "v2.orders.3.x",
            "v1.nope.3.x",
            "v1.orders.-3.x",
            "v1.orders.+3.x",
            "v1.orders.99999999999999999999.x",
            "v1.orders.3.a%2",
            "v1.orders.3.a%zz",
            "v1.orders.3.a b",
            "v1.orders.3.%FF",
        ];
        for token in bad {
            assert_eq!(
                ConsistencyToken::parse(token),
                Err(InvalidConsistencyToken),
                "{token:?}"
            );
        }
    }
}
