//! The accounts domain: types and the rules that hold whatever the store.
//! No AWS types here.

use serde::Serialize;
use shared::auth::Principal;
pub use shared::synthetic::Records;

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
    /// Who owns it: the subject (`sub`) of the customer who opened it. Only
    /// its owner reads it, debits it or pays out of it.
    pub owner: String,
    /// The name it is held in, as the owner gave it.
    pub holder: String,
    /// The one currency it holds.
    pub currency: Currency,
    /// The balance in minor units.
    pub balance_minor: u64,
    /// When it was opened (RFC 3339).
    pub created_at: String,
    /// Customers' or synthetic (opened by the deployment's own checks):
    /// money never moves between the two.
    #[serde(skip)]
    pub records: Records,
}

/// Whose accounts a request may see and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// One owner's; `None` for the back office acting for no one.
    pub owner: Option<&'a str>,
    /// Customers' or synthetic records (see [`shared::synthetic`]).
    pub records: Records,
}

impl<'a> Scope<'a> {
    /// Every customer's accounts, and no synthetic one.
    pub const CUSTOMERS: Scope<'static> = Scope {
        owner: None,
        records: Records::Customers,
    };

    /// The accounts `principal` may touch.
    pub fn of(principal: &'a Principal) -> Self {
        Self {
            owner: principal.acting_for(),
            records: principal.records(),
        }
    }

    /// Whether `account` is in this scope: of these records, and the
    /// owner's when one is named. An account outside it is, to the caller,
    /// no account.
    pub fn sees(&self, account: &Account) -> bool {
        account.records == self.records && self.owner.is_none_or(|owner| owner == account.owner)
    }
}

/// Which way money moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// The subject opening it, who will own it.
    pub owner: String,
    /// Synthetic when the owner is one of the deployment's machine clients.
    pub records: Records,
    /// The name it is held in (trimmed, 1 to 200 characters).
    pub holder: String,
    /// Its currency.
    pub currency: Currency,
}

impl NewAccount {
    /// Validates the fields of an open request by `owner`, whose accounts are `records`.
    pub fn parse(owner: &str, records: Records, holder: &str, currency: &str) -> Result<Self, DomainError> {
        let holder = holder.trim();
        if holder.is_empty() || holder.chars().count() > 200 {
            return Err(DomainError::invalid("holder", "expected 1 to 200 characters"));
        }
        Ok(Self {
            owner: owner.to_owned(),
            records,
            holder: holder.to_owned(),
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

/// A validated transfer between two accounts of this ledger: both legs
/// post together or neither does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// The payer, debited.
    pub from_account: AccountId,
    /// The payee, credited.
    pub to_account: AccountId,
    /// The amount in minor units, at least 1.
    pub amount_minor: u64,
    /// Both accounts' currency.
    pub currency: Currency,
    /// The caller's unique reference: the same reference transfers once.
    pub reference: String,
}

impl NewTransfer {
    /// Validates a transfer request against the configured maximum amount.
    pub fn parse(
        from_account: &str,
        to_account: &str,
        amount_minor: u64,
        currency: &str,
        reference: &str,
        max_amount_minor: u64,
    ) -> Result<Self, DomainError> {
        let from = account_field("from_account", from_account)?;
        let to = account_field("to_account", to_account)?;
        if from == to {
            return Err(DomainError::invalid(
                "to_account",
                "expected an account other than from_account",
            ));
        }
        let posting = Posting::parse(Direction::Debit, amount_minor, currency, reference, max_amount_minor)?;
        Ok(Self {
            from_account: from,
            to_account: to,
            amount_minor: posting.amount_minor,
            currency: posting.currency,
            reference: posting.reference,
        })
    }

    /// Whether `other` asks for the same movement (a replay, not a conflict).
    pub fn same_as(&self, other: &Transfer) -> bool {
        self.from_account == other.from_account
            && self.to_account == other.to_account
            && self.amount_minor == other.amount_minor
            && self.currency == other.currency
    }
}

fn account_field(field: &'static str, raw: &str) -> Result<AccountId, DomainError> {
    uuid::Uuid::parse_str(raw)
        .map(AccountId)
        .map_err(|_| DomainError::invalid(field, "expected an account id (a UUID)"))
}

/// A transfer as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// The caller's reference (the transfer's identity).
    pub reference: String,
    /// The payer.
    pub from_account: AccountId,
    /// The payee.
    pub to_account: AccountId,
    /// The amount in minor units.
    pub amount_minor: u64,
    /// The currency.
    pub currency: Currency,
    /// Applied, or cancelled before it could apply (`state`, with the legs once applied).
    #[serde(flatten)]
    pub state: TransferState,
    /// When it was recorded (RFC 3339).
    pub created_at: String,
    /// Customers' or synthetic, as both its accounts are.
    #[serde(skip)]
    pub records: Records,
}

/// What became of a transfer's reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TransferState {
    /// Both legs posted, in one transaction.
    Applied {
        /// The payer's debit.
        debit: uuid::Uuid,
        /// The payee's credit.
        credit: uuid::Uuid,
    },
    /// Cancelled before it applied: nothing moved, and nothing ever will under this reference.
    Cancelled,
}

/// What a posting is part of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// Money entering or leaving the ledger (a deposit, a withdrawal, or the
    /// reversal of one): the only postings that change the ledger's total.
    External,
    /// One leg of a transfer inside the ledger.
    Transfer {
        /// The transfer's reference.
        transfer: String,
    },
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
    /// External movement, or a leg of a transfer.
    #[serde(flatten)]
    pub origin: Origin,
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
    /// One of a transfer's accounts does not exist.
    #[error("{field}: no such account")]
    UnknownParty {
        /// `from_account` or `to_account`.
        field: &'static str,
    },
    /// One of a transfer's accounts holds another currency.
    #[error("{field} holds {account}, the transfer is in {transfer}")]
    PartyCurrency {
        /// `from_account` or `to_account`.
        field: &'static str,
        /// The account's currency.
        account: String,
        /// The transfer's currency.
        transfer: String,
    },
    /// Another owner's payee cannot receive the transfer: it holds another
    /// currency, or the credit would take it past [`MAX_BALANCE_MINOR`].
    /// Which, and so the payee's currency or balance, is theirs to know.
    #[error("to_account cannot receive this transfer")]
    PayeeCannotReceive,
    /// The transfer's reference was cancelled: it never applies.
    #[error("transfer {0} was cancelled")]
    TransferCancelled(String),
    /// A void of a posting that is a leg of a transfer: the ledger never
    /// reverses one leg alone.
    #[error("posting {reference} is a leg of transfer {transfer} and cannot be voided on its own")]
    TransferLeg {
        /// The voided reference.
        reference: String,
        /// The transfer it belongs to.
        transfer: String,
    },
    /// No transfer has this reference.
    #[error("no transfer has reference {0}")]
    NoTransfer(String),
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
    fn transfers_name_the_field_at_fault() {
        let (a, b) = (AccountId::new().to_string(), AccountId::new().to_string());
        let ok = NewTransfer::parse(&a, &b, 5, "EUR", "pay-1", 100).unwrap();
        assert_eq!(ok.to_account.to_string(), b);
        for (from, to, amount, currency, reference, field) in [
            ("x", b.as_str(), 5, "EUR", "r", "from_account"),
            (a.as_str(), "x", 5, "EUR", "r", "to_account"),
            (a.as_str(), a.as_str(), 5, "EUR", "r", "to_account"),
            (a.as_str(), b.as_str(), 0, "EUR", "r", "amount_minor"),
            (a.as_str(), b.as_str(), 101, "EUR", "r", "amount_minor"),
            (a.as_str(), b.as_str(), 5, "EURO", "r", "currency"),
            (a.as_str(), b.as_str(), 5, "EUR", "no spaces", "reference"),
        ] {
            let err = NewTransfer::parse(from, to, amount, currency, reference, 100).unwrap_err();
            assert!(
                matches!(err, DomainError::Invalid { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
    }

    /// Reversals are posted under `void#<reference>`: no caller's reference
    /// can take that name, so a caller's own posting is never read as a reversal.
    #[test]
    fn no_callers_reference_looks_like_a_reversal() {
        let reversal = crate::store::reversal_reference("c1");
        assert!(reference(&reversal).is_err(), "{reversal}");
        assert!(reference("void-c1").is_ok(), "a caller may still use the word");
    }

    #[test]
    fn holders_are_trimmed_and_bounded() {
        let new = NewAccount::parse("sub-1", Records::Customers, "  Ada  ", "GBP").unwrap();
        assert_eq!((new.owner.as_str(), new.holder.as_str()), ("sub-1", "Ada"));
        assert!(NewAccount::parse("sub-1", Records::Customers, "   ", "GBP").is_err());
        assert!(NewAccount::parse("sub-1", Records::Customers, &"x".repeat(201), "GBP").is_err());
    }
}
