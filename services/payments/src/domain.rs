//! The payments domain: a payment, its states, the steps it took, and the
//! rules for what comes next. No AWS or HTTP types.

use serde::{Deserialize, Serialize};
use shared::money::Currency;

/// Where a payment is.
///
/// `pending` → `debited` → `completed`; a refused debit → `failed`; a
/// refused or unanswered credit (or an unanswered debit) → `compensating` →
/// `failed` once every posting made for it is voided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Recorded; the debit is next.
    Pending,
    /// The payer was debited; the credit is next.
    Debited,
    /// Undoing whatever was posted, before ending failed.
    Compensating,
    /// Money moved.
    Completed,
    /// No money moved (or all of it was moved back); see the reason.
    Failed,
}

impl Status {
    /// Whether nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Failed)
    }
}

/// A call the saga makes to accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Debit the payer.
    Debit,
    /// Credit the payee.
    Credit,
    /// Void the credit reference on the payee.
    VoidCredit,
    /// Void the debit reference on the payer.
    VoidDebit,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Succeeded,
    /// Definitively refused (a 4xx from accounts).
    Refused,
    /// No definitive answer (5xx, timeout, connection failure).
    Unknown,
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What was attempted.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// What accounts said, or what went wrong.
    pub detail: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A payment and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Its id.
    pub id: uuid::Uuid,
    /// The payer's account id.
    pub from_account: uuid::Uuid,
    /// The payee's account id.
    pub to_account: uuid::Uuid,
    /// The amount in minor units.
    pub amount_minor: u64,
    /// The currency (both accounts must hold it).
    pub currency: String,
    /// The caller's reference.
    pub reference: String,
    /// Where it is.
    pub status: Status,
    /// Why it failed, once it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Every call made for it, in order.
    pub steps: Vec<Step>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// Now, RFC 3339.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Payment {
    /// A new pending payment for a validated request.
    pub fn new(request: &NewPayment) -> Self {
        let at = now();
        Self {
            id: uuid::Uuid::now_v7(),
            from_account: request.from_account,
            to_account: request.to_account,
            amount_minor: request.amount_minor,
            currency: request.currency.as_str().to_owned(),
            reference: request.reference.clone(),
            status: Status::Pending,
            failure_reason: None,
            steps: Vec::new(),
            created_at: at.clone(),
            updated_at: at,
        }
    }

    /// The reference of its debit on the payer's account.
    pub fn debit_reference(&self) -> String {
        format!("pay-{}-debit", self.id.simple())
    }

    /// The reference of its credit on the payee's account.
    pub fn credit_reference(&self) -> String {
        format!("pay-{}-credit", self.id.simple())
    }

    /// Whether a credit was ever attempted (so it may need voiding).
    pub fn credit_attempted(&self) -> bool {
        self.steps.iter().any(|s| s.action == Action::Credit)
    }

    /// Records a step and the status it leads to.
    pub fn record(&mut self, action: Action, outcome: Outcome, detail: impl Into<String>, next: Status) {
        let detail = detail.into();
        if matches!(next, Status::Compensating | Status::Failed) && self.failure_reason.is_none() {
            self.failure_reason = Some(format!("{}: {detail}", describe(action, outcome)));
        }
        self.steps.push(Step {
            action,
            outcome,
            detail,
            at: now(),
        });
        self.status = next;
        self.updated_at = now();
    }
}

fn describe(action: Action, outcome: Outcome) -> &'static str {
    match (action, outcome) {
        (Action::Debit, Outcome::Refused) => "debit refused",
        (Action::Debit, _) => "debit outcome unknown",
        (Action::Credit, Outcome::Refused) => "credit refused",
        (Action::Credit, _) => "credit outcome unknown",
        (Action::VoidCredit | Action::VoidDebit, _) => "compensation failed",
    }
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

/// A validated payment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The payer.
    pub from_account: uuid::Uuid,
    /// The payee.
    pub to_account: uuid::Uuid,
    /// The amount.
    pub amount_minor: u64,
    /// The currency.
    pub currency: Currency,
    /// The caller's reference.
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

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        message: message.into(),
    }
}

impl PaymentRequest {
    /// Checks every field against the configured maximum amount.
    pub fn validate(&self, max_amount_minor: u64) -> Result<NewPayment, InvalidField> {
        let account = |field, raw: &str| {
            uuid::Uuid::parse_str(raw).map_err(|_| invalid(field, "expected an account id (a UUID)"))
        };
        let from_account = account("from_account", &self.from_account)?;
        let to_account = account("to_account", &self.to_account)?;
        if from_account == to_account {
            return Err(invalid("to_account", "expected a different account than from_account"));
        }
        if self.amount_minor == 0 || self.amount_minor > max_amount_minor {
            return Err(invalid(
                "amount_minor",
                format!("expected an integer amount in minor units from 1 to {max_amount_minor}"),
            ));
        }
        let currency = Currency::parse(&self.currency).map_err(|e| invalid("currency", e.to_string()))?;
        let reference = self.reference.trim();
        if reference.is_empty() || reference.chars().count() > 64 || reference.chars().any(char::is_control) {
            return Err(invalid("reference", "expected 1 to 64 printable characters"));
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

    #[test]
    fn the_first_failure_is_the_reason() {
        let mut payment = Payment::new(&request().validate(1_000).unwrap());
        payment.record(Action::Debit, Outcome::Succeeded, "ok", Status::Debited);
        payment.record(Action::Credit, Outcome::Refused, "account closed", Status::Compensating);
        payment.record(Action::VoidDebit, Outcome::Succeeded, "reversed", Status::Failed);
        assert_eq!(
            payment.failure_reason.as_deref(),
            Some("credit refused: account closed")
        );
        assert!(payment.credit_attempted());
        assert_eq!(payment.steps.len(), 3);
    }
}
