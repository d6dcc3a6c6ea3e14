//! The hooks' own configuration and client secret as `Hook` reads them:
//! from SSM and Secrets Manager (moto, behind a fault proxy) at init and
//! again at an event, bounded in time, with a reason that names what is
//! wrong — cases found by the attack on issue 18.

use std::time::{Duration, Instant};

use local_aws::faults::{Fault, FaultProxy, Match, Rule};
use traffic_gate::Phase;
use traffic_gate::lambda::{CONFIG_NAME, Hook, READ_LIMIT};

/// A deployment of its own, with `params` under the hooks' prefix in SSM.
async fn deployment(params: &[(&str, &str)]) -> shared::naming::Deployment {
    let sdk = local_aws::test_sdk_config().await;
    let ssm = shared::aws::ssm(&sdk);
    let deployment = shared::naming::Deployment::new(local_aws::unique("hc"), "dev");
    let prefix = deployment.config_prefix(CONFIG_NAME);
    for (key, value) in params {
        local_aws::seed::put_parameter(&ssm, &format!("{prefix}{key}"), value, false)
            .await
            .unwrap();
    }
    deployment
}

/// SSM stalled (and Secrets Manager too): init returns within the read
/// limit, and so does the gate at an event, whose reason then says the
/// configuration could not be read rather than blaming a missing key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_ssm_and_secrets_manager_cost_a_bounded_wait_and_say_so() {
    let deployment = deployment(&[("token_url", "https://auth.example/oauth2/token")]).await;
    let proxy = FaultProxy::start(&local_aws::test_endpoint()).await.unwrap();
    let stall = |target: &str| Rule {
        only: Match::Target(target.to_owned()),
        fault: Fault::Stall(Duration::from_secs(60)),
        percent: 100,
    };
    proxy.set(vec![stall("AmazonSSM."), stall("secretsmanager.")]).await;
    let sdk = local_aws::sdk_config_at(proxy.url()).await;
    let started = Instant::now();
    let hook = Hook::load(Phase::BeforeAllowTraffic, &sdk, Ok(deployment)).await;
    assert!(
        started.elapsed() < READ_LIMIT + Duration::from_secs(2),
        "init waited {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let gate = hook.gate(Instant::now() + Duration::from_secs(20)).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the event waited {:?}",
        started.elapsed()
    );
    let reason = format!("{:?}", gate.credentials);
    assert!(
        reason.contains("configuration unreadable") && reason.contains("no answer within"),
        "{reason}"
    );
}

/// A value out of range, in SSM or in a `CONFIG_*` override, fails every
/// check naming the key and the range, instead of running on defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_values_fail_naming_the_key_and_the_range() {
    let sdk = local_aws::test_sdk_config().await;
    for (params, expected) in [
        (
            vec![("call_timeout_ms", "0")],
            "call_timeout_ms = 0: expected 100 to 60000",
        ),
        (
            vec![("smoke_budget_ms", "0"), ("payload_format", "soap")],
            "smoke_budget_ms = 0: expected 50 to 900000; payload_format = \"soap\"",
        ),
        (vec![("smoke_budget_ms", "-1")], "smoke_budget_ms"),
    ] {
        let deployment = deployment(&params).await;
        let hook = Hook::load(Phase::BeforeAllowTraffic, &sdk, Ok(deployment)).await;
        let gate = hook.gate(Instant::now() + Duration::from_secs(20)).await;
        let reason = gate.unusable.clone().unwrap_or_default();
        assert!(
            reason.starts_with("configuration") && reason.contains(expected),
            "{params:?}: {reason:?}"
        );
    }
}

/// Configuration fixed in SSM after a bad start is picked up at the next
/// event, without a new sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_fixed_after_init_is_used_at_the_next_event() {
    let sdk = local_aws::test_sdk_config().await;
    let deployment = deployment(&[("call_timeout_ms", "soon")]).await;
    let prefix = deployment.config_prefix(CONFIG_NAME);
    let hook = Hook::load(Phase::BeforeAllowTraffic, &sdk, Ok(deployment)).await;
    let before = hook.gate(Instant::now() + Duration::from_secs(20)).await;
    assert!(before.unusable.is_some(), "{:?}", before.unusable);
    local_aws::seed::put_parameter(
        &shared::aws::ssm(&sdk),
        &format!("{prefix}call_timeout_ms"),
        "1500",
        false,
    )
    .await
    .unwrap();
    let after = hook.gate(Instant::now() + Duration::from_secs(20)).await;
    assert_eq!(after.unusable, None);
    assert_eq!(after.settings.call_timeout, Duration::from_millis(1500));
}
