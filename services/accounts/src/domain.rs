//! The accounts domain: types and the rules that hold whatever the store.
//! No AWS types here.

use serde::Serialize;

/// An account's id (a UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(pub uuid::Uuid);

impl AccountId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// Parses the `{id}` path segment.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        uuid::Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| DomainError::invalid("id", "expected an account id (a UUID)"))
    }
}

impl Default for AccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub use shared::money::Currency;

/// Parses a currency field, naming it when it is not an ISO 4217 code.
pub fn currency(field: &'static str, raw: &str) -> Result<Currency, DomainError> {
    Currency::parse(raw).map_err(|e| DomainError::invalid(field, e.to_string()))
}

/// Validates a caller's posting reference: 1 to 64 characters of
/// `A-Z a-z 0-9 - _ . :`.
pub fn reference(raw: &str) -> Result<String, DomainError> {
    let ok =
        !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(DomainError::invalid(
            "reference",
            "expected 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'",
        ))
    }
}

/// An account as stored. Balances are integer minor units (cents) and never negative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Who owns it.
    pub owner: String,
    /// The one currency it holds.
    pub currency: Currency,
    /// The balance in minor units.
    pub balance_minor: u64,
    /// When it was opened (RFC 3339).
    pub created_at: String,
}

/// Which way money moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Money in.
    Credit,
    /// Money out; never below zero.
    Debit,
}

impl Direction {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        }
    }

    /// Parses the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "credit" => Some(Direction::Credit),
            "debit" => Some(Direction::Debit),
            _ => None,
        }
    }
}

/// A validated request to open an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Who owns it (trimmed, 1 to 200 characters).
    pub owner: String,
    /// Its currency.
    pub currency: Currency,
}

impl NewAccount {
    /// Validates the fields of an open request.
    pub fn parse(owner: &str, currency: &str) -> Result<Self, DomainError> {
        let owner = owner.trim();
        if owner.is_empty() || owner.chars().count() > 200 {
            return Err(DomainError::invalid("owner", "expected 1 to 200 characters"));
        }
        Ok(Self {
            owner: owner.to_owned(),
            currency: self::currency("currency", currency)?,
        })
    }
}

/// A validated credit or debit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// Credit or debit.
    pub direction: Direction,
    /// The amount in minor units, at least 1.
    pub amount_minor: u64,
    /// Must match the account's currency.
    pub currency: Currency,
    /// The caller's unique reference: posting the same reference again
    /// returns the first transaction instead of moving money twice.
    pub reference: String,
}

impl Posting {
    /// Validates a posting against the configured maximum amount.
    pub fn parse(
        direction: Direction,
        amount_minor: u64,
        currency: &str,
        reference: &str,
        max_amount_minor: u64,
    ) -> Result<Self, DomainError> {
        if amount_minor == 0 || amount_minor > max_amount_minor {
            return Err(DomainError::invalid(
                "amount_minor",
                format!("expected an integer amount in minor units from 1 to {max_amount_minor}"),
            ));
        }
        let currency = self::currency("currency", currency)?;
        let reference = self::reference(reference)?;
        Ok(Self {
            direction,
            amount_minor,
            currency,
            reference,
        })
    }
}

/// A posted credit or debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transaction {
    /// Its id (a time-ordered UUID).
    pub id: uuid::Uuid,
    /// The account it moved money on.
    pub account_id: AccountId,
    /// Credit or debit.
    pub direction: Direction,
    /// The amount in minor units.
    pub amount_minor: u64,
    /// The currency.
    pub currency: Currency,
    /// The caller's reference.
    pub reference: String,
    /// When it was posted (RFC 3339).
    pub created_at: String,
}

/// The largest balance an account may hold; DynamoDB numbers go further, but
/// every client must be able to read the balance as a signed 64-bit integer.
pub const MAX_BALANCE_MINOR: u64 = i64::MAX as u64;

/// Why a request cannot be done, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// No such account.
    #[error("account {0} does not exist")]
    NotFound(AccountId),
    /// A debit larger than the balance.
    #[error("insufficient funds: balance {balance_minor}, debit {amount_minor}")]
    InsufficientFunds {
        /// The balance when the debit was refused.
        balance_minor: u64,
        /// The refused amount.
        amount_minor: u64,
    },
    /// The posting's currency is not the account's.
    #[error("account holds {account}, posting is in {posting}")]
    CurrencyMismatch {
        /// The account's currency.
        account: String,
        /// The posting's currency.
        posting: String,
    },
    /// A credit that would take the balance past [`MAX_BALANCE_MINOR`].
    #[error("credit would take the balance past {MAX_BALANCE_MINOR}")]
    BalanceLimit,
    /// The reference was used before for a different posting.
    #[error("reference {0} was already used for a different posting")]
    ReferenceConflict(String),
}

impl DomainError {
    /// An invalid field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_check_amount_and_reference() {
        let ok = Posting::parse(Direction::Debit, 1, "EUR", "pay-1:a_b.c", 100).unwrap();
        assert_eq!(ok.amount_minor, 1);
        for (amount, reference, field) in [
            (0, "r", "amount_minor"),
            (101, "r", "amount_minor"),
            (5, "", "reference"),
            (5, "has space", "reference"),
        ] {
            let err = Posting::parse(Direction::Credit, amount, "EUR", reference, 100).unwrap_err();
            assert!(
                matches!(err, DomainError::Invalid { field: f, .. } if f == field),
                "{err}"
            );
        }
        let long = "r".repeat(65);
        assert!(Posting::parse(Direction::Credit, 5, "EUR", &long, 100).is_err());
    }

    #[test]
    fn owners_are_trimmed_and_bounded() {
        assert_eq!(NewAccount::parse("  Ada  ", "GBP").unwrap().owner, "Ada");
        assert!(NewAccount::parse("   ", "GBP").is_err());
        assert!(NewAccount::parse(&"x".repeat(201), "GBP").is_err());
    }
}
