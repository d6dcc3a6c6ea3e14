//! Test support: accounts and payments deployed together on the local stack
//! (their own tables, parameters, user pool and payments' machine client),
//! accounts served on loopback behind a fault switch, payments calling it
//! over real HTTP with its own tokens.

#![allow(dead_code, reason = "each test binary uses a different part of this module")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use shared::naming::Deployment;
use tower::ServiceExt;

/// What the accounts service does with one kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Serve it.
    #[default]
    None,
    /// Answer 503 without touching anything.
    Unavailable,
    /// Serve it after this long (longer than payments waits).
    Slow(Duration),
}

/// Faults per accounts route, switched by tests.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    pub transfers: Fault,
    pub cancellations: Fault,
}

impl Faults {
    /// The same fault on every route payments calls.
    pub fn all(fault: Fault) -> Self {
        Self {
            transfers: fault,
            cancellations: fault,
        }
    }
}

#[derive(Clone)]
pub struct Stack {
    pub accounts: accounts::AppState,
    pub payments: axum::Router,
    pub payments_state: payments::AppState,
    pub faults: Arc<Mutex<Faults>>,
    /// The deployment's user pool.
    pub identity: local_aws::identity::Identity,
    /// The customer who pays: owns the accounts [`Stack::account`] opens.
    pub customer: local_aws::identity::Customer,
}

async fn inject(faults: Arc<Mutex<Faults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let current = faults.lock().unwrap().clone();
    let fault = match path.as_str() {
        "/transfers" => current.transfers,
        "/transfers/cancellations" => current.cancellations,
        _ => Fault::None,
    };
    match fault {
        Fault::None => next.run(req).await,
        Fault::Unavailable => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "injected fault").into_response(),
        // As on Lambda, the work goes on when the caller stops waiting: the
        // call lands late, after payments gave up on it.
        Fault::Slow(delay) => tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            next.run(req).await
        })
        .await
        .unwrap_or_else(|_| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "lost").into_response()),
    }
}

pub async fn stack() -> Stack {
    // Logs go to stdout, which nextest shows for a failing test.
    shared::telemetry::init(&payments::SERVICE);
    let sdk = local_aws::test_sdk_config().await;
    let deployment = Deployment::new(local_aws::unique("p"), "test");
    let mut services = local_aws::registry::load().expect("registry");
    services.retain(|s| s.name == "accounts" || s.name == "payments");
    local_aws::seed::seed(&sdk, &deployment, &services).await.expect("seed");
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .expect("user pool");
    let customer = identity.customer(&sdk, "payer").await.expect("a customer");
    let (accounts_state, _) = accounts::init(&sdk, &deployment, identity.settings.clone())
        .await
        .expect("accounts init");
    let faults = Arc::new(Mutex::new(Faults::default()));
    let switch = faults.clone();
    let accounts_app = accounts::app(accounts_state.clone()).layer(axum::middleware::from_fn(move |req, next| {
        inject(switch.clone(), req, next)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, accounts_app).await.unwrap() });

    let (mut loaded, client) =
        shared::bootstrap::load_with_secret::<payments::Config, shared::credentials::ClientCredentials>(
            &sdk,
            &deployment,
            payments::SERVICE.name,
            identity.settings.clone(),
            &shared::credentials::client_secret(payments::SERVICE.name),
        )
        .await
        .expect("payments config, keys and machine client");
    let config = &mut loaded.config;
    config.accounts_url = format!("http://{address}");
    config.accounts_timeout_ms = 300;
    config.give_up_after_seconds = 2;
    config.retry_base_ms = 50;
    config.retry_max_ms = 200;
    config.stuck_after_seconds = 60;
    let payments_state = payments::AppState::new(loaded, client, aws_sdk_dynamodb::Client::new(&sdk));
    Stack {
        accounts: accounts_state,
        payments: payments::app(payments_state.clone()),
        payments_state,
        faults,
        identity,
        customer,
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Stack {
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// `POST /payments` with a 15 s budget (the deployed function's timeout).
    pub async fn pay(&self, key: Option<&str>, body: &str) -> Reply {
        self.pay_within(key, body, Duration::from_secs(15)).await
    }

    /// `POST /payments` as an invocation with `budget` left.
    pub async fn pay_within(&self, key: Option<&str>, body: &str, budget: Duration) -> Reply {
        let mut request = axum::http::Request::post("/payments")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.customer.access_token));
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let mut request = request.body(Body::from(body.to_owned())).unwrap();
        request.extensions_mut().insert(shared::http::Deadline::after(budget));
        self.send(request).await
    }

    /// One run of the sweeper with `budget`.
    pub async fn sweep(&self, budget: Duration) -> payments::sweeper::Sweep {
        let metrics = shared::metrics::MetricsConfig::from_env("payments", Arc::new(shared::telemetry::Stdout));
        payments::sweeper::sweep(&self.payments_state, shared::http::Deadline::after(budget), &metrics)
            .await
            .expect("sweep")
    }

    /// Sweeps until the payment is final (at most `rounds` sweeps).
    pub async fn settle(&self, id: &str, rounds: usize) -> Value {
        for _ in 0..rounds {
            let payment = self.payment(id).await;
            if payment["status"] == "completed" || payment["status"] == "failed" {
                return payment;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.sweep(Duration::from_secs(5)).await;
        }
        panic!(
            "payment {id} not final after {rounds} sweeps: {}",
            self.payment(id).await
        )
    }

    /// Every invariant of the ledger holds over accounts' whole table.
    pub async fn assert_ledger_sound(&self) {
        let snapshot = self.accounts.store.snapshot().await.expect("snapshot");
        let audit = accounts::ledger::audit(&snapshot);
        assert!(audit.is_sound(), "{:#?}", audit.violations);
    }

    pub async fn send(&self, request: axum::http::Request<Body>) -> Reply {
        read(self.payments.clone().oneshot(request).await.unwrap()).await
    }

    /// Opens an account holding `balance` EUR minor units, straight through accounts' store.
    pub async fn account(&self, balance: u64) -> String {
        self.account_in("EUR", balance).await
    }

    pub async fn account_in(&self, currency: &str, balance: u64) -> String {
        use accounts::domain::{Direction, NewAccount, Posting};
        let store = &self.accounts.store;
        let account = store
            .open(
                NewAccount::parse(
                    &self.customer.subject,
                    accounts::domain::Records::Customers,
                    "Test",
                    currency,
                )
                .unwrap(),
            )
            .await
            .unwrap();
        if balance > 0 {
            let posting = Posting::parse(Direction::Credit, balance, currency, "seed", u64::MAX).unwrap();
            store
                .post(account.id, &posting, accounts::domain::Records::Customers)
                .await
                .unwrap();
        }
        account.id.to_string()
    }

    pub async fn balance(&self, id: &str) -> u64 {
        let id = accounts::domain::AccountId::parse(id).unwrap();
        self.accounts.store.get(id).await.unwrap().balance_minor
    }

    /// The account's postings: (direction, amount, reference), oldest first.
    pub async fn postings(&self, id: &str) -> Vec<(String, u64, String)> {
        let id = accounts::domain::AccountId::parse(id).unwrap();
        let page = self
            .accounts
            .store
            .transactions(id, accounts::domain::Scope::CUSTOMERS, Some(1000), None)
            .await
            .unwrap();
        let mut out: Vec<_> = page
            .items
            .into_iter()
            .map(|t| (t.direction.as_str().to_owned(), t.amount_minor, t.reference))
            .collect();
        out.reverse();
        out
    }

    pub async fn payment(&self, id: &str) -> Value {
        let reply = self
            .send(
                axum::http::Request::get(format!("/payments/{id}"))
                    .header("authorization", format!("Bearer {}", self.customer.access_token))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        reply.body
    }
}

/// A response, read whole.
pub async fn read(response: axum::response::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    }
}

pub fn body(from: &str, to: &str, amount: u64) -> String {
    serde_json::json!({"from_account": from, "to_account": to, "amount_minor": amount, "currency": "EUR", "reference": "test payment"}).to_string()
}

/// The payment id of an answer: its `Location` (201, 202) or the problem's `instance` (422).
pub fn payment_id(reply: &Reply) -> String {
    let location = match reply.headers.get("location") {
        Some(location) => location.to_str().unwrap().to_owned(),
        None => reply.body["instance"].as_str().expect("an instance").to_owned(),
    };
    location.trim_start_matches("/payments/").to_owned()
}
