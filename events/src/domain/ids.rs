//! Identifier newtypes shared by every aggregate.
//!
//! Each identifier serializes as its bare inner value (a JSON string), and
//! deserializing validates it, so a malformed id on the wire is refused at the
//! edge instead of travelling into an aggregate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest stock keeping unit accepted, in characters.
pub const MAX_SKU_CHARS: usize = 64;

/// Longest customer id accepted, in characters (a JWT `sub` fits easily).
pub const MAX_CUSTOMER_ID_CHARS: usize = 128;

/// Why a string is not a valid identifier.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IdError {
    #[error("invalid sku {value:?}: expected 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    InvalidSku { value: String },
    #[error(
        "invalid customer id: expected 1 to 128 characters, not blank, without control characters"
    )]
    InvalidCustomerId,
    #[error("invalid order id {value:?}: expected a uuid")]
    InvalidOrderId { value: String },
}

/// Stock keeping unit: the identity of a catalog item.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    /// Validates `value` as a SKU: 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if value.is_empty() || value.len() > MAX_SKU_CHARS || !value.chars().all(allowed) {
            return Err(IdError::InvalidSku { value });
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Sku> for String {
    fn from(sku: Sku) -> Self {
        sku.0
    }
}

impl FromStr for Sku {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::new(value)
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of an order, and also of its payment and shipment, which are keyed
/// by the order they belong to.
///
/// The id is derived by the command API (from the idempotency key and the
/// caller), never generated here, so the domain stays free of randomness.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl From<Uuid> for OrderId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl FromStr for OrderId {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| IdError::InvalidOrderId {
                value: value.to_owned(),
            })
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Identity of a customer: the `sub` claim of a customer's token.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(String);

impl CustomerId {
    /// Validates `value`: 1 to 128 characters, not only whitespace, and free of
    /// control characters (they would corrupt logs and headers).
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        if crate::domain::text::is_valid_text(&value, MAX_CUSTOMER_ID_CHARS) {
            Ok(Self(value))
        } else {
            Err(IdError::InvalidCustomerId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CustomerId {
    type Error = IdError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<CustomerId> for String {
    fn from(id: CustomerId) -> Self {
        id.0
    }
}

impl FromStr for CustomerId {
    type Err = IdError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::new(value)
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_accepts_the_allowed_alphabet_up_to_64_characters() {
        assert!(Sku::new("ABC-123_x.y").is_ok());
        assert!(Sku::new("a".repeat(64)).is_ok());
    }

    #[test]
    fn sku_rejects_empty_long_and_foreign_characters() {
        for bad in ["", "has space", "sl/ash", "ümlaut", &"a".repeat(65)] {
            assert_eq!(
                Sku::new(bad),
                Err(IdError::InvalidSku {
                    value: bad.to_owned()
                })
            );
        }
    }

    #[test]
    fn sku_serializes_as_a_bare_string_and_validates_on_the_way_in() {
        let sku = Sku::new("SKU-1").unwrap();
        assert_eq!(serde_json::to_string(&sku).unwrap(), r#""SKU-1""#);
        assert_eq!(serde_json::from_str::<Sku>(r#""SKU-1""#).unwrap(), sku);
        assert!(serde_json::from_str::<Sku>(r#""bad sku""#).is_err());
    }

    #[test]
    fn customer_id_rejects_blank_long_and_control_characters() {
        assert!(CustomerId::new("user-42").is_ok());
        assert!(CustomerId::new("c".repeat(128)).is_ok());
        for bad in ["", "   ", "tab\there", &"c".repeat(129)] {
            assert_eq!(CustomerId::new(bad), Err(IdError::InvalidCustomerId));
        }
        assert!(serde_json::from_str::<CustomerId>(r#""  ""#).is_err());
    }

    #[test]
    fn order_id_round_trips_through_text_and_json() {
        let uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        let id = OrderId::from_uuid(uuid);
        assert_eq!(id.to_string().parse::<OrderId>(), Ok(id));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{uuid}\""));
        assert!(matches!(
            "nope".parse::<OrderId>(),
            Err(IdError::InvalidOrderId { .. })
        ));
    }
}
