//! The payments domain: a payment, its states, and the pure state machine
//! that says what happens next. No AWS, HTTP or clock here: time comes in as
//! an argument, and every outcome is an enum carrying its cause.
//!
//! A payment is one transfer in the accounts ledger, which moves both legs in
//! one transaction (so a payment is never half-made). What crosses the
//! boundary to accounts is the *call*, whose outcome may be unknown (a
//! timeout, accounts down): then the payment stays `pending` and the same
//! transfer (same reference, so it can apply only once) is tried again with
//! backoff. A payment still unknown after [`Policy::give_up_after`] is
//! `cancelling`: accounts is asked to cancel the reference, which either
//! blocks it for good (nothing moved: `failed`) or reports that it had
//! applied (`completed`). Only a definitive answer ends a payment.
//!
//! ```text
//! pending ──Transferred──▶ completed
//!    │ ──Refused─────────▶ failed
//!    │ ──Unknown─────────▶ pending (retry with backoff)
//!    └─(give up)─▶ cancelling ──Cancelled──▶ failed
//!                     │ ──Transferred──▶ completed
//!                     └ ──Unknown─────▶ cancelling (retry with backoff)
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::money::Currency;
use time::OffsetDateTime;

/// A payment's id: the idempotency key's resource id, so every request with
/// one key names one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentId(pub uuid::Uuid);

impl std::fmt::Display for PaymentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl PaymentId {
    /// Parses the `{id}` path segment.
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        uuid::Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| InvalidField::new("id", "expected a payment id (a UUID)"))
    }
}

/// An account in the accounts ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub uuid::Uuid);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Recorded; its transfer has not given a definitive answer yet.
    Pending,
    /// Its transfer's outcome stayed unknown too long; the reference is being cancelled.
    Cancelling,
    /// Money moved, both legs at once.
    Completed,
    /// No money moved, and none ever will for this payment; see the failure.
    Failed,
}

impl Status {
    /// Whether nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

/// Why accounts definitively refused a transfer. Each proves the transfer did
/// not apply: accounts checks its reference before any balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The payer's balance is short.
    InsufficientFunds,
    /// The payer's account does not exist.
    UnknownPayer,
    /// The payee's account does not exist.
    UnknownPayee,
    /// The payer's account holds another currency.
    PayerCurrency,
    /// The payee's account holds another currency.
    PayeeCurrency,
    /// The credit would take the payee past the largest balance.
    PayeeLimit,
    /// Another customer's payee cannot receive the payment (accounts does
    /// not say why: the payee's currency and balance are theirs).
    PayeeCannotReceive,
    /// The payment's reference is taken by a different movement.
    ReferenceConflict,
}

impl Refusal {
    /// The request field the refusal is about.
    pub fn field(self) -> &'static str {
        match self {
            Refusal::InsufficientFunds | Refusal::PayeeLimit => "amount_minor",
            Refusal::UnknownPayer | Refusal::PayerCurrency => "from_account",
            Refusal::UnknownPayee | Refusal::PayeeCurrency | Refusal::PayeeCannotReceive => "to_account",
            Refusal::ReferenceConflict => "reference",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::InsufficientFunds => "the payer's balance is too low",
            Refusal::UnknownPayer => "the payer's account does not exist",
            Refusal::UnknownPayee => "the payee's account does not exist",
            Refusal::PayerCurrency => "the payer's account holds another currency",
            Refusal::PayeeCurrency => "the payee's account holds another currency",
            Refusal::PayeeLimit => "the payee's account cannot receive this amount",
            Refusal::PayeeCannotReceive => "the payee's account cannot receive this payment",
            Refusal::ReferenceConflict => "the payment's ledger reference is taken",
        })
    }
}

/// Why a call to accounts gave no definitive answer. Says what kind of
/// failure it was, never where (no host, URL or library message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    /// No answer within the call's budget.
    Timeout,
    /// No connection could be made.
    Unreachable,
    /// Accounts answered with a server error.
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// Accounts throttled the call (429).
    Throttled,
    /// The account was busy with concurrent postings (409 `busy`).
    Busy,
    /// Accounts refused the call for a reason that says nothing about the
    /// transfer (the service credential, a validation of its own).
    Rejected {
        /// The HTTP status.
        status: u16,
    },
    /// The service credential could not be read.
    CredentialUnavailable,
    /// The invocation had no time left for the call.
    NoTime,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Timeout => f.write_str("accounts did not answer in time"),
            Cause::Unreachable => f.write_str("accounts could not be reached"),
            Cause::ServerError { status } => write!(f, "accounts answered {status}"),
            Cause::Throttled => f.write_str("accounts throttled the call"),
            Cause::Busy => f.write_str("the account was busy"),
            Cause::Rejected { status } => write!(f, "accounts rejected the call with {status}"),
            Cause::CredentialUnavailable => f.write_str("the service credential could not be read"),
            Cause::NoTime => f.write_str("no time was left for the call"),
        }
    }
}

/// What a call to accounts came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The transfer applied (now, or on an earlier try of the same reference).
    Transferred,
    /// The transfer was refused and never applies.
    Refused(Refusal),
    /// The reference is cancelled: the transfer never applies.
    Cancelled,
    /// No definitive answer.
    Unknown(Cause),
}

/// Why a payment failed (nothing moved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Failure {
    /// Accounts refused the transfer.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// Accounts gave no definitive answer within [`Policy::give_up_after`];
    /// the transfer was cancelled before it could apply.
    Abandoned {
        /// The last reason there was no answer.
        cause: Option<Cause>,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused { reason } => write!(f, "{reason}"),
            Failure::Abandoned { cause: Some(cause) } => {
                write!(f, "{cause}, so the payment was cancelled before it could move money")
            }
            Failure::Abandoned { cause: None } => f.write_str("the payment was cancelled before it could move money"),
        }
    }
}

/// What to do next for a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Ask accounts for the transfer.
    Transfer,
    /// Ask accounts to cancel the transfer's reference.
    Cancel,
    /// Nothing before this time.
    WaitUntil(OffsetDateTime),
    /// The payment is final.
    Done,
}

/// How long to keep trying, and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A payment whose transfer has no definitive answer this long after it
    /// was created is cancelled.
    pub give_up_after: Duration,
    /// The wait after the first unknown outcome; doubled after each.
    pub retry_base: Duration,
    /// The longest wait between tries.
    pub retry_max: Duration,
}

impl Policy {
    /// The wait before try number `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// A validated payment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The payer.
    pub from_account: AccountId,
    /// The payee.
    pub to_account: AccountId,
    /// The amount in minor units.
    pub amount_minor: u64,
    /// The currency.
    pub currency: Currency,
    /// The caller's reference.
    pub reference: String,
}

/// A payment and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id.
    pub id: PaymentId,
    /// Who made it: the subject (`sub`) of the customer, the only one who
    /// reads it; accounts is asked to move money out of their account only.
    pub owner: String,
    /// The payer's account.
    pub from_account: AccountId,
    /// The payee's account.
    pub to_account: AccountId,
    /// The amount in minor units.
    pub amount_minor: u64,
    /// The currency (both accounts must hold it).
    pub currency: Currency,
    /// The caller's reference.
    pub reference: String,
    /// Where it is.
    pub status: Status,
    /// Why it failed, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Calls to accounts that gave no definitive answer.
    pub attempts: u32,
    /// Why the last of them gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cause: Option<Cause>,
    /// When the next call may be made (absent once final).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Payment {
    /// A new pending payment by `owner` for a validated request, to be tried at once.
    pub fn new(id: PaymentId, owner: &str, request: &NewPayment, now: OffsetDateTime) -> Self {
        Self {
            id,
            owner: owner.to_owned(),
            from_account: request.from_account,
            to_account: request.to_account,
            amount_minor: request.amount_minor,
            currency: request.currency.clone(),
            reference: request.reference.clone(),
            status: Status::Pending,
            failure: None,
            attempts: 0,
            last_cause: None,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }

    /// The reference of its transfer in the accounts ledger.
    pub fn transfer_reference(&self) -> String {
        format!("pay-{}", self.id.0.simple())
    }

    /// Whether `request` by `owner` asks for this payment (same owner,
    /// parties, amount, currency and reference).
    pub fn is_for(&self, owner: &str, request: &NewPayment) -> bool {
        self.owner == owner
            && self.from_account == request.from_account
            && self.to_account == request.to_account
            && self.amount_minor == request.amount_minor
            && self.currency == request.currency
            && self.reference == request.reference
    }
}

/// What to do next for `payment` at `now`.
pub fn command(payment: &Payment, now: OffsetDateTime) -> Command {
    let call = match payment.status {
        Status::Completed | Status::Failed => return Command::Done,
        Status::Pending => Command::Transfer,
        Status::Cancelling => Command::Cancel,
    };
    match payment.next_attempt_at {
        Some(at) if at > now => Command::WaitUntil(at),
        _ => call,
    }
}

/// The payment after `outcome` of the call [`command`] asked for, at `now`.
/// A final payment never changes.
pub fn next(payment: &Payment, outcome: Outcome, now: OffsetDateTime, policy: &Policy) -> Payment {
    let mut next = payment.clone();
    if payment.status.is_final() {
        return next;
    }
    next.updated_at = now;
    match outcome {
        Outcome::Transferred => finish(&mut next, Status::Completed, None),
        Outcome::Refused(reason) => finish(&mut next, Status::Failed, Some(Failure::Refused { reason })),
        // Payments cancels only from `cancelling`: a pending payment whose
        // reference is cancelled met someone else's claim on it (a stale
        // copy of a payment being cancelled loses its conditional write).
        Outcome::Cancelled if payment.status == Status::Pending => finish(
            &mut next,
            Status::Failed,
            Some(Failure::Refused {
                reason: Refusal::ReferenceConflict,
            }),
        ),
        Outcome::Cancelled => finish(
            &mut next,
            Status::Failed,
            Some(Failure::Abandoned {
                cause: payment.last_cause,
            }),
        ),
        Outcome::Unknown(cause) => {
            next.attempts = payment.attempts.saturating_add(1);
            next.last_cause = Some(cause);
            let age = now - payment.created_at;
            if payment.status == Status::Pending && age >= policy.give_up_after {
                next.status = Status::Cancelling;
                next.next_attempt_at = Some(now);
            } else {
                next.next_attempt_at = Some(now + policy.backoff(next.attempts));
            }
        }
    }
    next
}

fn finish(payment: &mut Payment, status: Status, failure: Option<Failure>) {
    payment.status = status;
    payment.failure = failure;
    payment.next_attempt_at = None;
}

/// `POST /payments` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The payer's account id.
    pub from_account: String,
    /// The payee's account id.
    pub to_account: String,
    /// Amount in minor units: a positive integer.
    pub amount_minor: u64,
    /// ISO 4217 code.
    pub currency: String,
    /// The caller's reference (1 to 64 printable characters).
    pub reference: String,
}

/// A field that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidField {
    /// The field.
    pub field: &'static str,
    /// What was expected.
    pub message: String,
}

impl InvalidField {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl PaymentRequest {
    /// Validates every field; the first bad one is named.
    pub fn validate(&self, max_amount_minor: u64) -> Result<NewPayment, InvalidField> {
        let account = |field: &'static str, raw: &str| {
            uuid::Uuid::parse_str(raw)
                .map(AccountId)
                .map_err(|_| InvalidField::new(field, "expected an account id (a UUID)"))
        };
        let from_account = account("from_account", &self.from_account)?;
        let to_account = account("to_account", &self.to_account)?;
        if from_account == to_account {
            return Err(InvalidField::new(
                "to_account",
                "expected an account other than from_account",
            ));
        }
        if self.amount_minor == 0 || self.amount_minor > max_amount_minor {
            return Err(InvalidField::new(
                "amount_minor",
                format!("expected an integer amount in minor units from 1 to {max_amount_minor}"),
            ));
        }
        let currency = Currency::parse(&self.currency).map_err(|e| InvalidField::new("currency", e.to_string()))?;
        let reference = self.reference.trim();
        if reference.is_empty() || reference.chars().count() > 64 || reference.chars().any(char::is_control) {
            return Err(InvalidField::new("reference", "expected 1 to 64 printable characters"));
        }
        Ok(NewPayment {
            from_account,
            to_account,
            amount_minor: self.amount_minor,
            currency,
            reference: reference.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PaymentRequest {
        PaymentRequest {
            from_account: String::from("6f1c3c52-7d2f-4a53-9a55-1d0f6a1b2c3d"),
            to_account: String::from("0a8e4d3b-1c2f-4e5a-8b7c-9d0e1f2a3b4c"),
            amount_minor: 500,
            currency: String::from("EUR"),
            reference: String::from("invoice 42"),
        }
    }

    #[test]
    fn validates_every_field() {
        assert!(request().validate(1_000).is_ok());
        let cases: Vec<(PaymentRequest, &str)> = vec![
            (
                PaymentRequest {
                    from_account: "x".into(),
                    ..request()
                },
                "from_account",
            ),
            (
                PaymentRequest {
                    to_account: request().from_account,
                    ..request()
                },
                "to_account",
            ),
            (
                PaymentRequest {
                    amount_minor: 0,
                    ..request()
                },
                "amount_minor",
            ),
            (
                PaymentRequest {
                    amount_minor: 1_001,
                    ..request()
                },
                "amount_minor",
            ),
            (
                PaymentRequest {
                    currency: "EURO".into(),
                    ..request()
                },
                "currency",
            ),
            (
                PaymentRequest {
                    reference: " ".into(),
                    ..request()
                },
                "reference",
            ),
        ];
        for (case, field) in cases {
            assert_eq!(case.validate(1_000).unwrap_err().field, field);
        }
    }

    const T0: OffsetDateTime = time::macros::datetime!(2026-12-01 08:00 UTC);

    fn policy() -> Policy {
        Policy {
            give_up_after: Duration::from_secs(60),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
        }
    }

    fn pending() -> Payment {
        Payment::new(
            PaymentId(uuid::Uuid::from_u128(1)),
            "customer-1",
            &request().validate(1_000).unwrap(),
            T0,
        )
    }

    fn at(seconds: i64) -> OffsetDateTime {
        T0 + time::Duration::seconds(seconds)
    }

    fn cancelling() -> Payment {
        next(&pending(), Outcome::Unknown(Cause::Timeout), at(61), &policy())
    }

    /// Every (status, outcome) pair: the status it leads to and the failure.
    #[test]
    fn every_transition() {
        let refused = Outcome::Refused(Refusal::UnknownPayee);
        let unknown = Outcome::Unknown(Cause::ServerError { status: 503 });
        let cases: [(Payment, Outcome, Status, Option<Failure>); 8] = [
            (pending(), Outcome::Transferred, Status::Completed, None),
            (
                pending(),
                refused,
                Status::Failed,
                Some(Failure::Refused {
                    reason: Refusal::UnknownPayee,
                }),
            ),
            (pending(), unknown, Status::Pending, None),
            (
                pending(),
                Outcome::Cancelled,
                Status::Failed,
                Some(Failure::Refused {
                    reason: Refusal::ReferenceConflict,
                }),
            ),
            (cancelling(), Outcome::Transferred, Status::Completed, None),
            (
                cancelling(),
                Outcome::Cancelled,
                Status::Failed,
                Some(Failure::Abandoned {
                    cause: Some(Cause::Timeout),
                }),
            ),
            (cancelling(), unknown, Status::Cancelling, None),
            (
                cancelling(),
                refused,
                Status::Failed,
                Some(Failure::Refused {
                    reason: Refusal::UnknownPayee,
                }),
            ),
        ];
        for (payment, outcome, status, failure) in cases {
            let after = next(&payment, outcome, at(30), &policy());
            assert_eq!(
                (after.status, after.failure),
                (status, failure),
                "{:?} + {outcome:?}",
                payment.status
            );
            assert_eq!(after.next_attempt_at.is_none(), status.is_final());
            assert_eq!(command(&after, at(30)) == Command::Done, status.is_final());
        }
    }

    #[test]
    fn final_payments_never_change() {
        for outcome in [
            Outcome::Transferred,
            Outcome::Cancelled,
            Outcome::Refused(Refusal::InsufficientFunds),
            Outcome::Unknown(Cause::Timeout),
        ] {
            for done in [
                next(&pending(), Outcome::Transferred, at(1), &policy()),
                next(&pending(), Outcome::Refused(Refusal::PayeeCurrency), at(1), &policy()),
            ] {
                assert_eq!(next(&done, outcome, at(2), &policy()), done);
                assert_eq!(command(&done, at(2)), Command::Done);
            }
        }
    }

    #[test]
    fn unknown_outcomes_back_off_then_give_up_into_a_cancel() {
        let policy = policy();
        let mut payment = pending();
        assert_eq!(command(&payment, T0), Command::Transfer);
        let mut waits = Vec::new();
        for second in [1, 2, 3, 4, 5, 6, 7] {
            payment = next(&payment, Outcome::Unknown(Cause::Unreachable), at(second), &policy);
            let Command::WaitUntil(until) = command(&payment, at(second)) else {
                panic!("a retry waits first")
            };
            waits.push((until - at(second)).whole_milliseconds());
            assert_eq!(command(&payment, until), Command::Transfer);
        }
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(payment.attempts, 7);
        assert_eq!(payment.last_cause, Some(Cause::Unreachable));
        let given_up = next(&payment, Outcome::Unknown(Cause::Timeout), at(60), &policy);
        assert_eq!(given_up.status, Status::Cancelling);
        assert_eq!(command(&given_up, at(60)), Command::Cancel);
        let still = next(&given_up, Outcome::Unknown(Cause::Busy), at(61), &policy);
        assert_eq!(still.status, Status::Cancelling, "a cancel is retried until it answers");
        assert!(matches!(command(&still, at(61)), Command::WaitUntil(_)));
    }

    #[test]
    fn failures_and_causes_say_what_without_where() {
        let texts = [
            Failure::Refused {
                reason: Refusal::UnknownPayee,
            }
            .to_string(),
            Failure::Abandoned {
                cause: Some(Cause::ServerError { status: 503 }),
            }
            .to_string(),
            Cause::Unreachable.to_string(),
        ];
        assert_eq!(texts[0], "the payee's account does not exist");
        assert_eq!(
            texts[1],
            "accounts answered 503, so the payment was cancelled before it could move money"
        );
        for text in texts {
            assert!(!text.contains("http") && !text.contains("127.0.0.1"), "{text}");
        }
    }
}
