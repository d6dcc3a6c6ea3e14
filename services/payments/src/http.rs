//! Routes, and the translation between HTTP and the payment saga.
//!
//! | route | what |
//! |---|---|
//! | `POST /payments` | needs `Idempotency-Key`; `{from_account, to_account, amount_minor, currency, reference}` → 201 completed payment; 422 `payment-failed` when accounts refused (nothing moved); 503 when accounts could not be reached (whatever moved was moved back, or the payment is left `compensating` to resume) |
//! | `GET /payments/{id}` | the payment with its status, reason and steps |
//! | `POST /payments/{id}/resume` | continues a payment from its last recorded step (after a crash) |

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shared::http::{CorrelationId, Json, Problem};
use shared::metrics::{InvocationMetrics, Unit};

use crate::AppState;
use crate::domain::{Payment, PaymentRequest, Status};
use crate::saga;
use crate::store::StoreError;

/// The routes; `POST /payments` is idempotent by `Idempotency-Key`.
pub fn routes(state: AppState) -> Router {
    let idempotent =
        axum::middleware::from_fn_with_state(Arc::clone(&state.idempotency), shared::idempotency::middleware);
    Router::new()
        .route("/payments", post(create).layer(idempotent))
        .route("/payments/{id}", get(payment))
        .route("/payments/{id}/resume", post(resume))
        .with_state(state)
}

fn store_problem(err: StoreError) -> Problem {
    match err {
        StoreError::NotFound(_) => Problem::not_found("the payment").field("id", "no payment has this id"),
        StoreError::Conflict(_) => Problem::new(StatusCode::CONFLICT, "payment-busy", "Payment busy")
            .detail("another request is advancing this payment; read it again shortly"),
        other => Problem::internal(&other),
    }
}

/// The response for a payment that has run as far as it can.
fn outcome(payment: &Payment, metrics: &InvocationMetrics) -> Response {
    let location = format!("/payments/{}", payment.id);
    metrics.add(
        match payment.status {
            Status::Completed => "PaymentsCompleted",
            Status::Failed => "PaymentsFailed",
            _ => "PaymentsStuck",
        },
        Unit::Count,
        1.0,
    );
    let reason = payment.failure_reason.clone().unwrap_or_default();
    match payment.status {
        Status::Completed => (StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(payment)).into_response(),
        Status::Failed if !reason.contains("unknown") => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "payment-failed", "Payment failed")
                .detail(format!("{reason}; no money moved"))
                .instance(location)
                .into_response()
        }
        Status::Failed => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "payment-failed", "Payment failed")
            .detail(format!(
                "{reason}; anything debited was credited back; retry with a new Idempotency-Key"
            ))
            .instance(location)
            .into_response(),
        _ => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment-compensating",
            "Payment being compensated",
        )
        .detail(format!(
            "{reason}; money is being moved back, read the payment for its status"
        ))
        .instance(location)
        .into_response(),
    }
}

async fn create(
    State(state): State<AppState>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    axum::Extension(CorrelationId(correlation)): axum::Extension<CorrelationId>,
    Json(body): Json<PaymentRequest>,
) -> Result<Response, Problem> {
    let request = body
        .validate(state.config.max_amount_minor)
        .map_err(|e| Problem::invalid_field(e.field, e.message))?;
    let payment = Payment::new(&request);
    let done = saga::start(&state, payment, &correlation)
        .await
        .map_err(store_problem)?;
    Ok(outcome(&done.payment, &metrics))
}

fn payment_id(raw: &str) -> Result<uuid::Uuid, Problem> {
    uuid::Uuid::parse_str(raw).map_err(|_| Problem::invalid_field("id", "expected a payment id (a UUID)"))
}

async fn payment(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<Payment>, Problem> {
    let id = payment_id(&id)?;
    state
        .store
        .get(id)
        .await
        .map(|v| axum::Json(v.payment))
        .map_err(store_problem)
}

async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    axum::Extension(CorrelationId(correlation)): axum::Extension<CorrelationId>,
) -> Result<Response, Problem> {
    let id = payment_id(&id)?;
    let current = state.store.get(id).await.map_err(store_problem)?;
    let done = saga::run(&state, current, &correlation).await.map_err(store_problem)?;
    let mut response = outcome(&done.payment, &metrics);
    if response.status() == StatusCode::CREATED {
        *response.status_mut() = StatusCode::OK;
    }
    Ok(response)
}
