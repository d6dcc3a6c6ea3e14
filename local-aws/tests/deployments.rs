//! The CodeDeploy engine and the Lambda endpoint, driven only through the
//! real `aws-sdk-codedeploy` and `aws-sdk-lambda` clients: real function
//! binaries (`echo_lambda` deployed, `report_hook` as the hooks), the
//! predefined schedules, failing and silent hooks, stops, rollbacks,
//! weighted routing, faults on one version, and the group's CloudWatch
//! alarms (through `aws-sdk-cloudwatch`) stopping a deployment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::{
    AutoRollbackConfiguration, AutoRollbackEvent, DeploymentStatus, LifecycleEventStatus, RevisionLocation,
    RevisionLocationType,
};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use local_aws::codedeploy::{CodeDeploy, Engine, LambdaTarget};
use local_aws::lambda::LambdaInvoke;

/// One minute of deployment time per 50 ms.
const SPEED: f64 = 1200.0;

struct Stack {
    lambda: LambdaInvoke,
    _codedeploy: CodeDeploy,
    _cloudwatch: local_aws::cloudwatch::CloudWatch,
    cloudwatch_client: aws_sdk_cloudwatch::Client,
    lambda_client: aws_sdk_lambda::Client,
    client: aws_sdk_codedeploy::Client,
}

/// `echo` versions 1 and 2 behind `live` → 1, and three hooks: `hook-ok`
/// (reports Succeeded), `hook-fail` (Failed) and `hook-silent` (nothing).
async fn stack() -> Stack {
    let echo = local_aws::process::build_example("echo_lambda").await.unwrap();
    let hook = local_aws::process::build_example("report_hook").await.unwrap();
    let lambda = LambdaInvoke::start().await.unwrap();
    let lambda_client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);
    let cloudwatch = local_aws::cloudwatch::CloudWatch::start(
        std::sync::Arc::new(local_aws::cloudwatch::store::Store::default()),
        local_aws::cloudwatch::Clock {
            origin: std::time::SystemTime::now(),
            speed: SPEED,
        },
    )
    .await
    .unwrap();
    let cloudwatch_client = aws_sdk_cloudwatch::Client::new(&local_aws::sdk_config_at(cloudwatch.endpoint()).await);
    let mut engine = Engine::new(lambda_client.clone());
    engine.speed = SPEED;
    engine.cloudwatch = Some(cloudwatch_client.clone());
    let codedeploy = CodeDeploy::start_with(engine).await.unwrap();
    let client = aws_sdk_codedeploy::Client::new(&local_aws::sdk_config_at(codedeploy.endpoint()).await);
    for version in ["1", "2"] {
        lambda.publish("echo", version, &echo, &[]).await.unwrap();
    }
    lambda.alias("echo", "live", "1").await;
    let aws = |verdict: &str| {
        [
            ("AWS_ENDPOINT_URL_CODEDEPLOY", codedeploy.endpoint()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("HOOK_VERDICT", verdict),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec()
    };
    for (name, verdict) in [
        ("hook-ok", "Succeeded"),
        ("hook-fail", "Failed"),
        ("hook-silent", "silent"),
    ] {
        lambda.publish(name, "1", &hook, &aws(verdict)).await.unwrap();
    }
    client
        .create_application()
        .application_name("app")
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Lambda)
        .send()
        .await
        .unwrap();
    Stack {
        lambda,
        _codedeploy: codedeploy,
        _cloudwatch: cloudwatch,
        cloudwatch_client,
        lambda_client,
        client,
    }
}

impl Stack {
    /// A group named `group` with rollback on failure, stop and alarm, and
    /// the alarm `alarm` (an hour's period on no data, missing data
    /// ignored: it keeps the state [`Stack::set_alarm`] gives it).
    async fn group_with_alarm(&self, group: &str, config: Option<&str>, alarm: &str) {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
        self.cloudwatch_client
            .put_metric_alarm()
            .alarm_name(alarm)
            .namespace("Test")
            .metric_name("Nothing")
            .statistic(Statistic::Sum)
            .period(3600)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .treat_missing_data("ignore")
            .send()
            .await
            .unwrap();
        let rollback = AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(AutoRollbackEvent::DeploymentFailure)
            .events(AutoRollbackEvent::DeploymentStopOnRequest)
            .events(AutoRollbackEvent::DeploymentStopOnAlarm)
            .build();
        self.client
            .create_deployment_group()
            .application_name("app")
            .deployment_group_name(group)
            .service_role_arn("arn:aws:iam::000000000000:role/codedeploy")
            .set_deployment_config_name(config.map(str::to_owned))
            .auto_rollback_configuration(rollback)
            .alarm_configuration(
                aws_sdk_codedeploy::types::AlarmConfiguration::builder()
                    .enabled(true)
                    .alarms(aws_sdk_codedeploy::types::Alarm::builder().name(alarm).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Sets `alarm`'s state with `SetAlarmState`.
    async fn set_alarm(&self, alarm: &str, state: aws_sdk_cloudwatch::types::StateValue) {
        self.cloudwatch_client
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(state)
            .state_reason("set by the test")
            .send()
            .await
            .unwrap();
    }

    /// A group named `group` with rollback on failure and on stop requests.
    async fn group(&self, group: &str, config: Option<&str>) {
        let rollback = AutoRollbackConfiguration::builder()
            .enabled(true)
            .events(AutoRollbackEvent::DeploymentFailure)
            .events(AutoRollbackEvent::DeploymentStopOnRequest)
            .build();
        self.client
            .create_deployment_group()
            .application_name("app")
            .deployment_group_name(group)
            .service_role_arn("arn:aws:iam::000000000000:role/codedeploy")
            .set_deployment_config_name(config.map(str::to_owned))
            .auto_rollback_configuration(rollback)
            .send()
            .await
            .unwrap();
    }

    /// Deploys `echo` `from` → `to` with the hooks named; returns the deployment id.
    async fn deploy(&self, group: &str, from: &str, to: &str, before: Option<&str>, after: Option<&str>) -> String {
        self.create(group, from, to, before, after, None).await.unwrap()
    }

    /// `CreateDeployment` of `echo` `from` → `to`, with the hooks named and
    /// the deployment's own alarm configuration if given.
    async fn create(
        &self,
        group: &str,
        from: &str,
        to: &str,
        before: Option<&str>,
        after: Option<&str>,
        alarms: Option<aws_sdk_codedeploy::types::AlarmConfiguration>,
    ) -> Result<
        String,
        aws_sdk_codedeploy::error::SdkError<aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentError>,
    > {
        let mut hooks = Vec::new();
        if let Some(before) = before {
            hooks.push(serde_json::json!({"BeforeAllowTraffic": before}));
        }
        if let Some(after) = after {
            hooks.push(serde_json::json!({"AfterAllowTraffic": after}));
        }
        let appspec = serde_json::json!({
            "version": 0.0,
            "Resources": [{"echo": {"Type": "AWS::Lambda::Function", "Properties":
                {"Name": "echo", "Alias": "live", "CurrentVersion": from, "TargetVersion": to}}}],
            "Hooks": hooks,
        });
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(
                aws_sdk_codedeploy::types::AppSpecContent::builder()
                    .content(appspec.to_string())
                    .build(),
            )
            .build();
        self.client
            .create_deployment()
            .application_name("app")
            .deployment_group_name(group)
            .revision(revision)
            .set_override_alarm_configuration(alarms)
            .send()
            .await
            .map(|created| created.deployment_id.unwrap())
    }

    /// Polls `GetDeployment` until the deployment is final (bounded).
    async fn finished(&self, id: &str) -> aws_sdk_codedeploy::types::DeploymentInfo {
        for _ in 0..1200 {
            let info = self
                .client
                .get_deployment()
                .deployment_id(id)
                .send()
                .await
                .unwrap()
                .deployment_info
                .unwrap();
            if matches!(
                info.status,
                Some(DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped)
            ) {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("deployment {id} never finished");
    }

    /// Each lifecycle event's status, in order.
    async fn events(&self, id: &str) -> Vec<(String, LifecycleEventStatus)> {
        let targets = self
            .client
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .unwrap()
            .target_ids
            .unwrap();
        assert_eq!(targets, ["echo:live"]);
        let target = self
            .client
            .get_deployment_target()
            .deployment_id(id)
            .target_id(&targets[0])
            .send()
            .await
            .unwrap()
            .deployment_target
            .unwrap()
            .lambda_target
            .unwrap();
        target
            .lifecycle_events
            .unwrap()
            .into_iter()
            .map(|e| (e.lifecycle_event_name.unwrap(), e.status.unwrap()))
            .collect()
    }

    /// The alias as `GetAlias` answers: primary version and routing.
    async fn alias(&self) -> (String, HashMap<String, f64>) {
        let alias = self
            .lambda_client
            .get_alias()
            .function_name("echo")
            .name("live")
            .send()
            .await
            .unwrap();
        (
            alias.function_version.unwrap(),
            alias
                .routing_config
                .and_then(|r| r.additional_version_weights)
                .unwrap_or_default(),
        )
    }
}

fn statuses(pairs: &[(&str, LifecycleEventStatus)]) -> Vec<(String, LifecycleEventStatus)> {
    pairs.iter().map(|(n, s)| ((*n).to_owned(), s.clone())).collect()
}

#[tokio::test]
async fn each_predefined_configuration_shifts_on_its_schedule() {
    let stack = stack().await;
    stack.group("schedules", None).await;
    let configs = [
        ("CodeDeployDefault.LambdaAllAtOnce", vec![100], 0),
        ("CodeDeployDefault.LambdaCanary10Percent5Minutes", vec![10, 100], 5),
        ("CodeDeployDefault.LambdaCanary10Percent10Minutes", vec![10, 100], 10),
        ("CodeDeployDefault.LambdaCanary10Percent15Minutes", vec![10, 100], 15),
        ("CodeDeployDefault.LambdaCanary10Percent30Minutes", vec![10, 100], 30),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            (1..=10).map(|k| k * 10).collect(),
            9,
        ),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes",
            (1..=10).map(|k| k * 10).collect(),
            18,
        ),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes",
            (1..=10).map(|k| k * 10).collect(),
            27,
        ),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes",
            (1..=10).map(|k| k * 10).collect(),
            90,
        ),
    ];
    let mut versions = ("1", "2");
    for (config, percents, minutes) in configs {
        let group = config.trim_start_matches("CodeDeployDefault.");
        stack.group(group, Some(config)).await;
        let started = Instant::now();
        let history_before = stack.lambda.alias_history("echo", "live").await.len();
        let id = stack
            .deploy(group, versions.0, versions.1, Some("hook-ok"), Some("hook-ok"))
            .await;
        let info = stack.finished(&id).await;
        let took = started.elapsed();
        assert_eq!(
            info.status,
            Some(DeploymentStatus::Succeeded),
            "{config}: {:?}",
            info.error_information
        );
        assert_eq!(info.deployment_config_name.as_deref(), Some(config));
        let expected: Vec<String> = percents
            .iter()
            .map(|p| format!("Shifted {p}% of traffic to version {}", versions.1))
            .collect();
        assert_eq!(
            info.deployment_status_messages.unwrap_or_default(),
            expected,
            "{config}"
        );
        let set: Vec<(String, Option<(String, f64)>)> = stack.lambda.alias_history("echo", "live").await
            [history_before..]
            .iter()
            .map(|(_, a)| (a.function_version.clone(), a.additional.clone()))
            .collect();
        let shifts: Vec<(String, Option<(String, f64)>)> = percents
            .iter()
            .map(|&p| match p {
                100 => (versions.1.to_owned(), None),
                p => (
                    versions.0.to_owned(),
                    Some((versions.1.to_owned(), f64::from(p) / 100.0)),
                ),
            })
            .collect();
        assert_eq!(set, shifts, "{config}: the alias as each step set it");
        let scheduled = Duration::from_secs(minutes * 60).div_f64(SPEED);
        assert!(
            took >= scheduled,
            "{config} took {took:?}, less than its schedule {scheduled:?}"
        );
        assert!(took < scheduled + Duration::from_secs(10), "{config} took {took:?}");
        assert_eq!(stack.alias().await, (versions.1.to_owned(), HashMap::new()), "{config}");
        assert_eq!(
            stack.events(&id).await,
            statuses(&[
                ("BeforeAllowTraffic", LifecycleEventStatus::Succeeded),
                ("AllowTraffic", LifecycleEventStatus::Succeeded),
                ("AfterAllowTraffic", LifecycleEventStatus::Succeeded),
            ])
        );
        versions = (versions.1, versions.0);
    }
}

#[tokio::test]
async fn a_failed_hook_rolls_back_and_no_further_hook_runs() {
    let stack = stack().await;
    stack
        .group("g", Some("CodeDeployDefault.LambdaCanary10Percent5Minutes"))
        .await;
    let before = stack.lambda.invocations().await.len();
    let id = stack.deploy("g", "1", "2", Some("hook-fail"), Some("hook-ok")).await;
    let info = stack.finished(&id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    let error = info.error_information.unwrap();
    assert_eq!(error.code.unwrap().as_str(), "HOOK_EXECUTION_FAILURE");
    assert!(error.message.unwrap().contains("hook-fail"));
    assert_eq!(
        stack.events(&id).await,
        statuses(&[
            ("BeforeAllowTraffic", LifecycleEventStatus::Failed),
            ("AllowTraffic", LifecycleEventStatus::Skipped),
            ("AfterAllowTraffic", LifecycleEventStatus::Skipped),
        ])
    );
    let invoked: Vec<String> = stack.lambda.invocations().await[before..]
        .iter()
        .map(|i| i.function.clone())
        .collect();
    assert_eq!(invoked, ["hook-fail"], "only the failing hook ran");
    assert_eq!(stack.alias().await, (String::from("1"), HashMap::new()));
    let rollback_id = info.rollback_info.unwrap().rollback_deployment_id.unwrap();
    let rollback = stack.finished(&rollback_id).await;
    assert_eq!(rollback.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(rollback.creator.unwrap().as_str(), "codeDeployRollback");
    assert_eq!(
        rollback
            .rollback_info
            .unwrap()
            .rollback_triggering_deployment_id
            .as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test]
async fn an_alias_not_on_the_appspecs_current_version_is_not_deployed_or_rolled_back() {
    let stack = stack().await;
    stack.group("g", None).await;
    stack.lambda.alias("echo", "live", "2").await;
    let before = stack.lambda.invocations().await.len();
    let id = stack.deploy("g", "1", "2", Some("hook-ok"), Some("hook-ok")).await;
    let info = stack.finished(&id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    let error = info.error_information.unwrap();
    assert_eq!(error.code.unwrap().as_str(), "INVALID_LAMBDA_CONFIGURATION");
    assert!(error.message.unwrap().contains("does not match the current version"));
    assert!(
        info.rollback_info.is_none(),
        "the alias was never this deployment's to roll back"
    );
    assert_eq!(stack.lambda.invocations().await.len(), before, "no hook ran");
    assert_eq!(stack.alias().await, (String::from("2"), HashMap::new()));
}

#[tokio::test]
async fn a_silent_hook_fails_the_deployment_at_the_scaled_hook_timeout() {
    let stack = stack().await;
    stack.group("g", None).await;
    let started = Instant::now();
    let id = stack.deploy("g", "1", "2", Some("hook-silent"), None).await;
    let info = stack.finished(&id).await;
    let took = started.elapsed();
    assert_eq!(info.status, Some(DeploymentStatus::Failed));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "TIMEOUT");
    let timeout = Duration::from_secs(3600).div_f64(SPEED);
    assert!(
        took >= timeout,
        "failed after {took:?}, before the hook timeout {timeout:?}"
    );
    assert_eq!(stack.alias().await, (String::from("1"), HashMap::new()));
}

#[tokio::test]
async fn a_stop_mid_shift_stops_and_rolls_back() {
    let stack = stack().await;
    stack
        .group("g", Some("CodeDeployDefault.LambdaCanary10Percent30Minutes"))
        .await;
    let id = stack.deploy("g", "1", "2", None, Some("hook-ok")).await;
    // Bounded: the canary waits 1.5 s at this speed.
    for _ in 0..200 {
        if stack.alias().await.1.get("2") == Some(&0.1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stack.alias().await,
        (String::from("1"), HashMap::from([(String::from("2"), 0.1)]))
    );
    let stopped = stack.client.stop_deployment().deployment_id(&id).send().await.unwrap();
    assert!(stopped.status.is_some());
    let info = stack.finished(&id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Stopped));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "MANUAL_STOP");
    let rollback_id = info.rollback_info.unwrap().rollback_deployment_id.unwrap();
    stack.finished(&rollback_id).await;
    assert_eq!(stack.alias().await, (String::from("1"), HashMap::new()));
    let again = stack
        .client
        .stop_deployment()
        .deployment_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        again.into_service_error().meta().code(),
        Some("DeploymentAlreadyCompletedException")
    );
}

/// As CodeDeploy does: an alarm already in ALARM stops a deployment before
/// its first hook, naming the alarm (the fix cannot ship until it clears).
#[tokio::test]
async fn an_alarm_already_in_alarm_stops_the_deployment_before_it_starts() {
    use aws_sdk_cloudwatch::types::StateValue;
    let stack = stack().await;
    stack.group_with_alarm("g", None, "already").await;
    stack.set_alarm("already", StateValue::Alarm).await;
    let id = stack.deploy("g", "1", "2", Some("hook-ok"), None).await;
    let info = stack.finished(&id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Stopped));
    let error = info.error_information.unwrap();
    assert_eq!(error.code.unwrap().as_str(), "ALARM_ACTIVE");
    assert!(error.message.unwrap().contains("<already>"));
    assert_eq!(
        stack.events(&id).await,
        statuses(&[
            ("BeforeAllowTraffic", LifecycleEventStatus::Skipped),
            ("AllowTraffic", LifecycleEventStatus::Skipped),
            ("AfterAllowTraffic", LifecycleEventStatus::Skipped),
        ])
    );
    assert_eq!(stack.alias().await, (String::from("1"), HashMap::new()));
    // Once it is OK, the next deployment runs.
    if let Some(rollback) = info.rollback_info.and_then(|r| r.rollback_deployment_id) {
        stack.finished(&rollback).await;
    }
    stack.set_alarm("already", StateValue::Ok).await;
    let again = stack.deploy("g", "1", "2", Some("hook-ok"), None).await;
    assert_eq!(stack.finished(&again).await.status, Some(DeploymentStatus::Succeeded));
}

/// The fix for a failing version cannot ship while the alarm that version
/// set off fires; the API reference's way out is a deployment whose own
/// alarm configuration turns polling off (`overrideAlarmConfiguration`):
/// it runs, and says so in `GetDeployment`. An override is checked as a
/// group's configuration is.
#[tokio::test]
async fn an_alarm_override_ships_a_fix_while_the_alarm_fires() {
    use aws_sdk_cloudwatch::types::StateValue;
    use aws_sdk_codedeploy::types::{Alarm, AlarmConfiguration};
    let stack = stack().await;
    stack.group_with_alarm("g", None, "firing").await;
    stack.set_alarm("firing", StateValue::Alarm).await;
    let off = AlarmConfiguration::builder().enabled(false).build();
    let id = stack
        .create("g", "1", "2", Some("hook-ok"), None, Some(off))
        .await
        .unwrap();
    let info = stack.finished(&id).await;
    assert_eq!(
        info.status,
        Some(DeploymentStatus::Succeeded),
        "{:?}",
        info.error_information
    );
    assert_eq!(info.override_alarm_configuration.map(|c| c.enabled), Some(false));
    assert_eq!(stack.alias().await, (String::from("2"), HashMap::new()));
    let eleven = (0..11).fold(AlarmConfiguration::builder().enabled(true), |config, i| {
        config.alarms(Alarm::builder().name(format!("a{i}")).build())
    });
    let refused = stack
        .create("g", "2", "1", None, None, Some(eleven.build()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("AlarmsLimitExceededException")
    );
    // Found by the attack: the API reference's InvalidAlarmConfigException
    // for an enabled configuration with no alarm, and names counted in characters.
    let empty = AlarmConfiguration::builder().enabled(true).build();
    let refused = stack.create("g", "2", "1", None, None, Some(empty)).await.unwrap_err();
    assert_eq!(
        refused.as_service_error().and_then(|e| e.meta().code()),
        Some("InvalidAlarmConfigException")
    );
    let accents = AlarmConfiguration::builder()
        .enabled(true)
        .alarms(Alarm::builder().name("é".repeat(255)).build())
        .build();
    let id = stack
        .create("g", "2", "1", None, None, Some(accents))
        .await
        .expect("255 characters is a name");
    stack.finished(&id).await;
}

/// An alarm going off mid-shift stops the deployment and the policy rolls
/// it back: the alias is on version 1 alone again.
#[tokio::test]
async fn an_alarm_mid_shift_stops_and_rolls_back() {
    use aws_sdk_cloudwatch::types::StateValue;
    let stack = stack().await;
    stack
        .group_with_alarm("g", Some("CodeDeployDefault.LambdaCanary10Percent30Minutes"), "rate")
        .await;
    let id = stack.deploy("g", "1", "2", None, Some("hook-ok")).await;
    for _ in 0..200 {
        if stack.alias().await.1.get("2") == Some(&0.1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(stack.alias().await.1.get("2"), Some(&0.1), "the canary shifted");
    stack.set_alarm("rate", StateValue::Alarm).await;
    let info = stack.finished(&id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Stopped));
    assert_eq!(info.error_information.unwrap().code.unwrap().as_str(), "ALARM_ACTIVE");
    let rollback = info.rollback_info.unwrap().rollback_deployment_id.unwrap();
    stack.finished(&rollback).await;
    assert_eq!(stack.alias().await, (String::from("1"), HashMap::new()));
}

#[tokio::test]
async fn a_second_status_for_one_hook_execution_is_refused() {
    let codedeploy = CodeDeploy::start().await.unwrap();
    let target = LambdaTarget {
        function_name: String::from("echo"),
        alias: String::from("live"),
        current_version: String::from("1"),
        target_version: String::from("2"),
    };
    codedeploy.add_deployment("d-ABCDEFGH1", target, &["exec-1"]).await;
    let client = aws_sdk_codedeploy::Client::new(&local_aws::sdk_config_at(codedeploy.endpoint()).await);
    let put = || {
        client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id("d-ABCDEFGH1")
            .lifecycle_event_hook_execution_id("exec-1")
            .status(LifecycleEventStatus::Succeeded)
            .send()
    };
    put().await.unwrap();
    let err = put().await.unwrap_err().into_service_error();
    assert!(err.is_lifecycle_event_already_completed_exception(), "{err:?}");
}

#[tokio::test]
async fn bad_deployments_are_refused_with_the_field_named() {
    let stack = stack().await;
    stack.group("g", None).await;
    let create = |content: &str| {
        stack
            .client
            .create_deployment()
            .application_name("app")
            .deployment_group_name("g")
            .revision(
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::AppSpecContent)
                    .app_spec_content(
                        aws_sdk_codedeploy::types::AppSpecContent::builder()
                            .content(content)
                            .build(),
                    )
                    .build(),
            )
            .send()
    };
    let err = create(r#"{"version": 0.0, "Resources": []}"#)
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_revision_exception(), "{err:?}");
    assert!(err.meta().message().unwrap().contains("Resources"));
    let err = stack
        .client
        .create_deployment()
        .application_name("app")
        .deployment_group_name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_deployment_group_does_not_exist_exception(), "{err:?}");
    let err = stack
        .client
        .create_deployment_group()
        .application_name("app")
        .deployment_group_name("h")
        .service_role_arn("arn:aws:iam::000000000000:role/r")
        .deployment_config_name("CodeDeployDefault.LambdaLinear10PercentEvery1Minutes")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_deployment_config_does_not_exist_exception(), "{err:?}");
}

#[tokio::test]
async fn a_custom_configuration_is_kept_and_deployed_by_its_schedule() {
    let stack = stack().await;
    let routing = aws_sdk_codedeploy::types::TrafficRoutingConfig::builder()
        .r#type(aws_sdk_codedeploy::types::TrafficRoutingType::TimeBasedLinear)
        .time_based_linear(
            aws_sdk_codedeploy::types::TimeBasedLinear::builder()
                .linear_percentage(40)
                .linear_interval(1)
                .build(),
        )
        .build();
    stack
        .client
        .create_deployment_config()
        .deployment_config_name("Linear40")
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Lambda)
        .traffic_routing_config(routing)
        .send()
        .await
        .unwrap();
    let config = stack
        .client
        .get_deployment_config()
        .deployment_config_name("Linear40")
        .send()
        .await
        .unwrap()
        .deployment_config_info
        .unwrap();
    let linear = config.traffic_routing_config.unwrap().time_based_linear.unwrap();
    assert_eq!((linear.linear_percentage, linear.linear_interval), (40, 1));
    stack.group("g", Some("Linear40")).await;
    let id = stack.deploy("g", "1", "2", None, None).await;
    let info = stack.finished(&id).await;
    assert_eq!(info.status, Some(DeploymentStatus::Succeeded));
    assert_eq!(
        info.deployment_status_messages.unwrap(),
        [40, 80, 100].map(|p| format!("Shifted {p}% of traffic to version 2"))
    );
}

/// An API Gateway (v2) event for `GET /health`.
fn health_event() -> Blob {
    Blob::new(
        serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
            "headers": {"host": "local"},
            "requestContext": {"accountId": "000000000000", "apiId": "local", "domainName": "local",
                "domainPrefix": "local", "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "test"}, "requestId": "r", "routeKey": "$default",
                "stage": "$default", "time": "01/Dec/2026:00:00:00 +0000", "timeEpoch": 0},
            "isBase64Encoded": false
        })
        .to_string(),
    )
}

impl Stack {
    /// `GET /health` on `echo` at `qualifier`, through `Invoke`.
    async fn invoke(&self, qualifier: &str) -> aws_sdk_lambda::operation::invoke::InvokeOutput {
        self.lambda_client
            .invoke()
            .function_name("echo")
            .qualifier(qualifier)
            .payload(health_event())
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_weighted_alias_routes_by_its_weights() {
    let stack = stack().await;
    stack
        .lambda_client
        .update_alias()
        .function_name("echo")
        .name("live")
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights("2", 0.3)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..1000 {
        let out = stack.invoke("live").await;
        *counts.entry(out.executed_version.unwrap()).or_default() += 1;
    }
    let on_2 = f64::from(counts.get("2").copied().unwrap_or(0)) / 1000.0;
    assert!(
        (on_2 - 0.3).abs() <= 0.05,
        "version 2 got {on_2} of invocations: {counts:?}"
    );
    assert_eq!(counts.values().sum::<u32>(), 1000);
    let recorded = stack.lambda.invocations().await;
    let resources: std::collections::HashSet<String> = recorded.iter().map(|i| i.resource()).collect();
    assert_eq!(resources, std::collections::HashSet::from([String::from("echo:live")]));
}

#[tokio::test]
async fn alias_calls_are_checked_as_lambda_checks_them() {
    let stack = stack().await;
    let missing = stack
        .lambda_client
        .get_alias()
        .function_name("echo")
        .name("nope")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    assert!(missing.meta().message().unwrap().contains("Cannot find alias arn"));
    let two = stack
        .lambda_client
        .update_alias()
        .function_name("echo")
        .name("live")
        .routing_config(
            AliasRoutingConfiguration::builder()
                .additional_version_weights("2", 0.1)
                .additional_version_weights("3", 0.1)
                .build(),
        )
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(two.is_invalid_parameter_value_exception(), "{two:?}");
    let current = stack
        .lambda_client
        .get_alias()
        .function_name("echo")
        .name("live")
        .send()
        .await
        .unwrap();
    let stale = stack
        .lambda_client
        .update_alias()
        .function_name("echo")
        .name("live")
        .function_version("2")
        .revision_id("not-the-revision")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(stale.is_precondition_failed_exception(), "{stale:?}");
    let moved = stack
        .lambda_client
        .update_alias()
        .function_name("echo")
        .name("live")
        .function_version("2")
        .set_revision_id(current.revision_id)
        .send()
        .await
        .unwrap();
    assert_eq!(moved.function_version.as_deref(), Some("2"));
    let created = stack
        .lambda_client
        .create_alias()
        .function_name("echo")
        .name("canary")
        .function_version("1")
        .send()
        .await
        .unwrap();
    assert!(created.alias_arn.unwrap().ends_with(":function:echo:canary"));
    let digits = stack
        .lambda_client
        .create_alias()
        .function_name("echo")
        .name("2")
        .function_version("1")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(digits.meta().code(), Some("ValidationException"), "{digits:?}");
}

#[tokio::test]
async fn faults_apply_to_the_named_version_only() {
    let stack = stack().await;
    stack.lambda.inject("echo", "2", "http-500:100%".parse().unwrap()).await;
    let status = |payload: &[u8]| -> u64 {
        let json: serde_json::Value = serde_json::from_slice(payload).unwrap();
        json["statusCode"].as_u64().unwrap()
    };
    for _ in 0..20 {
        let one = stack.invoke("1").await;
        assert_eq!(status(one.payload.unwrap().as_ref()), 200);
        let two = stack.invoke("2").await;
        assert_eq!(two.executed_version.as_deref(), Some("2"));
        assert_eq!(status(two.payload.unwrap().as_ref()), 500);
    }
    stack.lambda.inject("echo", "2", "error:0%".parse().unwrap()).await;
    let still = stack.invoke("2").await;
    assert_eq!(
        status(still.payload.unwrap().as_ref()),
        500,
        "a second fault adds to the first"
    );
    stack.lambda.clear_faults("echo", "2").await;
    stack.lambda.set_timeout("echo", Duration::from_millis(300)).await;
    stack.lambda.inject("echo", "2", "delay:500ms".parse().unwrap()).await;
    let slow = stack.invoke("2").await;
    assert_eq!(
        slow.function_error.as_deref(),
        Some("Unhandled"),
        "past the timeout: a function error"
    );
    let payload: serde_json::Value = serde_json::from_slice(slow.payload.unwrap().as_ref()).unwrap();
    assert_eq!(payload["errorType"], "Sandbox.Timedout");
    stack.lambda.set_timeout("echo", Duration::from_secs(30)).await;
    stack.lambda.inject("echo", "1", "error:100%".parse().unwrap()).await;
    let failed = stack.invoke("1").await;
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    let errors = stack
        .lambda
        .invocations()
        .await
        .iter()
        .filter(|i| i.ending == local_aws::lambda::metrics::Ending::FunctionError)
        .count();
    assert_eq!(
        errors, 2,
        "the timed-out and the injected error count as errors, nothing else"
    );
}
