//! X-Ray end to end, through the real binaries: payments runs as a Lambda
//! function under the local Runtime API and is handed a trace header whose
//! `Parent` is the facade segment, as Lambda does with active tracing;
//! accounts runs as an HTTP server. Both send segment documents to a
//! loopback UDP socket standing in for the X-Ray daemon. One payment, then
//! one made while accounts is down, must give: the daemon header on every
//! datagram, valid ids, every subsegment under the facade, one trace id
//! across payments and accounts, the DynamoDB calls with their operations
//! and tables, and the failed request marked as a fault with its cause.

use std::time::Duration;

use local_aws::runtime_api::{Outcome, RuntimeApi};
use local_aws::xray::{Daemon, descends, segment_id, trace_header};
use serde_json::{Value, json};
use shared::naming::Deployment;

const KEY: &str = "xray-test-service-key";

/// An API Gateway REST (payload 1.0) proxy event.
fn event(method: &str, path: &str, body: &Value, idempotency_key: &str) -> Vec<u8> {
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "idempotency-key": idempotency_key},
        "multiValueHeaders": {"content-type": ["application/json"], "idempotency-key": [idempotency_key]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": format!("/test{path}"),
            "stage": "test",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "accountId": "000000000000",
            "apiId": "local",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
    .to_string()
    .into_bytes()
}

/// Invokes payments with `trace` and returns the proxy response's status.
async fn pay(api: &RuntimeApi, trace: &str, from: &str, to: &str) -> u16 {
    let body =
        json!({"from_account": from, "to_account": to, "amount_minor": 250, "currency": "EUR", "reference": "traced"});
    let event = event("POST", "/payments", &body, &uuid::Uuid::new_v4().to_string());
    match api
        .invoke_traced(event.into(), Some(trace), Duration::from_secs(30))
        .await
        .expect("payments answers")
    {
        Outcome::Response(bytes) => {
            let response: Value = serde_json::from_slice(&bytes).expect("a proxy response");
            response["statusCode"].as_u64().expect("statusCode") as u16
        }
        Outcome::Error(bytes) => panic!("payments failed: {}", String::from_utf8_lossy(&bytes)),
    }
}

fn is_hex(value: &Value, len: usize) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The one subsegment named `name` whose parent is `parent`.
fn child<'a>(docs: &'a [Value], name: &str, parent: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["name"] == name && d["parent_id"] == parent)
        .collect();
    assert_eq!(found.len(), 1, "one {name} under {parent} in {docs:#?}");
    found[0]
}

#[tokio::test]
async fn payments_and_accounts_share_one_trace_with_their_sdk_calls_and_faults() {
    let daemon = Daemon::start().await.unwrap();
    let sdk = local_aws::test_sdk_config().await;
    let deployment = Deployment::new(local_aws::unique("x"), "test");
    let mut services = local_aws::registry::load().expect("registry");
    services.retain(|s| s.name == "accounts" || s.name == "payments");
    for service in &mut services {
        service.spec.secret_value = Some(json!({ "api_key": KEY }));
    }
    local_aws::seed::seed(&sdk, &deployment, &services).await.expect("seed");
    let (accounts_state, _) = accounts::init(&sdk, &deployment).await.expect("accounts init");
    let open = |balance: u64| {
        let store = accounts_state.store.clone();
        async move {
            use accounts::domain::{Direction, NewAccount, Posting};
            let account = store.open(NewAccount::parse("Traced", "EUR").unwrap()).await.unwrap();
            if balance > 0 {
                let seed = Posting::parse(Direction::Credit, balance, "EUR", "seed", u64::MAX).unwrap();
                store.post(account.id, &seed).await.unwrap();
            }
            account.id.to_string()
        }
    };
    let (from, to) = (open(10_000).await, open(0).await);

    let env: Vec<(String, String)> = [
        (shared::env::APP_NAME, deployment.app.clone()),
        (shared::env::STAGE, deployment.stage.clone()),
        (shared::env::BIND_ADDR, String::from("127.0.0.1:0")),
        (shared::env::POWERTOOLS_METRICS_DISABLED, String::from("true")),
        (shared::env::AWS_XRAY_DAEMON_ADDRESS, daemon.address().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let accounts_binary = local_aws::process::build_binary("accounts").await.unwrap();
    let (mut accounts, accounts_url) = local_aws::process::serve(&accounts_binary, &env, None).await.unwrap();

    let payments_binary = std::path::Path::new(env!("CARGO_BIN_EXE_payments"));
    let mut api = RuntimeApi::start().await.unwrap();
    let mut payments_env = env.clone();
    payments_env.extend([
        (shared::config::override_var("accounts_url"), accounts_url.clone()),
        (shared::config::override_var("accounts_attempts"), String::from("1")),
        (
            shared::config::override_var("accounts_timeout_ms"),
            String::from("1000"),
        ),
    ]);
    let _payments = api
        .spawn(payments_binary, "payments", "1", &payments_env)
        .expect("payments starts");
    api.next_poll(Duration::from_secs(60)).await.expect("payments polls");

    let facade = segment_id();
    let (root, header) = trace_header(&facade);
    assert_eq!(pay(&api, &header, &from, &to).await, 201);
    accounts.kill().await.expect("accounts stops");
    let failed_facade = segment_id();
    let (failed_root, failed_header) = trace_header(&failed_facade);
    let failed_status = pay(&api, &failed_header, &from, &to).await;
    assert!(
        failed_status >= 500,
        "a payment without accounts answers 5xx, got {failed_status}"
    );

    let all = daemon.documents(Duration::from_millis(1500)).await.unwrap();
    for doc in &all {
        assert!(is_hex(&doc["id"], 16), "id of {doc}");
        assert!(
            doc["trace_id"]
                .as_str()
                .is_some_and(|t| t.len() == 35 && t.starts_with("1-")),
            "trace id of {doc}"
        );
        assert_eq!(doc["type"], "subsegment", "{doc}");
        assert!(is_hex(&doc["parent_id"], 16), "parent of {doc}");
        assert!(doc["end_time"].as_f64() >= doc["start_time"].as_f64(), "times of {doc}");
    }
    let traced: Vec<Value> = all.iter().filter(|d| d["trace_id"] == root).cloned().collect();

    // payments' invocation, under the facade, annotated.
    let invocation = child(&traced, "payments", &facade);
    let invocation_id = invocation["id"].as_str().unwrap();
    assert_eq!(invocation["annotations"]["service"], "payments", "{invocation}");
    assert_eq!(invocation["annotations"]["cold_start"], true, "{invocation}");
    assert_eq!(invocation["annotations"]["route"], "/payments", "{invocation}");
    assert_eq!(invocation["http"]["response"]["status"], 201, "{invocation}");
    assert!(invocation.get("fault").is_none_or(|f| f == false), "{invocation}");

    // Its DynamoDB calls: subsegments in namespace aws with operation and table.
    let sdk_calls: Vec<&Value> = traced
        .iter()
        .filter(|d| d["namespace"] == "aws" && descends(&traced, d, invocation_id))
        .collect();
    assert!(!sdk_calls.is_empty(), "payments' SDK calls in {traced:#?}");
    let payments_table = deployment.table_name("payments");
    for call in &sdk_calls {
        assert_eq!(call["name"], "DynamoDB", "{call}");
        assert!(
            call["aws"]["operation"].as_str().is_some_and(|o| !o.is_empty()),
            "{call}"
        );
    }
    assert!(
        sdk_calls
            .iter()
            .any(|c| c["aws"]["table_name"] == payments_table.as_str()),
        "a call on {payments_table} in {sdk_calls:#?}"
    );

    // The calls to accounts, and accounts' own invocation under them: one trace.
    let calls_to_accounts: Vec<&Value> = traced
        .iter()
        .filter(|d| d["name"] == "accounts" && d["namespace"] == "remote")
        .collect();
    assert!(!calls_to_accounts.is_empty(), "payments → accounts in {traced:#?}");
    for call in &calls_to_accounts {
        assert!(descends(&traced, call, invocation_id), "{call}");
        assert!(
            call["http"]["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&accounts_url)),
            "{call}"
        );
    }
    let served: Vec<&Value> = traced
        .iter()
        .filter(|d| d["name"] == "accounts" && d["annotations"]["service"] == "accounts")
        .collect();
    assert_eq!(
        served.len(),
        calls_to_accounts.len(),
        "one accounts invocation per call: {traced:#?}"
    );
    for invocation in &served {
        assert!(
            calls_to_accounts.iter().any(|c| c["id"] == invocation["parent_id"]),
            "accounts' invocation under payments' call: {invocation}"
        );
        let id = invocation["id"].as_str().unwrap();
        let its_calls: Vec<&Value> = traced
            .iter()
            .filter(|d| d["namespace"] == "aws" && descends(&traced, d, id))
            .collect();
        assert!(
            its_calls
                .iter()
                .any(|c| c["aws"]["table_name"] == deployment.table_name("accounts").as_str()),
            "accounts' DynamoDB calls: {its_calls:#?}"
        );
    }

    // The payment made while accounts was down: a fault, with the cause on the failed call.
    let failed: Vec<Value> = all.iter().filter(|d| d["trace_id"] == failed_root).cloned().collect();
    let failed_invocation = child(&failed, "payments", &failed_facade);
    assert_eq!(failed_invocation["fault"], true, "{failed_invocation}");
    assert_eq!(
        failed_invocation["http"]["response"]["status"], failed_status,
        "{failed_invocation}"
    );
    let failed_call = failed
        .iter()
        .find(|d| d["name"] == "accounts" && d["namespace"] == "remote")
        .unwrap_or_else(|| panic!("the failed call to accounts in {failed:#?}"));
    assert_eq!(failed_call["fault"], true, "{failed_call}");
    let cause = failed_call["cause"]["exceptions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(cause.contains("accounts unreachable"), "cause of {failed_call}");
}
