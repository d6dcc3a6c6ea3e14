//! Provider verification: the real accounts app on loopback against every
//! pact in `pacts/`, with provider states set up through accounts' own store.
//! A provider that renames a field its consumers rely on must fail.

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use accounts::domain::{Direction, NewAccount, NewTransfer, Posting, Records, Scope};
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use pact_models::provider_states::ProviderState;
use pact_verifier::callback_executors::{NullRequestFilterExecutor, ProviderStateExecutor};
use pact_verifier::{FilterInfo, PactSource, ProviderInfo, ProviderTransport, VerificationOptions};
use serde_json::Value;

/// Sets up provider states in accounts' store and hands the verifier the
/// account ids to put in request bodies (`from_account`, `to_account`).
struct States {
    store: accounts::store::Store,
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("States(accounts store)")
    }
}

#[async_trait::async_trait]
impl ProviderStateExecutor for States {
    async fn call(
        self: Arc<Self>,
        _interaction_id: Option<String>,
        state: &ProviderState,
        setup: bool,
        _client: Option<&reqwest_pact::Client>,
    ) -> anyhow::Result<HashMap<String, Value>> {
        if !setup || state.name.is_empty() {
            return Ok(HashMap::new());
        }
        let param = |name: &str| state.params.get(name).cloned().unwrap_or(Value::Null);
        let text = |name: &str, default: &str| param(name).as_str().unwrap_or(default).to_owned();
        let currency = text("currency", "EUR");
        // The payer belongs to the customer payments acts for (the pact's
        // `X-On-Behalf-Of`); the payee to `payee_customer`, else to someone else.
        let customer = text("customer", "pact-customer");
        let open = |owner: String, currency: String, balance: u64| {
            let store = self.store.clone();
            async move {
                let account = store
                    .open(NewAccount::parse(&owner, Records::Customers, "Pact", &currency)?)
                    .await?;
                if balance > 0 {
                    let seed = Posting::parse(Direction::Credit, balance, &currency, "pact-seed", u64::MAX)?;
                    store.post(account.id, &seed, Records::Customers).await?;
                }
                anyhow::Ok(account.id.to_string())
            }
        };
        let payer = open(
            customer,
            currency.clone(),
            param("payer_balance_minor").as_u64().unwrap_or(0),
        )
        .await?;
        let payee = match state.name.as_str() {
            "two accounts" => {
                open(
                    text("payee_customer", "pact-payee"),
                    text("payee_currency", &currency),
                    0,
                )
                .await?
            }
            "a payer and an unknown payee" => uuid::Uuid::new_v4().to_string(),
            "two accounts with a transfer between them" => {
                let payee = open(String::from("pact-payee"), currency.clone(), 0).await?;
                let transfer = NewTransfer::parse(
                    &payer,
                    &payee,
                    param("amount_minor").as_u64().unwrap_or(0),
                    &currency,
                    &text("reference", ""),
                    u64::MAX,
                )?;
                self.store.transfer(&transfer, Scope::CUSTOMERS).await?;
                payee
            }
            other => anyhow::bail!("unknown provider state {other:?}"),
        };
        Ok(HashMap::from([
            (String::from("from_account"), Value::String(payer)),
            (String::from("to_account"), Value::String(payee)),
        ]))
    }

    fn teardown(&self) -> bool {
        false
    }
}

/// Verifies every pact against `router`, each request carrying `token` (a
/// real token of the consumer's machine client, where the pact has an example).
async fn verify(
    router: axum::Router,
    store: accounts::store::Store,
    token: &str,
) -> pact_verifier::verification_result::VerificationExecutionResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let provider = ProviderInfo {
        name: String::from("accounts"),
        host: String::from("127.0.0.1"),
        transports: vec![ProviderTransport {
            transport: String::from("http"),
            port: Some(port),
            path: None,
            scheme: Some(String::from("http")),
        }],
        ..ProviderInfo::default()
    };
    // Every pact in pacts/ whose provider is accounts (the verifier skips the others).
    let pacts: Vec<PactSource> = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../pacts"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| PactSource::File(path.to_string_lossy().into_owned()))
        .collect();
    assert!(!pacts.is_empty(), "no pacts to verify");
    let options: VerificationOptions<NullRequestFilterExecutor> = VerificationOptions {
        no_pacts_is_error: true,
        coloured_output: false,
        custom_headers: HashMap::from([(String::from("Authorization"), format!("Bearer {token}"))]),
        ..VerificationOptions::default()
    };
    let result = pact_verifier::verify_provider_async(
        provider,
        pacts,
        FilterInfo::None,
        vec![],
        &options,
        None,
        &Arc::new(States { store }),
        None,
    )
    .await
    .expect("verification ran");
    server.abort();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_honours_every_pact() {
    let f = common::fixture().await;
    let result = verify(f.router.clone(), f.state.store.clone(), &f.service_token).await;
    assert!(
        result.result,
        "verification failed: {:?}\n{}",
        result.errors,
        result.output.join("\n")
    );
    assert!(result.interaction_results.len() >= 6, "every interaction verified");
}

/// Renames `transfer` to `movement` in every JSON response: the field
/// payments reads a transfer's state from.
async fn rename_transfer(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let (mut parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let mut json: Value = match serde_json::from_slice(&bytes) {
        Ok(json) => json,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(object) = json.as_object_mut()
        && let Some(transfer) = object.remove("transfer")
    {
        object.insert(String::from("movement"), transfer);
    }
    let body = json.to_string();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_renames_a_relied_on_field_fails_verification() {
    let f = common::fixture().await;
    let broken = f.router.clone().layer(axum::middleware::from_fn(rename_transfer));
    let result = verify(broken, f.state.store.clone(), &f.service_token).await;
    assert!(!result.result, "a renamed field must fail verification");
    // Errors are described as "Verifying a pact between … Given <state> - <interaction>".
    let mut failed: Vec<&str> = result
        .errors
        .iter()
        .filter_map(|(description, _)| description.rsplit(" - ").next())
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        ["a transfer the payer can make"],
        "exactly the interaction that relies on `transfer` fails"
    );
}
