//! Money types every service shares. Amounts are integer minor units (`u64`
//! cents); no float ever holds an amount.

use serde::{Deserialize, Serialize};

/// An active ISO 4217 currency code in upper case, e.g. `EUR`. Deserializing
/// checks the code as [`Currency::parse`] does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency(String);

impl TryFrom<String> for Currency {
    type Error = NotACurrency;

    fn try_from(raw: String) -> Result<Self, NotACurrency> {
        Self::parse(&raw)
    }
}

/// ISO 4217 codes that name no money: "no currency" and the testing code.
const NOT_MONEY: &[&str] = &["XXX", "XTS"];

/// A string that is not an active ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an ISO 4217 currency code such as EUR, got {0:?}")]
pub struct NotACurrency(pub String);

impl Currency {
    /// Accepts only active ISO 4217 codes, in upper case, that denote money:
    /// not `XXX` ("no currency") nor `XTS` (reserved for testing).
    pub fn parse(raw: &str) -> Result<Self, NotACurrency> {
        match iso_currency::Currency::from_code(raw) {
            Some(currency) if currency.code() == raw && !NOT_MONEY.contains(&raw) => Ok(Self(raw.to_owned())),
            _ => Err(NotACurrency(raw.to_owned())),
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Currency;

    #[test]
    fn only_upper_case_iso_codes() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        for bad in ["eur", "EURO", "XYZ", "", "€", "XXX", "XTS"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
            assert!(
                serde_json::from_value::<Currency>(serde_json::json!(bad)).is_err(),
                "{bad}"
            );
        }
        assert_eq!(serde_json::from_str::<Currency>(r#""GBP""#).unwrap().as_str(), "GBP");
    }
}
