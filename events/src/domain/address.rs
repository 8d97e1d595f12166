//! Shipping address, shared by the order (where the customer gives it) and the
//! shipment (where the carrier uses it).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::text::is_valid_text;

/// A postal address. `country` is an ISO 3166-1 alpha-2 code such as `"DE"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

/// The field of an [`Address`] that failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddressField {
    Name,
    Line1,
    City,
    PostalCode,
    Country,
}

impl AddressField {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Line1 => "line1",
            Self::City => "city",
            Self::PostalCode => "postal_code",
            Self::Country => "country",
        }
    }
}

impl fmt::Display for AddressField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Address {
    pub const MAX_NAME_CHARS: usize = 200;
    pub const MAX_LINE1_CHARS: usize = 200;
    pub const MAX_CITY_CHARS: usize = 100;
    pub const MAX_POSTAL_CODE_CHARS: usize = 20;

    /// Checks every field and names the first one that is invalid: text fields
    /// must be non-blank, printable and bounded; the country must be two
    /// uppercase ASCII letters. Whether a carrier serves the country is the
    /// carrier's decision, not a validation rule.
    pub fn validate(&self) -> Result<(), AddressField> {
        let checks = [
            (AddressField::Name, &self.name, Self::MAX_NAME_CHARS),
            (AddressField::Line1, &self.line1, Self::MAX_LINE1_CHARS),
            (AddressField::City, &self.city, Self::MAX_CITY_CHARS),
            (
                AddressField::PostalCode,
                &self.postal_code,
                Self::MAX_POSTAL_CODE_CHARS,
            ),
        ];
        for (field, value, max) in checks {
            if !is_valid_text(value, max) {
                return Err(field);
            }
        }
        let country_ok =
            self.country.len() == 2 && self.country.bytes().all(|b| b.is_ascii_uppercase());
        if country_ok {
            Ok(())
        } else {
            Err(AddressField::Country)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Address {
        Address {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
        }
    }

    #[test]
    fn a_complete_address_is_valid() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn each_text_field_must_be_non_blank_and_bounded() {
        type Field = fn(&mut Address) -> &mut String;
        let cases: [(AddressField, Field, usize); 4] = [
            (AddressField::Name, |a| &mut a.name, Address::MAX_NAME_CHARS),
            (
                AddressField::Line1,
                |a| &mut a.line1,
                Address::MAX_LINE1_CHARS,
            ),
            (AddressField::City, |a| &mut a.city, Address::MAX_CITY_CHARS),
            (
                AddressField::PostalCode,
                |a| &mut a.postal_code,
                Address::MAX_POSTAL_CODE_CHARS,
            ),
        ];
        for (field, access, max) in cases {
            for bad in [String::new(), "  ".to_owned(), "x".repeat(max + 1)] {
                let mut address = valid();
                *access(&mut address) = bad;
                assert_eq!(address.validate(), Err(field));
            }
            let mut longest = valid();
            *access(&mut longest) = "x".repeat(max);
            assert_eq!(longest.validate(), Ok(()));
        }
    }

    #[test]
    fn country_must_be_two_uppercase_letters() {
        for bad in ["", "G", "gb", "GBR", "G1", "ÄB"] {
            let address = Address {
                country: bad.into(),
                ..valid()
            };
            assert_eq!(address.validate(), Err(AddressField::Country), "{bad}");
        }
        let refused_by_carrier_but_valid = Address {
            country: "ZZ".into(),
            ..valid()
        };
        assert_eq!(refused_by_carrier_but_valid.validate(), Ok(()));
    }
}
