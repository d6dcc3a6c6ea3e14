//! Routes, and the translation between HTTP and the payment runner.
//!
//! | route | access | what |
//! |---|---|---|
//! | `POST /payments` | `payments/write` | needs `Idempotency-Key`; `{from_account, to_account, amount_minor, currency, reference}` → 201 `completed` payment; 422 when it failed (nothing moved: the problem's type says why, e.g. `urn:problem:unknown-payee`); 202 with `Location` while it is not final (accounts slow or down: it finishes on its own, read it or retry with the same key) |
//! | `GET /payments/{id}` | `payments/read` | the caller's payment with its status and, once failed, why |
//!
//! A payment moves money out of the caller's own account only: accounts,
//! told whom payments acts for, refuses another owner's account as one
//! that does not exist. Another customer's payment is not found. Keys are
//! the caller's own: two customers using one key make two payments.
//!
//! A key stays bound to its payment: a retry with it while the payment is
//! not final continues that payment (202, or its final answer once it has
//! one), never a second payment.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shared::auth::{Access, Gate, Principal, Routes};
use shared::http::{CorrelationId, Deadline, Disposition, Json, Path, Problem};
use shared::idempotency::Key;
use shared::metrics::{InvocationMetrics, Unit};
use time::OffsetDateTime;

use crate::AppState;
use crate::accounts_client::{CallContext, Ownership};
use crate::domain::{Failure, Payment, PaymentId, PaymentRequest, Refusal, Status};
use crate::store::{Created, StoreError};

/// The routes and who may use each; `POST /payments` is idempotent by `Idempotency-Key`.
pub fn routes(state: AppState, gate: Arc<Gate>) -> Routes {
    let idempotent =
        axum::middleware::from_fn_with_state(Arc::clone(&state.idempotency), shared::idempotency::middleware);
    Routes::new(gate)
        .route("/payments", post(create).layer(idempotent), Access::Scope(WRITE))
        .route("/payments/{id}", get(payment), Access::Scope(READ))
        .with_state(state)
}

/// Reading one's payments.
pub const READ: &str = "payments/read";
/// Making payments.
pub const WRITE: &str = "payments/write";

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(_) => Problem::not_found("the payment").field("id", "no payment has this id"),
            StoreError::Dynamo(shared::dynamo::Failure { transient: true, .. }) => Problem::unavailable(&err),
            other => Problem::internal(&other),
        }
    }
}

/// The problem type of a failure.
fn failure_type(failure: Failure) -> &'static str {
    match failure {
        Failure::Refused { reason } => match reason {
            Refusal::InsufficientFunds => "insufficient-funds",
            Refusal::UnknownPayer => "unknown-payer",
            Refusal::UnknownPayee => "unknown-payee",
            Refusal::PayerCurrency | Refusal::PayeeCurrency => "currency-mismatch",
            Refusal::PayeeLimit => "payee-limit",
            Refusal::PayeeCannotReceive => "payee-cannot-receive",
            Refusal::ReferenceConflict => "reference-conflict",
        },
        Failure::Abandoned { .. } => "accounts-unavailable",
    }
}

/// The answer for a payment as far as it has run, and how the idempotency
/// layer keeps it: final answers are stored, a pending one keeps the key
/// bound to this payment.
fn answer(payment: &Payment, metrics: &InvocationMetrics) -> Response {
    let location = format!("/payments/{}", payment.id);
    let (metric, mut response) = match (payment.status, payment.failure) {
        (Status::Completed, _) => (
            "PaymentsCompleted",
            (StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(payment)).into_response(),
        ),
        (Status::Failed, Some(failure)) => {
            let problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                failure_type(failure),
                "Payment failed",
            )
            .detail(format!("{failure}; no money moved"))
            .instance(location);
            let problem = match failure {
                Failure::Refused { reason } => problem.field(reason.field(), reason.to_string()),
                Failure::Abandoned { .. } => problem,
            };
            ("PaymentsFailed", problem.into_response())
        }
        _ => (
            "PaymentsPending",
            (
                StatusCode::ACCEPTED,
                [(header::LOCATION, location), (header::RETRY_AFTER, String::from("1"))],
                axum::Json(payment),
            )
                .into_response(),
        ),
    };
    metrics.add(metric, Unit::Count, 1.0);
    let disposition = if payment.status.is_final() {
        Disposition::Final
    } else {
        Disposition::Pending
    };
    response.extensions_mut().insert(disposition);
    response
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    axum::Extension(key): axum::Extension<Key>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    axum::Extension(CorrelationId(correlation)): axum::Extension<CorrelationId>,
    Json(body): Json<PaymentRequest>,
) -> Result<Response, Problem> {
    let owner = principal.customer("a payment")?;
    let request = body
        .validate(state.config.max_amount_minor)
        .map_err(|e| Problem::invalid_field(e.field, e.message).before_work())?;
    let context = CallContext {
        budget: deadline.remaining().saturating_sub(crate::runner::RESERVE),
        correlation: &correlation,
    };
    // Someone else's account is refused before anything is recorded. When
    // accounts cannot say, the transfer checks it (it owns the data).
    if state.accounts.owns(owner, request.from_account, context).await == Ownership::NotOwned {
        let reason = Refusal::UnknownPayer;
        return Err(
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown-payer", "Payment refused")
                .detail(format!("{reason}; no money moved"))
                .field(reason.field(), reason.to_string())
                .before_work(),
        );
    }
    let payment = Payment::new(PaymentId(key.resource_id()), owner, &request, OffsetDateTime::now_utc());
    let current = match state
        .store
        .create(&payment, key.fingerprint(), principal.records())
        .await?
    {
        Created::New(current) => current,
        Created::Existing(current)
            if current.payment.owner == owner
                && (current.fingerprint == key.fingerprint() || current.payment.is_for(owner, &request)) =>
        {
            current
        }
        Created::Existing(_) => {
            return Err(shared::idempotency::key_reused().before_work());
        }
    };
    let last = current.payment.clone();
    let payment = match state.advance(current, deadline, &correlation).await {
        Ok(advanced) => advanced.payment,
        Err(err) => {
            // The payment is recorded; the sweeper finishes it. The client
            // hears that it is not final yet, not that it failed.
            tracing::warn!(error = %err, payment = %last.id, "payment not advanced; the sweeper will");
            last
        }
    };
    Ok(answer(&payment, &metrics))
}

async fn payment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Payment>, Problem> {
    let id = PaymentId::parse(&id).map_err(|e| Problem::invalid_field(e.field, e.message).before_work())?;
    let current = state.store.get(id).await?;
    // Another customer's payment, or one of the other records, is not
    // found, exactly as one that does not exist.
    let theirs = principal
        .acting_for()
        .is_none_or(|owner| owner == current.payment.owner);
    if !theirs || current.records != principal.records() {
        return Err(StoreError::NotFound(id).into());
    }
    Ok(axum::Json(current.payment))
}
