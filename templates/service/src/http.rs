//! Routes, and the translation between HTTP and the domain. Nothing here
//! decides a business rule.
//!
//! | route | access | what |
//! |---|---|---|
//! | `POST /{{project-name}}` | `{{project-name}}/write` | needs `Idempotency-Key`; `{holder, currency, limit_minor}` → 201 record owned by the caller (the same response again for the same key and body; the record's id is the key's resource id) |
//! | `GET /{{project-name}}/{id}` | `{{project-name}}/read` | the caller's record |
//!
//! Every route but `GET /health` needs `Authorization: Bearer <token>` with
//! the route's scope, or a token with `{{project-name}}/service` (a service of
//! the deployment, acting only for the customer named in `X-On-Behalf-Of`)
//! or `{{project-name}}/back-office` (the back office, which may also read
//! any record naming no one). Another customer's record answers exactly as
//! one that does not exist.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use shared::auth::{Access, Gate, Principal, Routes};
use shared::http::{Json, Path, Problem};
use shared::idempotency::Key;
use shared::metrics::{InvocationMetrics, Unit};

use crate::AppState;
use crate::domain::{DomainError, NewRecord, Record, RecordId};
use crate::store::StoreError;

/// The routes and who may use each; `POST` is idempotent by `Idempotency-Key`.
pub fn routes(state: AppState, gate: Arc<Gate>) -> Routes {
    let idempotent =
        axum::middleware::from_fn_with_state(Arc::clone(&state.idempotency), shared::idempotency::middleware);
    Routes::new(gate)
        .route("/{{project-name}}", post(create).layer(idempotent), Access::Scope(WRITE))
        .route("/{{project-name}}/{id}", get(record), Access::Scope(READ))
        .with_state(state)
}

/// Reading one's own records.
pub const READ: &str = "{{project-name}}/read";
/// Creating records.
pub const WRITE: &str = "{{project-name}}/write";

/// Turns a store error into the response the client sees.
fn problem(err: StoreError) -> Problem {
    match err {
        StoreError::Domain(err) => domain_problem(err),
        StoreError::Dynamo(shared::dynamo::Failure { transient: true, .. }) => Problem::unavailable(&err),
        other => Problem::internal(&other),
    }
}

fn domain_problem(err: DomainError) -> Problem {
    let detail = err.to_string();
    match err {
        DomainError::Invalid { field, message } => Problem::invalid_field(field, message).before_work(),
        DomainError::NotFound(_) => Problem::not_found("the record")
            .detail(detail)
            .field("id", "no record has this id"),
    }
}

/// `POST /{{project-name}}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The name the record is held in.
    pub holder: String,
    /// ISO 4217 code of the limit.
    pub currency: String,
    /// The limit in minor units (cents): a positive integer.
    pub limit_minor: u64,
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    axum::Extension(key): axum::Extension<Key>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<CreateRequest>,
) -> Result<Response, Problem> {
    let new = NewRecord::parse(
        principal.customer("a record")?,
        &body.holder,
        &body.currency,
        body.limit_minor,
        state.config.max_amount_minor,
    )
    .map_err(domain_problem)?;
    let record = state
        .store
        .create(RecordId(key.resource_id()), new, principal.records())
        .await
        .map_err(problem)?;
    metrics.add("{{project-name | pascal_case}}Created", Unit::Count, 1.0);
    let location = format!("/{{project-name}}/{}", record.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(record)).into_response())
}

async fn record(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Record>, Problem> {
    let id = RecordId::parse(&id).map_err(domain_problem)?;
    state
        .store
        .get(id, principal.acting_for(), principal.records())
        .await
        .map(axum::Json)
        .map_err(problem)
}
