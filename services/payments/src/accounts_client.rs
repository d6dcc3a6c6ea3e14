//! The only way payments touches money: the accounts service's HTTP API.
//!
//! Every posting carries a reference derived from the payment, so a retry
//! can never move money twice; a call with no definitive answer is retried
//! with the same reference, and reported as [`Outcome::Unknown`] if none
//! comes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use shared::secrets::{SecretStore, ServiceKey};
use tracing::Instrument;

use crate::domain::{Outcome, Payment};

/// Which way a posting moves money on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posting {
    /// Take money out.
    Debit,
    /// Put money in.
    Credit,
}

/// A client for the accounts API.
#[derive(Clone)]
pub struct AccountsClient {
    http: reqwest::Client,
    base: String,
    key: Arc<SecretStore<ServiceKey>>,
    timeout: Duration,
    attempts: u32,
}

/// The answer to one call, after retries.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Succeeded, refused, or unknown.
    pub outcome: Outcome,
    /// What accounts said (a problem's detail or the status), or the transport error.
    pub detail: String,
    /// The response body when it succeeded.
    pub body: Value,
}

impl AccountsClient {
    /// A client for `base` (e.g. `https://api.example.com/prod`) over `http`, with a per-call timeout.
    pub fn new(
        http: reqwest::Client,
        base: &str,
        timeout: Duration,
        attempts: u32,
        key: Arc<SecretStore<ServiceKey>>,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            timeout,
            key,
            attempts: attempts.max(1),
        }
    }

    /// Posts a debit or credit of the payment's amount on `account` with `reference`.
    pub async fn post(
        &self,
        kind: Posting,
        account: uuid::Uuid,
        payment: &Payment,
        reference: &str,
        correlation: &str,
    ) -> Answer {
        let body = json!({"amount_minor": payment.amount_minor, "currency": payment.currency, "reference": reference});
        let route = match kind {
            Posting::Debit => "debits",
            Posting::Credit => "credits",
        };
        self.call(&format!("/accounts/{account}/{route}"), &body, correlation)
            .await
    }

    /// Voids `reference` on `account`: reverses its posting, or blocks it if none arrived.
    pub async fn void(&self, account: uuid::Uuid, reference: &str, correlation: &str) -> Answer {
        self.call(
            &format!("/accounts/{account}/voids"),
            &json!({"reference": reference}),
            correlation,
        )
        .await
    }

    async fn call(&self, path: &str, body: &Value, correlation: &str) -> Answer {
        let mut last = Answer {
            outcome: Outcome::Unknown,
            detail: String::from("not attempted"),
            body: Value::Null,
        };
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
            last = self.once(path, body, correlation).await;
            if last.outcome != Outcome::Unknown {
                return last;
            }
            tracing::warn!(path, attempt, detail = %last.detail, "accounts call without a definitive answer");
        }
        last
    }

    async fn once(&self, path: &str, body: &Value, correlation: &str) -> Answer {
        let key = match self.key.get().await {
            Ok(key) => key,
            Err(err) => return unknown(format!("service key unavailable: {err}")),
        };
        let url = format!("{}{path}", self.base);
        let span = shared::xray::outgoing("accounts", "POST", &url);
        let mut request = self
            .http
            .post(&url)
            .timeout(self.timeout)
            .bearer_auth(&key.expose().api_key)
            .header(shared::http::CORRELATION_ID_HEADER, correlation)
            .json(body);
        if let Some(trace) = shared::xray::header(&span) {
            request = request.header(shared::xray::TRACE_HEADER, trace);
        }
        let sent = request.send().instrument(span.clone()).await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                let detail = if err.is_timeout() {
                    String::from("accounts did not answer in time")
                } else {
                    format!("accounts unreachable: {err}")
                };
                shared::xray::fail(&span, &detail);
                return unknown(detail);
            }
        };
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if !status.is_success() {
            span.record("otel.status_code", "error");
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        // A busy account (409 `busy`) and throttling are worth another try; any
        // other 4xx is accounts' final word.
        let retryable = status.is_server_error() || status.as_u16() == 429 || body["type"] == "urn:problem:busy";
        let outcome = match () {
            () if status.is_success() => Outcome::Succeeded,
            () if retryable => Outcome::Unknown,
            () => Outcome::Refused,
        };
        Answer {
            outcome,
            detail: describe(status, &body),
            body,
        }
    }
}

/// What a step records of accounts' answer: the transaction a posting made,
/// what a void did, or the problem's type and detail.
fn describe(status: reqwest::StatusCode, body: &Value) -> String {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    if status.is_success() {
        let transaction = text(&body["transaction"]["id"]).map(|id| format!("transaction {id}"));
        let void = text(&body["outcome"]).map(|outcome| match text(&body["reversal"]["id"]) {
            Some(id) => format!("{outcome} by transaction {id}"),
            None => outcome,
        });
        return transaction.or(void).unwrap_or_else(|| status.to_string());
    }
    match (text(&body["type"]), text(&body["detail"])) {
        (Some(kind), Some(detail)) => format!("{detail} ({kind})"),
        (None, Some(detail)) => detail,
        _ => status.to_string(),
    }
}

fn unknown(detail: String) -> Answer {
    Answer {
        outcome: Outcome::Unknown,
        detail,
        body: Value::Null,
    }
}
