//! The hooks' fault matrix, through the real SDK clients and the local
//! stand-ins (`local_aws::codedeploy`, `local_aws::lambda` running the
//! `echo_lambda` function binary): each case ends with exactly one status
//! recorded by CodeDeploy (or the already-completed path), the right one,
//! before the deadline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collection_runner::collection::load_collection;
use collection_runner::variables::Scope;
use local_aws::codedeploy::{CodeDeploy, Fault, LambdaTarget};
use local_aws::lambda::LambdaInvoke;
use serde_json::json;
use traffic_gate::verdict::Reported;
use traffic_gate::{Clients, Gate, HookEvent, Phase, Plan, Plans, Settings};

const DEPLOYMENT: &str = "d-ABCDEF123";
const HOOK: &str = "hook-execution-1";

struct Stage {
    codedeploy: CodeDeploy,
    _lambda: LambdaInvoke,
    gate: Gate,
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn event() -> HookEvent {
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("codedeploy-lifecycle-event.json")).unwrap()).unwrap();
    let mut event = traffic_gate::parse_event(&raw).unwrap();
    event.deployment_id = DEPLOYMENT.into();
    event.lifecycle_event_hook_execution_id = HOOK.into();
    event
}

fn plan(before: &[&str]) -> Plan {
    let collection = load_collection(&data("echo-checks.postman_collection.json")).unwrap();
    Plan {
        service: String::from("echo"),
        collection: Arc::new(collection),
        environment: Scope::from_pairs([(String::from("stage"), json!("test"))]),
        environment_name: Some(String::from("test")),
        before_folders: before.iter().map(|f| (*f).to_owned()).collect(),
        after_folders: vec![String::from("post-traffic")],
        url_variable: String::from("echo_url"),
        live_url: None,
        variables: Vec::new(),
        function_timeout: ECHO_TIMEOUT,
    }
}

/// The echo function's deployed timeout: the default cold-start allowance.
const ECHO_TIMEOUT: Duration = Duration::from_secs(3);

/// CodeDeploy deploying `echo` 1 → 2, version 2 running with `env`, checked with `plan`.
async fn stage(phase: Phase, env: &[(&str, &str)], plan: Plan, settings: Settings) -> Stage {
    let binary = local_aws::process::build_example("echo_lambda").await.unwrap();
    let codedeploy = CodeDeploy::start().await.unwrap();
    let target = LambdaTarget {
        function_name: String::from("echo"),
        alias: String::from("live"),
        current_version: String::from("1"),
        target_version: String::from("2"),
    };
    codedeploy.add_deployment(DEPLOYMENT, target, &[HOOK]).await;
    let lambda = LambdaInvoke::start().await.unwrap();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    lambda.publish("echo", "2", &binary, &env).await.unwrap();
    lambda.alias("echo", "live", "2").await;
    let clients = Clients {
        lambda: aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await),
        ..Clients::new(&local_aws::sdk_config_at(codedeploy.endpoint()).await)
    };
    let mut plans = Plans::default();
    plans.insert("echo", plan);
    let gate = Gate {
        phase,
        plans,
        settings,
        clients,
        credentials: traffic_gate::credentials::Credentials::None,
        unusable: None,
    };
    Stage {
        codedeploy,
        _lambda: lambda,
        gate,
    }
}

fn settings() -> Settings {
    Settings {
        smoke_budget: Duration::from_millis(1500),
        deadline_margin: Duration::from_millis(1000),
        request_timeout: Duration::from_millis(1500),
        ..Settings::default()
    }
}

/// Runs the hook with `limit` until its deadline; checks it returned in time
/// and what CodeDeploy recorded.
async fn run(stage: &Stage, limit: Duration) -> (traffic_gate::Report, Vec<String>) {
    let deadline = Instant::now() + limit;
    let report = stage.gate.handle(&event(), deadline).await;
    assert!(Instant::now() <= deadline, "the hook answered after its deadline");
    let statuses = stage.codedeploy.statuses(DEPLOYMENT, HOOK).await;
    (report, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_target_succeeds() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(report.verdict, "{report:?}");
    assert_eq!(statuses, ["Succeeded"]);
    assert_eq!(report.reported, Some(Reported::Accepted { attempts: 1 }));
    assert_eq!(report.target.as_ref().map(|t| t.target_version.as_str()), Some("2"));
    assert_eq!(report.assertions.len(), 3, "{:?}", report.assertions);
    assert!(report.checks.iter().any(|c| c.name == "smoke" && c.passed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_traffic_checks_the_live_alias() {
    let stage = stage(Phase::AfterAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(report.verdict, "{report:?}");
    assert_eq!(statuses, ["Succeeded"]);
    assert_eq!(
        report.assertions.len(),
        1,
        "the post-traffic folder ran: {:?}",
        report.assertions
    );
}

async fn fails_with(env: &[(&str, &str)], before: &[&str], expected_reason: &str) {
    let stage = stage(Phase::BeforeAllowTraffic, env, plan(before), settings()).await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(!report.verdict);
    assert_eq!(statuses, ["Failed"], "{report:?}");
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(expected_reason),
        "reason {reason:?} should mention {expected_reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_answering_5xx_fails() {
    fails_with(
        &[("ECHO_HEALTH_STATUS", "503")],
        &["pre-traffic"],
        "/health answered 503",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_hanging_past_its_timeout_fails() {
    fails_with(&[("ECHO_HEALTH_DELAY_MS", "5000")], &["pre-traffic"], "ETIMEDOUT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_error_fails() {
    fails_with(
        &[("ECHO_HEALTH_PANIC", "1")],
        &["pre-traffic"],
        "function error (Unhandled)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_assertion_fails() {
    fails_with(&[], &["broken"], "1 failures").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_folder_fails() {
    fails_with(&[], &["no-such-folder"], "no folder named").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_without_a_plan_fails() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let mut gate = stage.gate.clone();
    gate.plans = Plans::default();
    let report = gate.handle(&event(), Instant::now() + Duration::from_secs(20)).await;
    assert!(!report.verdict);
    assert!(
        report
            .reason
            .unwrap_or_default()
            .contains("no checks are configured for function echo")
    );
    assert_eq!(stage.codedeploy.statuses(DEPLOYMENT, HOOK).await, ["Failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_reporting_another_version_fails() {
    fails_with(
        &[("AWS_LAMBDA_FUNCTION_VERSION", "1")],
        &["pre-traffic"],
        "expected the target version \"2\"",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codedeploy_throttling_twice_then_accepting() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    stage
        .codedeploy
        .fail_next("PutLifecycleEventHookExecutionStatus", 2, Fault::Throttle)
        .await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert_eq!(statuses, ["Succeeded"]);
    assert_eq!(report.reported, Some(Reported::Accepted { attempts: 3 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codedeploy_5xx_on_the_target_lookup_is_retried() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    stage
        .codedeploy
        .fail_next("ListDeploymentTargets", 2, Fault::ServerError)
        .await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(report.verdict, "{report:?}");
    assert_eq!(statuses, ["Succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codedeploy_failing_past_the_deadline_is_given_up_in_time() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    stage
        .codedeploy
        .fail_for(
            "PutLifecycleEventHookExecutionStatus",
            Duration::from_secs(60),
            Fault::ServerError,
        )
        .await;
    let (report, statuses) = run(&stage, Duration::from_secs(6)).await;
    assert!(statuses.is_empty());
    assert!(
        matches!(report.reported, Some(Reported::NotReported { .. })),
        "{:?}",
        report.reported
    );
    let attempts = stage
        .codedeploy
        .calls()
        .await
        .iter()
        .filter(|(op, _)| op == "PutLifecycleEventHookExecutionStatus")
        .count();
    assert!(attempts >= 3, "retried with backoff: {attempts} attempts");
}

/// Issue 18: a CodeDeploy call that hangs is given up after the per-attempt
/// timeout and retried, so one stalled call does not eat the hook's budget:
/// the target lookup and the verdict each meet one stall and still finish
/// long before the stall would have ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_codedeploy_call_is_given_up_and_retried() {
    let quick = Settings {
        call_timeout: Duration::from_millis(800),
        ..settings()
    };
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), quick).await;
    let stall = Fault::Stall(Duration::from_secs(60));
    for operation in ["ListDeploymentTargets", "PutLifecycleEventHookExecutionStatus"] {
        stage.codedeploy.fail_next(operation, 1, stall).await;
    }
    let started = Instant::now();
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(report.verdict, "{report:?}");
    assert_eq!(statuses, ["Succeeded"]);
    assert_eq!(report.reported, Some(Reported::Accepted { attempts: 2 }));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the stalls were cut short: {:?}",
        started.elapsed()
    );
    let calls = stage.codedeploy.calls().await;
    assert_eq!(
        calls.iter().filter(|(op, _)| op == "ListDeploymentTargets").count(),
        2,
        "the stalled lookup was retried: {calls:?}"
    );
}

/// Issue 18: the verdict's last attempt starts early enough to end before
/// the deadline even when every attempt stalls; the hook then says the
/// verdict was not delivered (the function turns that into a function error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_stalled_until_the_deadline_is_undelivered_in_time() {
    let quick = Settings {
        call_timeout: Duration::from_millis(1500),
        ..settings()
    };
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), quick).await;
    stage
        .codedeploy
        .fail_for(
            "PutLifecycleEventHookExecutionStatus",
            Duration::from_secs(60),
            Fault::Stall(Duration::from_secs(60)),
        )
        .await;
    let (report, statuses) = run(&stage, Duration::from_secs(8)).await;
    assert!(statuses.is_empty());
    let error = report.undelivered().unwrap_or_else(|| panic!("{:?}", report.reported));
    assert!(error.contains("no answer within"), "{error}");
}

/// Issue 18: a first answer slower than the smoke budget is the target's
/// cold start when it comes within the allowance (by default the function's
/// timeout); a warm answer is then held to the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_within_the_allowance_succeeds() {
    let stage = stage(
        Phase::BeforeAllowTraffic,
        &[("ECHO_FIRST_HEALTH_DELAY_MS", "2200")],
        plan(&["pre-traffic"]),
        settings(),
    )
    .await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(report.verdict, "{report:?}");
    assert_eq!(statuses, ["Succeeded"]);
    let smoke = report.checks.iter().find(|c| c.name == "smoke").expect("smoke check");
    // The allowance: the function's timeout plus Lambda's 10 s init limit.
    assert!(smoke.detail.contains("cold start, allowance 13000 ms"), "{smoke:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_beyond_the_allowance_fails_saying_so() {
    let strict = Settings {
        cold_start_allowance: Some(Duration::from_millis(1800)),
        ..settings()
    };
    let stage = stage(
        Phase::BeforeAllowTraffic,
        &[("ECHO_FIRST_HEALTH_DELAY_MS", "4000")],
        plan(&["pre-traffic"]),
        strict,
    )
    .await;
    let (report, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert!(!report.verdict);
    assert_eq!(statuses, ["Failed"]);
    let reason = report.reason.unwrap_or_default();
    assert!(
        reason.contains("no first answer within the 1800 ms cold-start allowance"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_slow_when_warm_fails_even_after_a_cold_start() {
    fails_with(
        &[("ECHO_HEALTH_DELAY_MS", "1700")],
        &["pre-traffic"],
        "warm, over the 1500 ms budget",
    )
    .await;
}

/// Issue 18: the version contract. A `/health` that does not say which
/// version answered fails, naming the field and where it comes from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_not_reporting_its_version_fails_naming_the_contract() {
    fails_with(
        &[("ECHO_HEALTH_FUNCTION_VERSION", "-")],
        &["pre-traffic"],
        "/health does not report function_version",
    )
    .await;
    fails_with(
        &[("ECHO_HEALTH_FUNCTION_VERSION", "2")],
        &["pre-traffic"],
        "/health reports function_version as 2, not as a string",
    )
    .await;
}

/// Found by the attack on issue 18: a CodeDeploy that answers, but slower
/// than the per-attempt timeout, is waited for longer at each retry; a
/// healthy release ships, delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codedeploy_slower_than_the_call_timeout_is_waited_for() {
    use local_aws::faults::{Fault as ProxyFault, FaultProxy, Rule};
    let mut stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let slow = FaultProxy::start(stage.codedeploy.endpoint()).await.unwrap();
    slow.set(vec![Rule::always(ProxyFault::Stall(Duration::from_millis(1300)))])
        .await;
    stage.gate.settings.call_timeout = Duration::from_millis(1000);
    stage.gate.clients.codedeploy = Clients::new(&local_aws::sdk_config_at(slow.url()).await).codedeploy;
    let (report, statuses) = run(&stage, Duration::from_secs(30)).await;
    assert!(report.verdict, "{report:?}");
    assert_eq!(statuses, ["Succeeded"]);
    assert!(report.undelivered().is_none(), "{:?}", report.reported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvoked_after_reporting_is_already_completed() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let (first, _) = run(&stage, Duration::from_secs(20)).await;
    assert_eq!(first.reported, Some(Reported::Accepted { attempts: 1 }));
    let (second, statuses) = run(&stage, Duration::from_secs(20)).await;
    assert_eq!(second.reported, Some(Reported::AlreadyCompleted));
    assert_eq!(statuses, ["Succeeded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_checks_fail() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let report = stage
        .gate
        .conclude(&event(), deadline, async { panic!("a check blew up") })
        .await;
    assert!(!report.verdict);
    assert!(report.reason.unwrap_or_default().contains("a check blew up"));
    assert_eq!(stage.codedeploy.statuses(DEPLOYMENT, HOOK).await, ["Failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_still_running_at_the_deadline_fail_before_it() {
    let stage = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let deadline = Instant::now() + Duration::from_secs(4);
    let report = stage.gate.conclude(&event(), deadline, std::future::pending()).await;
    assert!(Instant::now() <= deadline);
    assert_eq!(stage.codedeploy.statuses(DEPLOYMENT, HOOK).await, ["Failed"]);
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("before the function's deadline"), "{reason}");
}

/// Found in review of issue 18: a `/health` that outlasts the checks' time
/// fails as the smoke check, keeping what was found (target and service),
/// instead of as checks cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_outlasting_the_checks_fails_as_the_smoke_check() {
    let slow = Settings {
        smoke_budget: Duration::from_secs(30),
        ..settings()
    };
    let stage = stage(
        Phase::BeforeAllowTraffic,
        &[("ECHO_HEALTH_DELAY_MS", "20000")],
        plan(&["pre-traffic"]),
        slow,
    )
    .await;
    let (report, statuses) = run(&stage, Duration::from_secs(5)).await;
    assert_eq!(statuses, ["Failed"]);
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with("smoke: /health gave no first answer in the") && reason.contains("ms the checks had left"),
        "{reason}"
    );
    assert_eq!(report.service.as_deref(), Some("echo"), "{report:?}");
    assert!(report.target.is_some(), "{report:?}");
}

#[test]
fn an_unparseable_event_is_an_error_with_its_payload() {
    for raw in [
        json!({"hello": "world"}),
        json!({"DeploymentId": "", "LifecycleEventHookExecutionId": "x"}),
        json!([1, 2]),
    ] {
        let err = traffic_gate::parse_event(&raw).unwrap_err().to_string();
        assert!(err.contains(&raw.to_string()), "{err}");
    }
}

/// The hooks' identity: a token from the local user pool's token endpoint
/// (client credentials, as Cognito's `/oauth2/token`) when the client is
/// right; a `Failed` verdict naming what went wrong, and never the client's
/// secret, when it is refused, unreachable or not configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checks_run_with_the_hooks_token_or_fail_saying_why() {
    use std::sync::Arc;

    use traffic_gate::credentials::Credentials;
    let sdk = local_aws::test_sdk_config().await;
    let deployment = shared::naming::Deployment::new(local_aws::unique("h"), "test");
    let services = local_aws::registry::load().expect("registry");
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .expect("user pool");
    let with = |token_url: &str, secret: &str| {
        let source = |scopes: Vec<String>| {
            Arc::new(local_aws::identity::token_source(
                &sdk,
                token_url,
                &identity.machine_client_id,
                secret,
                scopes,
            ))
        };
        Credentials::ClientCredentials {
            customer: source(identity.customer_scopes.clone()),
            service: source(identity.service_scopes()),
        }
    };
    let good = with(&identity.token_url, &identity.machine_client_secret);
    let healthy = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
    let mut gate = healthy.gate.clone();
    gate.credentials = good.clone();
    let report = gate.handle(&event(), Instant::now() + Duration::from_secs(20)).await;
    assert!(report.verdict, "{report:?}");
    assert!(
        report.checks.iter().any(|c| c.name == "credential" && c.passed),
        "{report:?}"
    );
    let tokens = good
        .tokens(Duration::from_secs(5), Instant::now() + Duration::from_secs(5))
        .await
        .expect("tokens")
        .expect("tokens, not none");
    let verifier = shared::auth::Verifier::load(identity.settings.clone(), reqwest::Client::new()).await;
    let customer = verifier
        .verify(tokens.access.expose())
        .await
        .expect("the hooks' token verifies");
    assert_eq!(customer.client_id, identity.machine_client_id);
    assert!(
        !customer
            .scopes
            .iter()
            .any(|s| s.ends_with("/service") || s.ends_with("/back-office")),
        "the customer-scoped token is no service: {:?}",
        customer.scopes
    );
    let service = verifier
        .verify(tokens.service.expose())
        .await
        .expect("the service token verifies");
    assert_eq!(
        service.scopes,
        [
            "accounts/back-office",
            "accounts/service",
            "payments/back-office",
            "payments/service"
        ]
    );

    let wrong_secret = "not-the-secret-0123456789";
    for (credentials, expected) in [
        (with(&identity.token_url, wrong_secret), "refused client"),
        (
            with("http://127.0.0.1:9/oauth2/token", wrong_secret),
            "could not be reached",
        ),
        (
            Credentials::Unusable(String::from("no token endpoint: set token_url")),
            "no token endpoint",
        ),
    ] {
        let refused = stage(Phase::BeforeAllowTraffic, &[], plan(&["pre-traffic"]), settings()).await;
        let mut gate = refused.gate.clone();
        gate.credentials = credentials;
        let report = gate.handle(&event(), Instant::now() + Duration::from_secs(20)).await;
        assert!(!report.verdict, "{report:?}");
        assert_eq!(refused.codedeploy.statuses(DEPLOYMENT, HOOK).await, ["Failed"]);
        let reason = report.reason.clone().unwrap_or_default();
        assert!(reason.contains(expected), "{reason:?} should say {expected:?}");
        assert!(
            !format!("{report:?}").contains(wrong_secret),
            "the secret leaked: {report:?}"
        );
        assert!(report.assertions.is_empty(), "no collection ran without a token");
    }
}
