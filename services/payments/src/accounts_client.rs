//! The only way payments touches money: the accounts service's transfer API,
//! behind the [`Ledger`] port the runner uses.
//!
//! Each call is one attempt bounded by the time the caller gives it; the
//! state machine (`domain`) decides whether and when to try again. An answer
//! is read as accounts' typed problem (`type` URN and the field it names),
//! never by matching prose, and what is kept of a failure is a
//! [`Cause`] — the kind of failure, never a host, URL or library message.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::credentials::TokenSource;
use tracing::Instrument;

use crate::domain::{AccountId, Cause, Outcome, Payment, Refusal};

/// One call's limits and the id that ties it to the request it serves.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The longest the call may take.
    pub budget: Duration,
    /// The correlation id passed to accounts.
    pub correlation: &'a str,
}

/// Whether an account is the customer's, as far as accounts could say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// It is theirs.
    Owned,
    /// It is not theirs, or does not exist (accounts does not tell them apart).
    NotOwned,
    /// Accounts gave no answer; the transfer will check it.
    Unknown(Cause),
}

/// What payments needs of the ledger.
pub trait Ledger: Send + Sync {
    /// Moves the payment's amount from payer to payee under its transfer
    /// reference (applies at most once however often it is asked).
    fn transfer(&self, payment: &Payment, context: CallContext<'_>) -> impl Future<Output = Outcome> + Send;
    /// Cancels the payment's transfer reference unless it applied.
    fn cancel(&self, payment: &Payment, context: CallContext<'_>) -> impl Future<Output = Outcome> + Send;
}

/// A client for the accounts API.
#[derive(Clone)]
pub struct AccountsClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<TokenSource>,
    timeout: Duration,
}

/// The body of `POST /transfers` and `POST /transfers/cancellations` (accounts' `TransferRequest`).
#[derive(Debug, Clone, Serialize)]
struct TransferBody<'a> {
    from_account: String,
    to_account: String,
    amount_minor: u64,
    currency: &'a str,
    reference: String,
}

/// What payments reads of a transfer in accounts' answer.
#[derive(Debug, Deserialize)]
struct TransferView {
    state: TransferState,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TransferState {
    Applied,
    Cancelled,
}

/// `POST /transfers`' success body.
#[derive(Debug, Deserialize)]
struct Transferred {
    transfer: TransferView,
}

/// What payments reads of accounts' problem+json.
#[derive(Debug, Deserialize)]
struct ProblemView {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    errors: Vec<FieldView>,
}

#[derive(Debug, Deserialize)]
struct FieldView {
    field: String,
}

impl ProblemView {
    fn names(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }
}

/// Which call.
#[derive(Debug, Clone, Copy)]
enum Call {
    Transfer,
    Cancel,
}

impl AccountsClient {
    /// A client for `base` (e.g. `https://api.example.com/prod`) over
    /// `http`, calling as payments with `tokens` (its machine client's,
    /// with the scope `accounts/service`); no call waits longer than `timeout`.
    pub fn new(http: reqwest::Client, base: &str, timeout: Duration, tokens: Arc<TokenSource>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
            tokens,
        }
    }

    async fn call(&self, call: Call, payment: &Payment, context: CallContext<'_>) -> Outcome {
        let path = match call {
            Call::Transfer => "/transfers",
            Call::Cancel => "/transfers/cancellations",
        };
        let body = TransferBody {
            from_account: payment.from_account.to_string(),
            to_account: payment.to_account.to_string(),
            amount_minor: payment.amount_minor,
            currency: payment.currency.as_str(),
            reference: payment.transfer_reference(),
        };
        // Accounts enforces that the payer's account is the customer's.
        match self
            .send(reqwest::Method::POST, path, Some(&body), &payment.owner, context)
            .await
        {
            Ok((status, bytes)) => {
                let outcome = read(call, status, &bytes);
                if let Outcome::Unknown(cause) = outcome {
                    tracing::warn!(%cause, status = status.as_u16(), "accounts call without a definitive answer");
                }
                outcome
            }
            Err(cause) => Outcome::Unknown(cause),
        }
    }

    /// One call to accounts at `path` on behalf of `owner`, with payments'
    /// own token, the correlation id and the trace header, within the
    /// call's budget; its answer, or why there is none (recorded on the
    /// call's subsegment as a fault). A token accounts refuses (401) is
    /// forgotten, so the next attempt fetches a new one.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&TransferBody<'_>>,
        owner: &str,
        context: CallContext<'_>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), Cause> {
        let timeout = self.timeout.min(context.budget);
        if timeout.is_zero() {
            return Err(Cause::NoTime);
        }
        let started = std::time::Instant::now();
        let token = self.tokens.token(timeout).await.map_err(|err| {
            tracing::warn!(error = %err, "payments' token unavailable");
            Cause::CredentialUnavailable
        })?;
        let timeout = timeout.saturating_sub(started.elapsed());
        if timeout.is_zero() {
            return Err(Cause::NoTime);
        }
        let url = format!("{}{path}", self.base);
        let span = shared::xray::outgoing("accounts", method.as_str(), &url);
        let mut request = self
            .http
            .request(method, &url)
            .timeout(timeout)
            .bearer_auth(token.expose())
            .header(shared::auth::ON_BEHALF_OF_HEADER, owner)
            .header(shared::http::CORRELATION_ID_HEADER, context.correlation);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(trace) = shared::xray::header(&span) {
            request = request.header(shared::xray::TRACE_HEADER, trace);
        }
        let answer = async {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes.to_vec()))
        }
        .instrument(span.clone())
        .await;
        match answer {
            Ok((status, bytes)) => {
                span.record("http.response.status_code", status.as_u16());
                if status == reqwest::StatusCode::UNAUTHORIZED {
                    self.tokens.forget(&token).await;
                }
                if !status.is_success() {
                    span.record("otel.status_code", "error");
                }
                Ok((status, bytes))
            }
            Err(err) => {
                let cause = if err.is_timeout() {
                    Cause::Timeout
                } else {
                    Cause::Unreachable
                };
                // The log keeps the whole error; the payment keeps its kind.
                tracing::warn!(error = %err, %cause, "accounts call failed");
                shared::xray::fail(&span, &cause);
                Err(cause)
            }
        }
    }
}

/// Reads accounts' answer to one call.
fn read(call: Call, status: reqwest::StatusCode, body: &[u8]) -> Outcome {
    if status.is_success() {
        let state = match call {
            Call::Transfer => serde_json::from_slice::<Transferred>(body).map(|t| t.transfer.state),
            Call::Cancel => serde_json::from_slice::<TransferView>(body).map(|t| t.state),
        };
        return match state {
            Ok(TransferState::Applied) => Outcome::Transferred,
            Ok(TransferState::Cancelled) => Outcome::Cancelled,
            // A 2xx payments cannot read says nothing definite.
            Err(_) => Outcome::Unknown(Cause::Rejected {
                status: status.as_u16(),
            }),
        };
    }
    let problem: Option<ProblemView> = serde_json::from_slice(body).ok();
    let kind = problem.as_ref().map_or("", |p| p.kind.as_str());
    let party = |payer, payee| {
        problem
            .as_ref()
            .map(|p| if p.names("from_account") { payer } else { payee })
    };
    let refusal = match kind {
        "urn:problem:insufficient-funds" => Some(Refusal::InsufficientFunds),
        "urn:problem:unknown-account" => party(Refusal::UnknownPayer, Refusal::UnknownPayee),
        "urn:problem:currency-mismatch" => party(Refusal::PayerCurrency, Refusal::PayeeCurrency),
        "urn:problem:balance-limit" => Some(Refusal::PayeeLimit),
        "urn:problem:payee-cannot-receive" => Some(Refusal::PayeeCannotReceive),
        "urn:problem:reference-conflict" => Some(Refusal::ReferenceConflict),
        "urn:problem:transfer-cancelled" => return Outcome::Cancelled,
        "urn:problem:busy" => return Outcome::Unknown(Cause::Busy),
        _ => None,
    };
    match refusal {
        Some(refusal) => Outcome::Refused(refusal),
        None if status.as_u16() == 429 => Outcome::Unknown(Cause::Throttled),
        None if status.is_server_error() => Outcome::Unknown(Cause::ServerError {
            status: status.as_u16(),
        }),
        None => Outcome::Unknown(Cause::Rejected {
            status: status.as_u16(),
        }),
    }
}

impl AccountsClient {
    /// Whether `account` is `owner`'s: asked before a payment is recorded,
    /// so a payment out of someone else's account leaves nothing behind.
    pub async fn owns(&self, owner: &str, account: AccountId, context: CallContext<'_>) -> Ownership {
        match self
            .send(
                reqwest::Method::GET,
                &format!("/accounts/{account}"),
                None,
                owner,
                context,
            )
            .await
        {
            Ok((status, _)) if status.is_success() => Ownership::Owned,
            Ok((reqwest::StatusCode::NOT_FOUND, _)) => Ownership::NotOwned,
            Ok((status, _)) => Ownership::Unknown(Cause::Rejected {
                status: status.as_u16(),
            }),
            Err(cause) => Ownership::Unknown(cause),
        }
    }
}

impl Ledger for AccountsClient {
    async fn transfer(&self, payment: &Payment, context: CallContext<'_>) -> Outcome {
        self.call(Call::Transfer, payment, context).await
    }

    async fn cancel(&self, payment: &Payment, context: CallContext<'_>) -> Outcome {
        self.call(Call::Cancel, payment, context).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(call: Call, status: u16, body: &str, expected: Outcome) {
        let status = reqwest::StatusCode::from_u16(status).unwrap();
        assert_eq!(read(call, status, body.as_bytes()), expected, "{status} {body}");
    }

    #[test]
    fn answers_are_read_by_type_and_field() {
        let problem = |kind: &str, field: &str| {
            format!(
                r#"{{"type":"urn:problem:{kind}","title":"t","status":422,"errors":[{{"field":"{field}","message":"m"}}]}}"#
            )
        };
        use Call::{Cancel, Transfer};
        check(
            Transfer,
            201,
            r#"{"transfer":{"state":"applied","debit":"x"},"replayed":false}"#,
            Outcome::Transferred,
        );
        check(
            Transfer,
            200,
            r#"{"transfer":{"state":"applied"},"replayed":true}"#,
            Outcome::Transferred,
        );
        check(
            Cancel,
            200,
            r#"{"state":"cancelled","reference":"r"}"#,
            Outcome::Cancelled,
        );
        check(
            Cancel,
            200,
            r#"{"state":"applied","reference":"r"}"#,
            Outcome::Transferred,
        );
        check(
            Transfer,
            422,
            &problem("insufficient-funds", "amount_minor"),
            Outcome::Refused(Refusal::InsufficientFunds),
        );
        check(
            Transfer,
            422,
            &problem("unknown-account", "to_account"),
            Outcome::Refused(Refusal::UnknownPayee),
        );
        check(
            Transfer,
            422,
            &problem("unknown-account", "from_account"),
            Outcome::Refused(Refusal::UnknownPayer),
        );
        check(
            Transfer,
            422,
            &problem("currency-mismatch", "to_account"),
            Outcome::Refused(Refusal::PayeeCurrency),
        );
        check(
            Transfer,
            422,
            &problem("currency-mismatch", "from_account"),
            Outcome::Refused(Refusal::PayerCurrency),
        );
        check(
            Transfer,
            422,
            &problem("balance-limit", "amount_minor"),
            Outcome::Refused(Refusal::PayeeLimit),
        );
        check(
            Transfer,
            422,
            &problem("payee-cannot-receive", "to_account"),
            Outcome::Refused(Refusal::PayeeCannotReceive),
        );
        check(
            Transfer,
            409,
            &problem("reference-conflict", "reference"),
            Outcome::Refused(Refusal::ReferenceConflict),
        );
        check(
            Transfer,
            409,
            &problem("transfer-cancelled", "reference"),
            Outcome::Cancelled,
        );
        check(Transfer, 409, &problem("busy", "x"), Outcome::Unknown(Cause::Busy));
        // What says nothing about the transfer is not a refusal: a
        // validation of accounts' own, a credential, a proxy's page.
        check(
            Transfer,
            422,
            &problem("invalid-field", "amount_minor"),
            Outcome::Unknown(Cause::Rejected { status: 422 }),
        );
        check(
            Transfer,
            401,
            &problem("unauthorized", "x"),
            Outcome::Unknown(Cause::Rejected { status: 401 }),
        );
        check(
            Transfer,
            502,
            "<html>bad gateway</html>",
            Outcome::Unknown(Cause::ServerError { status: 502 }),
        );
        check(Transfer, 429, "", Outcome::Unknown(Cause::Throttled));
        check(
            Transfer,
            200,
            "not json",
            Outcome::Unknown(Cause::Rejected { status: 200 }),
        );
    }
}
