//! X-Ray end to end, through the real binaries: payments runs as a Lambda
//! function under the local Runtime API, in lambda_runtime's concurrent mode
//! (`AWS_LAMBDA_MAX_CONCURRENCY=2`, where `_X_AMZN_TRACE_ID` is not set), and
//! is handed a trace header whose `Parent` is the facade segment, as Lambda
//! does with active tracing; accounts runs as an HTTP server. Both send
//! segment documents to a loopback UDP socket standing in for the X-Ray
//! daemon. Two payments at once, a refused request, then one payment made
//! while accounts is down must give: the daemon header on every datagram,
//! valid ids, each invocation under its own facade, one trace id across
//! payments and accounts, the DynamoDB calls with their operations, tables,
//! region and request ids, the refused request an error (not a fault) and
//! the failed one a fault with its cause.

use std::time::Duration;

use local_aws::runtime_api::{Outcome, RuntimeApi};
use local_aws::xray::{Daemon, descends, segment_id, trace_header};
use serde_json::{Value, json};
use shared::naming::Deployment;

/// An API Gateway REST (payload 1.0) proxy event from a customer holding `token`.
fn event(method: &str, path: &str, body: &Value, idempotency_key: &str, token: &str) -> Vec<u8> {
    let authorization = format!("Bearer {token}");
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json", "idempotency-key": idempotency_key, "authorization": authorization},
        "multiValueHeaders": {"content-type": ["application/json"], "idempotency-key": [idempotency_key], "authorization": [authorization]},
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

/// A payment of 250 EUR from `from` to `to`.
fn payment(from: &str, to: &str) -> Value {
    json!({"from_account": from, "to_account": to, "amount_minor": 250, "currency": "EUR", "reference": "traced"})
}

/// Invokes `POST /payments` with `body` and `trace`; returns the proxy response's status.
async fn pay(api: &RuntimeApi, trace: &str, body: &Value, token: &str) -> u16 {
    let event = event("POST", "/payments", body, &uuid::Uuid::new_v4().to_string(), token);
    match api
        .invoke_traced(event.into(), Some(trace), Duration::from_secs(4))
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
    local_aws::seed::seed(&sdk, &deployment, &services).await.expect("seed");
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .expect("user pool");
    let customer = identity.customer(&sdk, "traced").await.expect("a customer");
    let (accounts_state, _) = accounts::init(&sdk, &deployment, identity.settings.clone())
        .await
        .expect("accounts init");
    let open = |balance: u64| {
        let (store, owner) = (accounts_state.store.clone(), customer.subject.clone());
        async move {
            use accounts::domain::{Direction, NewAccount, Posting};
            let account = store
                .open(NewAccount::parse(&owner, accounts::domain::Records::Customers, "Traced", "EUR").unwrap())
                .await
                .unwrap();
            if balance > 0 {
                let seed = Posting::parse(Direction::Credit, balance, "EUR", "seed", u64::MAX).unwrap();
                store
                    .post(account.id, &seed, accounts::domain::Records::Customers)
                    .await
                    .unwrap();
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
    .chain(identity.env())
    .collect();
    let accounts_binary = local_aws::process::build_binary("accounts").await.unwrap();
    let (mut accounts, accounts_url) = local_aws::process::serve(&accounts_binary, &env, None).await.unwrap();

    let payments_binary = std::path::Path::new(env!("CARGO_BIN_EXE_payments"));
    let mut api = RuntimeApi::start().await.unwrap();
    let mut payments_env = env.clone();
    payments_env.extend([
        (String::from("AWS_LAMBDA_MAX_CONCURRENCY"), String::from("2")),
        (shared::config::override_var("accounts_url"), accounts_url.clone()),
        (shared::config::override_var("give_up_after_seconds"), String::from("1")),
        (shared::config::override_var("retry_base_ms"), String::from("50")),
        (shared::config::override_var("retry_max_ms"), String::from("200")),
        (
            shared::config::override_var("accounts_timeout_ms"),
            String::from("1000"),
        ),
    ]);
    let _payments = api
        .spawn(payments_binary, "payments", "1", &payments_env)
        .expect("payments starts");
    api.next_poll(Duration::from_secs(60)).await.expect("payments polls");

    // Two payments at once, each under its own facade.
    let facades = [segment_id(), segment_id()];
    let headers = [trace_header(&facades[0]), trace_header(&facades[1])];
    let body = payment(&from, &to);
    let token = &customer.access_token;
    let statuses = tokio::join!(
        pay(&api, &headers[0].1, &body, token),
        pay(&api, &headers[1].1, &body, token)
    );
    assert_eq!(statuses, (201, 201));
    let refused_facade = segment_id();
    let (refused_root, refused_header) = trace_header(&refused_facade);
    let refused =
        json!({"from_account": from, "to_account": to, "amount_minor": 0, "currency": "EUR", "reference": "traced"});
    assert_eq!(pay(&api, &refused_header, &refused, token).await, 422);
    accounts.kill().await.expect("accounts stops");
    let failed_facade = segment_id();
    let (failed_root, failed_header) = trace_header(&failed_facade);
    let failed_status = pay(&api, &failed_header, &body, token).await;
    assert_eq!(
        failed_status, 202,
        "a payment without accounts is accepted, to be finished later"
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
    let of_trace = |root: &str| -> Vec<Value> { all.iter().filter(|d| d["trace_id"] == root).cloned().collect() };
    let mut cold_starts = 0;
    for ((root, _), facade) in headers.iter().zip(&facades) {
        let traced = of_trace(root);
        cold_starts += usize::from(check_payment(&traced, facade, &deployment, &accounts_url));
    }
    assert_eq!(
        cold_starts, 1,
        "exactly one of the first two invocations is the cold start"
    );

    // The refused request: an error (4xx), not a fault, with its SDK calls.
    let refused = of_trace(&refused_root);
    let refused_invocation = child(&refused, "payments", &refused_facade);
    assert_eq!(refused_invocation["error"], true, "{refused_invocation}");
    assert!(
        refused_invocation.get("fault").is_none_or(|f| f == false),
        "{refused_invocation}"
    );
    assert_eq!(
        refused_invocation["http"]["response"]["status"], 422,
        "{refused_invocation}"
    );

    // The payment made while accounts was down: accepted (not a fault:
    // nothing failed for the customer yet), with the cause on each failed call.
    let failed = of_trace(&failed_root);
    let failed_invocation = child(&failed, "payments", &failed_facade);
    let failed_id = failed_invocation["id"].as_str().unwrap();
    assert!(
        failed_invocation.get("fault").is_none_or(|f| f == false),
        "{failed_invocation}"
    );
    assert_eq!(
        failed_invocation["http"]["response"]["status"], failed_status,
        "{failed_invocation}"
    );
    let failed_calls: Vec<&Value> = failed
        .iter()
        .filter(|d| d["name"] == "accounts" && d["namespace"] == "remote")
        .collect();
    assert!(!failed_calls.is_empty(), "the failed calls to accounts in {failed:#?}");
    for call in &failed_calls {
        assert!(descends(&failed, call, failed_id), "{call}");
        assert_eq!(call["fault"], true, "{call}");
        let cause = call["cause"]["exceptions"][0]["message"].as_str().unwrap_or_default();
        assert!(cause.contains("accounts could not be reached"), "cause of {call}");
    }
}

/// One successful payment's trace: the invocation under `facade`, annotated;
/// its DynamoDB calls directly under it; its calls to accounts, each with
/// accounts' invocation (and accounts' own DynamoDB calls) under it. Returns
/// whether the invocation was a cold start.
fn check_payment(traced: &[Value], facade: &str, deployment: &Deployment, accounts_url: &str) -> bool {
    let invocation = child(traced, "payments", facade);
    let invocation_id = invocation["id"].as_str().unwrap();
    assert_eq!(invocation["annotations"]["service"], "payments", "{invocation}");
    assert_eq!(invocation["annotations"]["route"], "/payments", "{invocation}");
    assert_eq!(invocation["http"]["response"]["status"], 201, "{invocation}");
    assert!(invocation.get("fault").is_none_or(|f| f == false), "{invocation}");
    assert!(invocation.get("error").is_none_or(|f| f == false), "{invocation}");
    let cold_start = invocation["annotations"]["cold_start"]
        .as_bool()
        .unwrap_or_else(|| panic!("cold_start annotation on {invocation}"));

    // Its own DynamoDB calls (not accounts', which are further down the
    // same trace): subsegments in namespace aws, directly under the
    // invocation, with operation, table, region and request id.
    let calls_to_accounts: Vec<&Value> = traced
        .iter()
        .filter(|d| d["name"] == "accounts" && d["namespace"] == "remote")
        .collect();
    let sdk_calls: Vec<&Value> = traced
        .iter()
        .filter(|d| {
            d["namespace"] == "aws"
                && descends(traced, d, invocation_id)
                && !calls_to_accounts
                    .iter()
                    .any(|call| descends(traced, d, call["id"].as_str().unwrap_or_default()))
        })
        .collect();
    assert!(!sdk_calls.is_empty(), "payments' SDK calls in {traced:#?}");
    for call in &sdk_calls {
        assert_eq!(call["name"], "DynamoDB", "{call}");
        assert_eq!(call["parent_id"], invocation_id, "{call}");
        assert_eq!(call["aws"]["region"], "us-east-1", "{call}");
        assert!(
            call["aws"]["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{call}"
        );
    }
    let payments_table = deployment.table_name("payments");
    let idempotency_table = deployment.table_name("idempotency");
    for table in [&payments_table, &idempotency_table] {
        assert!(
            sdk_calls
                .iter()
                .any(|c| c["aws"]["operation"] == "PutItem" && c["aws"]["table_name"] == table.as_str()),
            "a PutItem on {table} in {sdk_calls:#?}"
        );
    }

    // The calls to accounts, and accounts' own invocation under them: one trace.
    assert!(!calls_to_accounts.is_empty(), "payments → accounts in {traced:#?}");
    for call in &calls_to_accounts {
        assert!(descends(traced, call, invocation_id), "{call}");
        assert!(
            call["http"]["request"]["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(accounts_url)),
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
            .filter(|d| d["namespace"] == "aws" && descends(traced, d, id))
            .collect();
        assert!(
            its_calls
                .iter()
                .any(|c| c["aws"]["table_name"] == deployment.table_name("accounts").as_str()),
            "accounts' DynamoDB calls: {its_calls:#?}"
        );
    }

    cold_start
}
