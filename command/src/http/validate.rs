//! Field validation that names every offending field (`lines[1].quantity`),
//! so a client fixes a request in one round trip.

use events::domain::catalog::MAX_UNIT_PRICE_MINOR;
use events::domain::text::is_valid_text;
use events::domain::{Currency, Sku};

use super::error::{ApiError, InvalidParam};

/// The problems found so far in one request.
#[derive(Debug, Default)]
pub(super) struct Violations(Vec<InvalidParam>);

impl Violations {
    pub fn add(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.0.push(InvalidParam {
            name: name.into(),
            reason: reason.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_error(self) -> ApiError {
        ApiError::Validation(self.0)
    }

    pub fn sku(&mut self, name: &str, value: &str) -> Option<Sku> {
        match Sku::new(value) {
            Ok(sku) => Some(sku),
            Err(_) => {
                self.add(
                    name,
                    "expected 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
                );
                None
            }
        }
    }

    pub fn currency(&mut self, name: &str, value: &str) -> Option<Currency> {
        match Currency::new(value) {
            Ok(currency) => Some(currency),
            Err(e) => {
                self.add(name, e.to_string());
                None
            }
        }
    }

    /// An integer in `min..=max`, as a count of units.
    pub fn count(&mut self, name: &str, value: i64, min: u32, max: u32) -> Option<u32> {
        match u32::try_from(value) {
            Ok(count) if (min..=max).contains(&count) => Some(count),
            _ => {
                self.add(name, format!("expected an integer from {min} to {max}"));
                None
            }
        }
    }

    /// A positive amount of minor units (cents for USD, won for KRW), at
    /// most [`MAX_UNIT_PRICE_MINOR`].
    pub fn price(&mut self, name: &str, value: i64) -> Option<i64> {
        if (1..=MAX_UNIT_PRICE_MINOR).contains(&value) {
            Some(value)
        } else {
            self.add(
                name,
                format!("expected a positive integer amount of minor units, at most {MAX_UNIT_PRICE_MINOR}"),
            );
            None
        }
    }

    /// Bounded, non-blank, printable text.
    pub fn text(&mut self, name: &str, value: &str, max_chars: usize) -> bool {
        let ok = is_valid_text(value, max_chars);
        if !ok {
            self.add(
                name,
                format!("expected 1 to {max_chars} printable characters, not blank"),
            );
        }
        ok
    }
}

/// A path segment that must be a SKU; a bad one is 400, not 422, because
/// it names no resource at all.
pub(super) fn path_sku(value: &str) -> Result<Sku, ApiError> {
    Sku::new(value).map_err(|e| ApiError::InvalidPath {
        name: "sku",
        reason: e.to_string(),
    })
}

/// A path segment that must be an order id (a UUID).
pub(super) fn path_order_id(value: &str) -> Result<events::domain::OrderId, ApiError> {
    value.parse().map_err(|_| ApiError::InvalidPath {
        name: "order_id",
        reason: "expected a uuid".to_owned(),
    })
}
