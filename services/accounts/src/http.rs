//! Routes, and the translation between HTTP and the domain. Nothing here
//! decides a business rule.
//!
//! | route | access | what |
//! |---|---|---|
//! | `POST /accounts` | `accounts/write` | open `{holder, currency}` → 201 account, owned by the caller |
//! | `GET /accounts/{id}` | `accounts/read` | the caller's account |
//! | `GET /accounts/{id}/transactions?limit=&cursor=` | `accounts/read` | newest first, paged |
//! | `POST /transfers` | `accounts/write` | `{from_account, to_account, amount_minor, currency, reference}` out of the caller's account → 201 transfer (both legs in one transaction), 200 on a replay of the reference; 422 naming the party that cannot pay or receive; 409 `transfer-cancelled` |
//! | `GET /accounts/{id}/transfers/{reference}` | `accounts/read` | the transfer `reference` of the payer `id`, when the caller owns its payer or its payee; applied or cancelled |
//! | `POST /transfers/cancellations` | `accounts/write` | the transfer's body → 200: `cancelled` (nothing moved, and nothing ever will under the reference) or `applied` (it had) |
//! | `POST /accounts/{id}/credits` | `accounts/back-office` | `{amount_minor, currency, reference}` → 201 posting, 200 on a replay of the reference |
//! | `POST /accounts/{id}/debits` | `accounts/back-office` | as credits; 422 `insufficient-funds` when the balance is short |
//! | `POST /accounts/{id}/voids` | `accounts/back-office` | `{reference}` → 200: the external posting with that reference reversed, or the reference blocked if nothing was posted; 409 `transfer-leg` for a leg of a transfer |
//!
//! Credits and debits are external movements (money entering or leaving the
//! ledger), which no customer makes for themselves; a transfer moves money
//! inside it. A reference is the payer's: each payer has their own, and a
//! transfer to an account claims nothing on it. Another customer's account
//! or transfer answers exactly as one that does not exist. A service of the deployment (`accounts/service`,
//! payments) acts only for the customer it names in `X-On-Behalf-Of`, on
//! the customers' routes; the back office (`accounts/back-office`) also acts
//! for no one, on any customer's account, and alone posts credits, debits
//! and voids. The accounts of the deployment's own machine clients (the
//! traffic hooks' test accounts) are synthetic ([`shared::synthetic`]):
//! marked, expiring, and to everyone else as if they did not exist.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use shared::auth::{Access, Gate, Principal, Routes};
use shared::http::{Json, Path, Problem, Query};
use shared::metrics::{InvocationMetrics, Unit};

use crate::AppState;
use crate::domain::{
    Account, AccountId, Direction, DomainError, NewAccount, NewTransfer, Posting, Scope, Transaction, Transfer,
};
use crate::store::{Applied, StoreError};

/// The routes and who may use each.
pub fn routes(state: AppState, gate: Arc<Gate>) -> Routes {
    Routes::new(gate)
        .route("/accounts", post(open), Access::Scope(WRITE))
        .route("/accounts/{id}", get(account), Access::Scope(READ))
        .route("/accounts/{id}/transactions", get(transactions), Access::Scope(READ))
        .route("/transfers", post(transfer), Access::Scope(WRITE))
        .route("/transfers/cancellations", post(cancel_transfer), Access::Scope(WRITE))
        .route(
            "/accounts/{id}/transfers/{reference}",
            get(get_transfer),
            Access::Scope(READ),
        )
        .route("/accounts/{id}/credits", post(credit), Access::BackOffice)
        .route("/accounts/{id}/debits", post(debit), Access::BackOffice)
        .route("/accounts/{id}/voids", post(void), Access::BackOffice)
        .with_state(state)
}

/// Reading accounts and transfers.
pub const READ: &str = "accounts/read";
/// Opening accounts and moving money out of one's own.
pub const WRITE: &str = "accounts/write";

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
        DomainError::Invalid { field, message } => Problem::invalid_field(field, message).before_work(),
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
        DomainError::BalanceLimit => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "balance-limit", "Balance limit")
            .detail(detail)
            .field("amount_minor", "would take the balance past its maximum"),
        DomainError::ReferenceConflict(_) => {
            Problem::new(StatusCode::CONFLICT, "reference-conflict", "Reference already used")
                .detail(detail)
                .field("reference", "was already used for a different posting")
        }
        DomainError::UnknownParty { field } => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown-account", "Unknown account")
                .detail(detail)
                .field(field, "no account has this id")
        }
        DomainError::PartyCurrency { field, account, .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency-mismatch",
            "Currency mismatch",
        )
        .detail(detail)
        .field(field, format!("holds {account}")),
        DomainError::PayeeCannotReceive => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "payee-cannot-receive",
            "Payee cannot receive",
        )
        .detail(detail)
        .field("to_account", "cannot receive this transfer"),
        DomainError::TransferCancelled(_) => {
            Problem::new(StatusCode::CONFLICT, "transfer-cancelled", "Transfer cancelled")
                .detail(detail)
                .field("reference", "was cancelled; it never applies")
        }
        DomainError::TransferLeg { .. } => Problem::new(StatusCode::CONFLICT, "transfer-leg", "Leg of a transfer")
            .detail(detail)
            .field("reference", "is a leg of a transfer; one leg is never reversed alone"),
        DomainError::NoTransfer(_) => Problem::not_found("the transfer")
            .detail(detail)
            .field("reference", "no transfer has this reference"),
    }
}

fn account_id(raw: &str) -> Result<AccountId, Problem> {
    AccountId::parse(raw).map_err(domain_problem)
}

/// `POST /accounts` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// The name the account is held in.
    pub holder: String,
    /// ISO 4217 code.
    pub currency: String,
}

async fn open(
    State(state): State<AppState>,
    principal: Principal,
    metrics: axum::Extension<InvocationMetrics>,
    Json(body): Json<OpenRequest>,
) -> Result<Response, Problem> {
    let new = NewAccount::parse(
        principal.customer("an account")?,
        principal.records(),
        &body.holder,
        &body.currency,
    )
    .map_err(domain_problem)?;
    let account = state.store.open(new).await.map_err(problem)?;
    metrics.add("AccountsOpened", Unit::Count, 1.0);
    let location = format!("/accounts/{}", account.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(account)).into_response())
}

async fn account(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Account>, Problem> {
    let id = account_id(&id)?;
    state
        .store
        .get_owned(id, Scope::of(&principal))
        .await
        .map(axum::Json)
        .map_err(problem)
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
    principal: Principal,
    id: Path<String>,
    metrics: axum::Extension<InvocationMetrics>,
    body: Json<PostingRequest>,
) -> Result<Response, Problem> {
    post_money(state, principal, id, metrics, body, Direction::Credit).await
}

async fn debit(
    state: State<AppState>,
    principal: Principal,
    id: Path<String>,
    metrics: axum::Extension<InvocationMetrics>,
    body: Json<PostingRequest>,
) -> Result<Response, Problem> {
    post_money(state, principal, id, metrics, body, Direction::Debit).await
}

/// The back office acting for a customer (`X-On-Behalf-Of`) touches only
/// that customer's accounts, and acting for no one only customers' accounts
/// (never a synthetic one): any other answers as one that does not exist.
/// An account's owner and records never change, so the check holds for the
/// write after it (whose condition checks the records again).
async fn owned(state: &AppState, principal: &Principal, id: AccountId) -> Result<(), Problem> {
    state
        .store
        .get_owned(id, Scope::of(principal))
        .await
        .map(|_| ())
        .map_err(problem)
}

async fn post_money(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<PostingRequest>,
    direction: Direction,
) -> Result<Response, Problem> {
    let id = account_id(&id)?;
    owned(&state, &principal, id).await?;
    let posting = Posting::parse(
        direction,
        body.amount_minor,
        &body.currency,
        &body.reference,
        state.config.max_amount_minor,
    )
    .map_err(domain_problem)?;
    let (transaction, applied) = state
        .store
        .post(id, &posting, principal.records())
        .await
        .map_err(problem)?;
    let balance_minor = state.store.get(id).await.map_err(problem)?.balance_minor;
    let name = match (direction, applied) {
        (_, Applied::Replayed) => "PostingsReplayed",
        (Direction::Credit, Applied::New) => "Credits",
        (Direction::Debit, Applied::New) => "Debits",
    };
    metrics.add(name, Unit::Count, 1.0);
    Ok((
        created_or_replayed(applied),
        axum::Json(PostingResponse {
            transaction,
            replayed: applied == Applied::Replayed,
            balance_minor,
        }),
    )
        .into_response())
}

fn created_or_replayed(applied: Applied) -> StatusCode {
    match applied {
        Applied::New => StatusCode::CREATED,
        Applied::Replayed => StatusCode::OK,
    }
}

/// `POST /transfers` and `POST /transfers/cancellations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The payer's account id.
    pub from_account: String,
    /// The payee's account id.
    pub to_account: String,
    /// Amount in minor units: a positive integer.
    pub amount_minor: u64,
    /// ISO 4217 code; both accounts must hold it.
    pub currency: String,
    /// The caller's unique reference; the same reference transfers once.
    pub reference: String,
}

impl TransferRequest {
    fn validate(&self, max_amount_minor: u64) -> Result<NewTransfer, Problem> {
        NewTransfer::parse(
            &self.from_account,
            &self.to_account,
            self.amount_minor,
            &self.currency,
            &self.reference,
            max_amount_minor,
        )
        .map_err(domain_problem)
    }
}

/// The answer to a transfer.
#[derive(Debug, Serialize)]
pub struct TransferResponse {
    /// The transfer (the original one on a replay).
    pub transfer: Transfer,
    /// Whether this reference had transferred before.
    pub replayed: bool,
}

async fn transfer(
    State(state): State<AppState>,
    principal: Principal,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<TransferRequest>,
) -> Result<Response, Problem> {
    principal.customer("a transfer")?;
    let new = body.validate(state.config.max_amount_minor)?;
    let (transfer, applied) = state
        .store
        .transfer(&new, Scope::of(&principal))
        .await
        .map_err(problem)?;
    metrics.add(
        match applied {
            Applied::New => "Transfers",
            Applied::Replayed => "TransfersReplayed",
        },
        Unit::Count,
        1.0,
    );
    let location = format!("/accounts/{}/transfers/{}", transfer.from_account, transfer.reference);
    Ok((
        created_or_replayed(applied),
        [(header::LOCATION, location)],
        axum::Json(TransferResponse {
            transfer,
            replayed: applied == Applied::Replayed,
        }),
    )
        .into_response())
}

async fn get_transfer(
    State(state): State<AppState>,
    principal: Principal,
    Path((payer, reference)): Path<(String, String)>,
) -> Result<axum::Json<Transfer>, Problem> {
    let payer = account_id(&payer)?;
    let reference = crate::domain::reference(&reference).map_err(domain_problem)?;
    state
        .store
        .get_transfer_owned(payer, &reference, Scope::of(&principal))
        .await
        .map(axum::Json)
        .map_err(problem)
}

async fn cancel_transfer(
    State(state): State<AppState>,
    principal: Principal,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<TransferRequest>,
) -> Result<axum::Json<Transfer>, Problem> {
    principal.customer("a transfer's cancellation")?;
    let new = body.validate(state.config.max_amount_minor)?;
    let transfer = state
        .store
        .cancel_transfer(&new, Scope::of(&principal))
        .await
        .map_err(problem)?;
    metrics.add("TransferCancellations", Unit::Count, 1.0);
    Ok(axum::Json(transfer))
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
    principal: Principal,
    Path(id): Path<String>,
    axum::Extension(metrics): axum::Extension<InvocationMetrics>,
    Json(body): Json<VoidRequest>,
) -> Result<Response, Problem> {
    let id = account_id(&id)?;
    owned(&state, &principal, id).await?;
    let reference = crate::domain::reference(&body.reference).map_err(domain_problem)?;
    let voided = state
        .store
        .void(id, &reference, principal.records())
        .await
        .map_err(problem)?;
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
    principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, Problem> {
    let id = account_id(&id)?;
    let page = state
        .store
        .transactions(id, Scope::of(&principal), query.limit, query.cursor.as_deref())
        .await
        .map_err(problem)?;
    Ok(axum::Json(page).into_response())
}
