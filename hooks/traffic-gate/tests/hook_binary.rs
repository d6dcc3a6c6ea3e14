//! The hook binaries end to end, as Lambda runs them: `before-allow-traffic`
//! runs under a local Lambda Runtime API behind the local Lambda Invoke
//! endpoint and is invoked with CodeDeploy's event; its SDK clients reach the
//! stand-ins only through `AWS_ENDPOINT_URL_CODEDEPLOY` and
//! `AWS_ENDPOINT_URL_LAMBDA`. The deployed "accounts" version is really
//! `echo_lambda`, so `/health` passes and the accounts collection fails: the
//! binary must report exactly one `Failed`, with the reason, in time (its
//! own token from the local user pool's token endpoint, with its client
//! from Secrets Manager, while SSM is unreachable) — and
//! trace it: the hook, each check, each collection request and each SDK
//! call are X-Ray subsegments under the invoking segment, sent to a local
//! daemon stand-in.

use std::path::Path;
use std::time::Duration;

use local_aws::codedeploy::{CodeDeploy, LambdaTarget};
use local_aws::lambda::LambdaInvoke;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reports_the_verdict_through_the_endpoint_variables() {
    let echo = local_aws::process::build_example("echo_lambda").await.unwrap();
    let daemon = local_aws::xray::Daemon::start().await.unwrap();
    let codedeploy = deploying_accounts("d-BIN").await;
    let lambda = LambdaInvoke::start().await.unwrap();
    lambda.publish("accounts", "2", &echo, &[]).await.unwrap();
    // The hooks' client where infra puts it (the pool's seeding puts it in
    // Secrets Manager); the token endpoint comes from the configuration's
    // override, SSM being down.
    let sdk = local_aws::test_sdk_config().await;
    let app = local_aws::unique("hook");
    let deployment = shared::naming::Deployment::new(&app, "local");
    let services = local_aws::registry::load().unwrap();
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .unwrap();
    let secrets_endpoint = local_aws::test_endpoint();
    let token_url = shared::config::override_var("token_url");
    let mut env = hook_env(&codedeploy, &lambda);
    env.extend(pairs(&[
        ("APP_NAME", app.as_str()),
        ("STAGE", "local"),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_endpoint.as_str()),
        (token_url.as_str(), identity.token_url.as_str()),
        ("CONFIG_DEADLINE_MARGIN_MS", "2000"),
        ("AWS_XRAY_DAEMON_ADDRESS", daemon.address().unwrap().as_str()),
    ]));
    let hook = Path::new(env!("CARGO_BIN_EXE_before-allow-traffic"));
    lambda.publish("before-allow-traffic", "1", hook, &env).await.unwrap();
    let client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);

    let event = json!({"DeploymentId": "d-BIN", "LifecycleEventHookExecutionId": "hook-1"});
    let caller = local_aws::xray::segment_id();
    let (root, trace) = local_aws::xray::trace_header(&caller);
    let started = std::time::Instant::now();
    let output = client
        .invoke()
        .function_name("before-allow-traffic")
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .customize()
        .mutate_request(move |request| {
            request.headers_mut().insert("x-amzn-trace-id", trace.clone());
        })
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(output.function_error(), None);
    let answer: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer["verdict"], "Failed", "{answer}");
    assert!(
        answer["reason"].as_str().unwrap_or_default().starts_with("collection:"),
        "{answer}"
    );
    assert_eq!(codedeploy.statuses("d-BIN", "hook-1").await, ["Failed"]);
    let docs = assert_traced(&daemon, &root, &caller).await;
    // The SDK sent the Invoke subsegment's own id downstream as the parent.
    let invoke = docs
        .iter()
        .find(|d| d["aws"]["operation"] == "Invoke" && d["annotations"]["function_name"] == "accounts")
        .expect("the invoke of accounts");
    let expected = format!("Root={root};Parent={}", invoke["id"].as_str().unwrap());
    let received = lambda.trace_headers("accounts").await;
    assert!(
        received.iter().flatten().any(|header| header.starts_with(&expected)),
        "{expected} in {received:?}"
    );

    let garbage = client
        .invoke()
        .function_name("before-allow-traffic")
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"not": "codedeploy"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(
        garbage.function_error(),
        Some("Unhandled"),
        "an unparseable event is a function error"
    );
    let calls = codedeploy.calls().await;
    assert_eq!(
        calls
            .iter()
            .filter(|(op, _)| op == "PutLifecycleEventHookExecutionStatus")
            .count(),
        1,
        "{calls:?}"
    );
}

/// What every hook process here runs with: a region and local
/// credentials, SSM unreachable (the hook must start anyway), CodeDeploy
/// and Lambda at the stand-ins.
fn hook_env(codedeploy: &CodeDeploy, lambda: &LambdaInvoke) -> Vec<(String, String)> {
    pairs(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.endpoint()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda.endpoint()),
    ])
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A CodeDeploy stand-in with deployment `id` of accounts 1 → 2 behind
/// `live`, whose BeforeAllowTraffic execution is `hook-1`.
async fn deploying_accounts(id: &str) -> CodeDeploy {
    let codedeploy = CodeDeploy::start().await.unwrap();
    let target = LambdaTarget {
        function_name: String::from("accounts"),
        alias: String::from("live"),
        current_version: String::from("1"),
        target_version: String::from("2"),
    };
    codedeploy.add_deployment(id, target, &["hook-1"]).await;
    codedeploy
}

/// Issue 18: init never fails. Without `STAGE` the hook cannot know its
/// checks, and still answers CodeDeploy: one `Failed`, saying which
/// variable is missing, instead of a deployment waiting out the hook timeout.
#[tokio::test]
async fn a_hook_missing_its_environment_reports_failed_saying_why() {
    let codedeploy = deploying_accounts("d-NOSTAGE").await;
    let lambda = LambdaInvoke::start().await.unwrap();
    let mut env = hook_env(&codedeploy, &lambda);
    env.extend(pairs(&[("APP_NAME", "fintech")]));
    let hook = Path::new(env!("CARGO_BIN_EXE_before-allow-traffic"));
    lambda.publish("before-allow-traffic", "1", hook, &env).await.unwrap();
    let client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);
    let event = json!({"DeploymentId": "d-NOSTAGE", "LifecycleEventHookExecutionId": "hook-1"});
    let output = client
        .invoke()
        .function_name("before-allow-traffic")
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(output.function_error(), None, "init did not fail");
    let answer: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    assert_eq!(answer["verdict"], "Failed", "{answer}");
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("configuration:") && reason.contains("STAGE"),
        "{answer}"
    );
    assert_eq!(codedeploy.statuses("d-NOSTAGE", "hook-1").await, ["Failed"]);
}

/// The hook's trace: its subsegment under `caller`, failed; the checks under
/// it (the collection one a fault with its cause); the collection's requests
/// under that; the CodeDeploy and Lambda calls as `aws` subsegments with
/// their region and request id. Returns the trace's documents.
async fn assert_traced(daemon: &local_aws::xray::Daemon, root: &str, caller: &str) -> Vec<Value> {
    use local_aws::xray::descends;
    let docs: Vec<Value> = daemon
        .documents(Duration::from_millis(1000))
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d["trace_id"] == root)
        .collect();
    let hooks: Vec<&Value> = docs.iter().filter(|d| d["parent_id"] == caller).collect();
    assert_eq!(hooks.len(), 1, "one hook subsegment under the caller: {docs:#?}");
    let hook = hooks[0];
    assert_eq!(hook["name"], "BeforeAllowTraffic", "{hook}");
    assert_eq!(hook["annotations"]["verdict"], "Failed", "{hook}");
    assert_eq!(hook["annotations"]["deployment_id"], "d-BIN", "{hook}");
    assert_eq!(hook["fault"], true, "{hook}");
    let hook_id = hook["id"].as_str().unwrap();
    let check = |name: &str| {
        docs.iter()
            .find(|d| d["name"] == name && d["annotations"]["check"] == name && descends(&docs, d, hook_id))
            .unwrap_or_else(|| panic!("check {name} under the hook: {docs:#?}"))
    };
    for name in ["target", "smoke"] {
        assert!(check(name).get("fault").is_none(), "{}", check(name));
    }
    let collection = check("collection");
    assert_eq!(collection["fault"], true, "{collection}");
    assert!(
        collection["cause"]["exceptions"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("failures")),
        "{collection}"
    );
    let collection_id = collection["id"].as_str().unwrap();
    let requests: Vec<&Value> = docs
        .iter()
        .filter(|d| d["http"]["request"]["method"].is_string() && descends(&docs, d, collection_id))
        .collect();
    assert!(!requests.is_empty(), "collection requests under the check: {docs:#?}");
    let sdk_calls: Vec<&Value> = docs
        .iter()
        .filter(|d| d["namespace"] == "aws" && descends(&docs, d, hook_id))
        .collect();
    for call in &sdk_calls {
        assert_eq!(call["aws"]["region"], "us-east-1", "{call}");
        // SSM is unreachable here: the hook's read of its configuration at
        // the event is traced as a fault with its cause, and has no request id.
        if call["aws"]["operation"] == "GetParametersByPath" {
            assert_eq!(call["fault"], true, "{call}");
            continue;
        }
        assert!(
            call["aws"]["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{call}"
        );
    }
    let operations: Vec<&str> = sdk_calls
        .iter()
        .filter_map(|d| d["aws"]["operation"].as_str())
        .collect();
    for operation in [
        "ListDeploymentTargets",
        "GetDeploymentTarget",
        "Invoke",
        "PutLifecycleEventHookExecutionStatus",
    ] {
        assert!(operations.contains(&operation), "{operation} in {operations:?}");
    }
    assert!(
        docs.iter()
            .any(|d| d["aws"]["operation"] == "Invoke" && d["annotations"]["function_name"] == "accounts"),
        "the invoke of accounts names it: {docs:#?}"
    );
    docs
}

/// A hook process for deployment `id` of accounts, as the first test runs
/// it: its client in Secrets Manager at `secrets_endpoint`, its token
/// endpoint from the configuration's override (SSM being down).
async fn seeded_hook_env(
    codedeploy: &CodeDeploy,
    lambda: &LambdaInvoke,
    secrets_endpoint: &str,
) -> Vec<(String, String)> {
    let sdk = local_aws::test_sdk_config().await;
    let app = local_aws::unique("hook");
    let deployment = shared::naming::Deployment::new(&app, "local");
    let services = local_aws::registry::load().unwrap();
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .unwrap();
    let mut env = hook_env(codedeploy, lambda);
    env.extend(pairs(&[
        ("APP_NAME", app.as_str()),
        ("STAGE", "local"),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets_endpoint),
        (
            shared::config::override_var("token_url").as_str(),
            identity.token_url.as_str(),
        ),
        ("CONFIG_DEADLINE_MARGIN_MS", "2000"),
    ]));
    env
}

/// Issue 18: a verdict CodeDeploy does not accept before the deadline ends
/// the invocation with a function error and a `HookVerdictUndelivered`
/// metric, so Lambda's retry of the asynchronous invocation runs the hook
/// again — and that one delivers the verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_verdict_is_a_function_error_and_the_retry_delivers_it() {
    let echo = local_aws::process::build_example("echo_lambda").await.unwrap();
    let codedeploy = deploying_accounts("d-UNDELIVERED").await;
    let lambda = LambdaInvoke::start().await.unwrap();
    lambda.publish("accounts", "2", &echo, &[]).await.unwrap();
    let env = seeded_hook_env(&codedeploy, &lambda, &local_aws::test_endpoint()).await;
    let hook = Path::new(env!("CARGO_BIN_EXE_before-allow-traffic"));
    lambda.publish("before-allow-traffic", "1", hook, &env).await.unwrap();
    lambda.set_timeout("before-allow-traffic", Duration::from_secs(8)).await;
    lambda
        .set_async_retry_delays(vec![Duration::from_secs(5), Duration::from_secs(5)])
        .await;
    codedeploy
        .fail_for(
            "PutLifecycleEventHookExecutionStatus",
            Duration::from_secs(10),
            local_aws::codedeploy::Fault::ServerError,
        )
        .await;
    let client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);
    let event = json!({"DeploymentId": "d-UNDELIVERED", "LifecycleEventHookExecutionId": "hook-1"});
    let accepted = client
        .invoke()
        .function_name("before-allow-traffic")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status_code(), 202);
    let mut statuses = Vec::new();
    for _ in 0..120 {
        statuses = codedeploy.statuses("d-UNDELIVERED", "hook-1").await;
        if !statuses.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(statuses, ["Failed"], "the retry delivered the verdict");
    let endings: Vec<_> = lambda
        .invocations()
        .await
        .into_iter()
        .filter(|i| i.function == "before-allow-traffic")
        .map(|i| i.ending)
        .collect();
    use local_aws::lambda::metrics::Ending;
    assert_eq!(
        endings.first(),
        Some(&Ending::FunctionError),
        "the undelivered verdict was a function error: {endings:?}"
    );
    assert_eq!(endings.last(), Some(&Ending::Answered), "{endings:?}");
    let undelivered: Vec<f64> = lambda
        .logs("before-allow-traffic")
        .await
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|doc| doc["HookVerdictUndelivered"].as_f64())
        .collect();
    assert_eq!(
        undelivered.first(),
        Some(&1.0),
        "the first invocation counted it: {undelivered:?}"
    );
    assert_eq!(undelivered.last(), Some(&0.0), "{undelivered:?}");
}

/// Issue 18: the hooks' client secret unreadable at init (Secrets Manager
/// failing while the sandbox starts) is read again at the event, so the
/// checks run with the hooks' token instead of failing a healthy release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_unreadable_at_init_is_read_again_at_the_event() {
    use local_aws::faults::{Fault, FaultProxy, Match, Rule};
    let echo = local_aws::process::build_example("echo_lambda").await.unwrap();
    let codedeploy = deploying_accounts("d-SECRET").await;
    let lambda = LambdaInvoke::start().await.unwrap();
    lambda.publish("accounts", "2", &echo, &[]).await.unwrap();
    let proxy = FaultProxy::start(&local_aws::test_endpoint()).await.unwrap();
    proxy
        .set(vec![Rule {
            only: Match::Target(String::from("secretsmanager.")),
            fault: Fault::Status(500),
            percent: 100,
        }])
        .await;
    let env = seeded_hook_env(&codedeploy, &lambda, proxy.url()).await;
    let hook = Path::new(env!("CARGO_BIN_EXE_before-allow-traffic"));
    lambda.publish("before-allow-traffic", "1", hook, &env).await.unwrap();
    assert!(proxy.injected() > 0, "Secrets Manager failed during init");
    proxy.clear().await;
    let client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);
    let event = json!({"DeploymentId": "d-SECRET", "LifecycleEventHookExecutionId": "hook-1"});
    let output = client
        .invoke()
        .function_name("before-allow-traffic")
        .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(output.function_error(), None);
    let answer: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    // The accounts "version" is echo_lambda: the collection fails, but only
    // after the credential check passed with a token for the hooks' client.
    assert!(
        answer["reason"].as_str().unwrap_or_default().starts_with("collection:"),
        "the credential check passed: {answer}"
    );
    assert_eq!(codedeploy.statuses("d-SECRET", "hook-1").await, ["Failed"]);
}
