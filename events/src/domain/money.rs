//! Money as an integer amount of minor units plus an ISO 4217 currency.
//!
//! Floating point never appears: amounts are `i64` minor units (cents for USD,
//! whole won for KRW) and every arithmetic operation is checked, refusing both
//! overflow and a mix of currencies with a typed error.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Why an amount or a currency code was refused.
#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MoneyError {
    #[error("invalid currency code {code:?}: expected three uppercase letters")]
    InvalidCurrencyCode { code: String },
    #[error("unsupported currency {code}")]
    UnknownCurrency { code: String },
    #[error("currency mismatch: expected {expected}, got {actual}")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
    #[error("money amount overflow")]
    Overflow,
}

/// Supported currencies and their minor-unit exponents from ISO 4217.
///
/// The table is deliberately closed: a currency whose exponent we do not know
/// cannot be priced or displayed correctly, so it is refused up front.
const KNOWN_CURRENCIES: &[(&str, u8)] = &[
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("TND", 3),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// A supported ISO 4217 currency. Serializes as its code, e.g. `"USD"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

impl Currency {
    /// Looks `code` up in the table of supported currencies.
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let well_formed = code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase());
        if !well_formed {
            return Err(MoneyError::InvalidCurrencyCode {
                code: code.to_owned(),
            });
        }
        KNOWN_CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|&(code, exponent)| Self { code, exponent })
            .ok_or_else(|| MoneyError::UnknownCurrency {
                code: code.to_owned(),
            })
    }

    /// The three-letter code, e.g. `"USD"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Number of decimal places of the minor unit: 2 for USD, 0 for KRW.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

// Written by hand because serde's derive would tie the `&'static str` field to
// the input's lifetime; the code is looked up in the static table instead.
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::new(&code).map_err(de::Error::custom)
    }
}

// By hand for the same reason: the schema is the closed table of codes.
impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = KNOWN_CURRENCIES.iter().map(|(code, _)| *code).collect();
        schemars::json_schema!({
            "description": "A supported ISO 4217 currency code",
            "type": "string",
            "enum": codes,
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

// The code alone is the useful identity in test failures and logs.
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An amount of money: `{"minor": 1999, "currency": "USD"}` is 19.99 USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Subtracts an amount of the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Multiplies a unit price by a quantity.
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Sums `amounts`, all of which must be in `currency`; an empty sum is zero.
    pub fn checked_sum(
        currency: Currency,
        amounts: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                expected: self.currency,
                actual: other.currency,
            })
        }
    }
}

/// Formats with the currency's exponent, e.g. `19.99 USD`, `-5 KRW`, `1.250 KWD`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let magnitude = self.minor.unsigned_abs();
        let exponent = u32::from(self.currency.exponent);
        if exponent == 0 {
            return write!(f, "{sign}{magnitude} {}", self.currency);
        }
        let scale = 10_u64.pow(exponent);
        let width = exponent as usize;
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            magnitude / scale,
            magnitude % scale,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::new("USD").unwrap()
    }

    fn eur() -> Currency {
        Currency::new("EUR").unwrap()
    }

    #[test]
    fn currencies_know_their_minor_unit_exponent() {
        let exponent = |code| Currency::new(code).unwrap().exponent();
        for code in ["USD", "EUR", "GBP", "CHF", "CAD", "AUD"] {
            assert_eq!(exponent(code), 2, "{code}");
        }
        assert_eq!(exponent("JPY"), 0);
        assert_eq!(exponent("KRW"), 0);
        assert_eq!(exponent("BHD"), 3);
        assert_eq!(exponent("KWD"), 3);
    }

    #[test]
    fn malformed_and_unknown_codes_are_refused_with_distinct_errors() {
        for bad in ["usd", "US", "USDD", "U$D", ""] {
            assert_eq!(
                Currency::new(bad),
                Err(MoneyError::InvalidCurrencyCode {
                    code: bad.to_owned()
                })
            );
        }
        assert_eq!(
            Currency::new("XXX"),
            Err(MoneyError::UnknownCurrency {
                code: "XXX".to_owned()
            })
        );
    }

    #[test]
    fn money_has_the_documented_json_shape() {
        let price = Money::new(1999, usd());
        let json = serde_json::to_value(price).unwrap();
        assert_eq!(json, serde_json::json!({"minor": 1999, "currency": "USD"}));
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), price);
        let unknown = serde_json::json!({"minor": 1, "currency": "XXX"});
        assert!(serde_json::from_value::<Money>(unknown).is_err());
    }

    #[test]
    fn arithmetic_refuses_currency_mismatch() {
        let mismatch = Err(MoneyError::CurrencyMismatch {
            expected: usd(),
            actual: eur(),
        });
        assert_eq!(
            Money::new(1, usd()).checked_add(Money::new(1, eur())),
            mismatch
        );
        assert_eq!(
            Money::new(1, usd()).checked_sub(Money::new(1, eur())),
            mismatch
        );
        let mixed = [Money::new(1, usd()), Money::new(1, eur())];
        assert_eq!(Money::checked_sum(usd(), mixed), mismatch);
    }

    #[test]
    fn arithmetic_refuses_overflow() {
        let max = Money::new(i64::MAX, usd());
        assert_eq!(
            max.checked_add(Money::new(1, usd())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        let min = Money::new(i64::MIN, usd());
        assert_eq!(
            min.checked_sub(Money::new(1, usd())),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn arithmetic_computes_exact_amounts() {
        let price = Money::new(1999, usd());
        assert_eq!(price.checked_mul(3), Ok(Money::new(5997, usd())));
        assert_eq!(price.checked_mul(0), Ok(Money::zero(usd())));
        let lines = [price, Money::new(1, usd())];
        assert_eq!(
            Money::checked_sum(usd(), lines),
            Ok(Money::new(2000, usd()))
        );
        assert_eq!(Money::checked_sum(usd(), []), Ok(Money::zero(usd())));
        assert_eq!(price.checked_sub(price), Ok(Money::zero(usd())));
    }

    #[test]
    fn display_uses_the_currency_exponent() {
        let show = |minor, code| Money::new(minor, Currency::new(code).unwrap()).to_string();
        assert_eq!(show(1999, "USD"), "19.99 USD");
        assert_eq!(show(5, "USD"), "0.05 USD");
        assert_eq!(show(-1999, "USD"), "-19.99 USD");
        assert_eq!(show(1500, "KRW"), "1500 KRW");
        assert_eq!(show(1250, "KWD"), "1.250 KWD");
        assert_eq!(show(i64::MIN, "JPY"), "-9223372036854775808 JPY");
    }
}
