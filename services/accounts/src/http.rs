//! Routes, and the translation between HTTP and the domain. Nothing here
//! decides a business rule.
//!
//! | route | what |
//! |---|---|
//! | `POST /accounts` | open `{owner, currency}` → 201 account |
//! | `GET /accounts/{id}` | the account |
//! | `POST /accounts/{id}/credits` | `{amount_minor, currency, reference}` → 201 posting, 200 on a replay of the reference |
//! | `POST /accounts/{id}/debits` | as credits; 422 `insufficient-funds` when the balance is short |
//! | `POST /accounts/{id}/voids` | `{reference}` → 200: the posting with that reference reversed, or the reference blocked if nothing was posted |
//! | `GET /accounts/{id}/transactions?limit=&cursor=` | newest first, paged |
//!
//! Every `/accounts` route needs `Authorization: Bearer <service key>`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use shared::http::{Json, Problem};
use shared::metrics::{InvocationMetrics, Unit};

use crate::AppState;
use crate::domain::{Account, AccountId, Direction, DomainError, NewAccount, Posting, Transaction};
use crate::store::StoreError;

/// The routes, behind the service-key check.
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/accounts", post(open))
        .route("/accounts/{id}", get(account))
        .route("/accounts/{id}/credits", post(credit))
        .route("/accounts/{id}/debits", post(debit))
        .route("/accounts/{id}/voids", post(void))
        .route("/accounts/{id}/transactions", get(transactions))
        .route_layer(axum::middleware::from_fn_with_state(
            state.api_key.clone(),
            shared::secrets::require_service_key,
        ))
        .with_state(state)
}

/// Turns a store error into the response the client sees.
fn problem(err: StoreError) -> Problem {
    match err {
        StoreError::Domain(err) => domain_problem(err),
        StoreError::Busy(_) => Problem::new(StatusCode::CONFLICT, "busy", "Account busy")
            .detail("concurrent postings on this account kept conflicting; retry with the same reference"),
        StoreError::Dynamo(shared::dynamo::Failure { transient: true, .. }) => Problem::unavailable(&err),
        other => Problem::internal(&other),
    }
}

fn domain_problem(err: DomainError) -> Problem {
    let detail = err.to_string();
    match err {
        DomainError::Invalid { field, message } => Problem::invalid_field(field, message),
        DomainError::NotFound(_) => Problem::not_found("the account")
            .detail(detail)
            .field("id", "no account has this id"),
        DomainError::InsufficientFunds { .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient-funds",
            "Insufficient funds",
        )
        .detail(detail)
        .field("amount_minor", "exceeds the available balance"),
        DomainError::CurrencyMismatch { account, .. } => {
            Problem::invalid_field("currency", format!("expected the account's currency {account}")).detail(detail)
        }
        DomainError::BalanceLimit => Problem::invalid_field("amount_minor", "would take the balance past its maximum"),
        DomainError::ReferenceConflict(_) => {
            Problem::new(StatusCode::CONFLICT, "reference-conflict", "Reference already used")
                .detail(detail)
                .field("reference", "was already used for a different posting")
        }
    }
}

fn account_id(raw: &str) -> Result<AccountId, Problem> {
    AccountId::parse(raw).map_err(domain_problem)
}

/// `POST /accounts` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// Who owns the account.
    pub owner: String,
    /// ISO 4217 code.
    pub currency: String,
}

async fn open(
    State(state): State<AppState>,
    metrics: axum::Extension<InvocationMetrics>,
    Json(body): Json<OpenRequest>,
) -> Result<Response, Problem> {
    let new = NewAccount::parse(&body.owner, &body.currency).map_err(domain_problem)?;
    let account = state.store.open(new).await.map_err(problem)?;
    metrics.add("AccountsOpened", Unit::Count, 1.0);
    let location = format!("/accounts/{}", account.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(account)).into_response())
}

async fn account(State(state): State<AppState>, Path(id): Path<String>) -> Result<axum::Json<Account>, Problem> {
    let id = account_id(&id)?;
    state.store.get(id).await.map(axum::Json).map_err(problem)
}

/// Credit and debit body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingRequest {
    /// Amount in minor units (cents): a positive integer.
    pub amount_minor: u64,
    /// ISO 4217 code; must be the account's.
    pub currency: String,
    /// The caller's unique reference; the same reference is applied once.
    pub reference: String,
}

/// The answer to a posting: the transaction and the account as read after it.
#[derive(Debug, Serialize)]
pub struct PostingResponse {
    /// The transaction (the original one on a replay).
    pub transaction: Transaction,
    /// Whether this reference had been posted before.
    pub replayed: bool,
    /// The account's balance as read right after the posting.
    pub balance_minor: u64,
}

async fn credit(
    state: State<AppState>,
    id: Path<String>,
    metrics: axum::Extension<InvocationMetrics>,
    body: Json<PostingRequest>,
) -> Result<Response, Problem> {
    post_money(state, id, metrics, body, Direction::Credit).await
}

async fn debit(
    state: State<AppState>,
    id: Path<String>,
    metrics: axum::Extension<InvocationMetrics>,
    body: Json<PostingRequest>,
) -> Result<Response, Problem> {
    post_money(state, id, metrics, body, Direction::Debit).await
}

async fn post_money(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<PostingRequest>,
    direction: Direction,
) -> Result<Response, Problem> {
    let id = account_id(&id)?;
    let posting = Posting::parse(
        direction,
        body.amount_minor,
        &body.currency,
        &body.reference,
        state.config.max_amount_minor,
    )
    .map_err(domain_problem)?;
    let (transaction, replayed) = state.store.post(id, &posting).await.map_err(problem)?;
    let balance_minor = state.store.get(id).await.map_err(problem)?.balance_minor;
    let name = match (direction, replayed) {
        (_, true) => "PostingsReplayed",
        (Direction::Credit, false) => "Credits",
        (Direction::Debit, false) => "Debits",
    };
    metrics.add(name, Unit::Count, 1.0);
    let status = if replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        axum::Json(PostingResponse {
            transaction,
            replayed,
            balance_minor,
        }),
    )
        .into_response())
}

/// `POST /accounts/{id}/voids` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// The reference of the posting to void.
    pub reference: String,
}

/// The answer to a void.
#[derive(Debug, Serialize)]
pub struct VoidResponse {
    /// The voided reference.
    pub reference: String,
    /// `reversed` (a posting existed and was reversed) or `blocked` (none existed; none ever will).
    pub outcome: &'static str,
    /// The reversing transaction, when there was a posting.
    pub reversal: Option<Transaction>,
    /// The account's balance as read right after.
    pub balance_minor: u64,
}

async fn void(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<VoidRequest>,
) -> Result<Response, Problem> {
    let id = account_id(&id)?;
    let reference = crate::domain::reference(&body.reference).map_err(domain_problem)?;
    let voided = state.store.void(id, &reference).await.map_err(problem)?;
    let balance_minor = state.store.get(id).await.map_err(problem)?.balance_minor;
    metrics.add("Voids", Unit::Count, 1.0);
    let (outcome, reversal) = match voided {
        crate::store::Voided::Blocked => ("blocked", None),
        crate::store::Voided::Reversed(tx) => ("reversed", Some(tx)),
    };
    Ok(axum::Json(VoidResponse {
        reference: body.reference,
        outcome,
        reversal,
        balance_minor,
    })
    .into_response())
}

/// Query of `GET /accounts/{id}/transactions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// At most this many (capped by the configured page size).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

async fn transactions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let id = account_id(&id)?;
    let Query(query) = query
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid-query", "Invalid query").detail(e.body_text()))?;
    let page = state
        .store
        .transactions(id, query.limit, query.cursor.as_deref())
        .await
        .map_err(problem)?;
    Ok(axum::Json(page).into_response())
}
