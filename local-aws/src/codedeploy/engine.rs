//! Runs one Lambda deployment through CodeDeploy's sequence: Start →
//! BeforeAllowTraffic → AllowTraffic (the configuration's steps, each an
//! `UpdateAlias`) → AfterAllowTraffic → End. Hooks are invoked through the
//! Lambda endpoint with `InvocationType: Event` and the payload CodeDeploy
//! sends (`DeploymentId`, `LifecycleEventHookExecutionId`); the engine then
//! waits for their `PutLifecycleEventHookExecutionStatus` up to the hook
//! timeout. The first failure ends the deployment and the remaining events
//! are skipped; a stop request is honoured at the next wait. The group's
//! alarms are read before the first hook and every [`ALARM_POLL`] of
//! deployment time while it waits (on a hook or between traffic steps): one
//! in `ALARM` stops the deployment (`ALARM_ACTIVE`), as does a failure to
//! read them unless the group ignores poll failures.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, InvocationType};

use super::wire::{AutoRollbackEvent, LambdaFunctionInfo, LambdaTargetInfo, LifecycleEvent, epoch_seconds};
use super::{Deployment, EventStatus, Failure, LIFECYCLE_EVENTS, Shared, Status};
use crate::lambda::function_arn;

/// How often, in deployment time, a waiting deployment reads its alarms
/// (CodeDeploy publishes no interval; this one lets a rehearsal stop within
/// seconds of an alarm).
pub const ALARM_POLL: Duration = Duration::from_secs(10);

/// The shortest real time between two reads of the alarms.
const MIN_POLL: Duration = Duration::from_millis(20);

/// How the engine reaches Lambda and CloudWatch, and how fast its clock runs.
#[derive(Debug, Clone)]
pub struct Engine {
    /// The client CodeDeploy uses to invoke hooks and shift the alias.
    pub lambda: aws_sdk_lambda::Client,
    /// The client it reads the groups' alarms with; without one, a group
    /// with alarms has its deployments stopped (the alarms cannot be read).
    pub cloudwatch: Option<aws_sdk_cloudwatch::Client>,
    /// How many times faster than real time waits pass (1 = real time;
    /// 60 = one minute per second).
    pub speed: f64,
    /// How long a hook may take to report (CodeDeploy's is one hour).
    pub hook_timeout: Duration,
}

impl Engine {
    /// An engine at real time with CodeDeploy's one-hour hook timeout.
    pub fn new(lambda: aws_sdk_lambda::Client) -> Self {
        Self {
            lambda,
            cloudwatch: None,
            speed: 1.0,
            hook_timeout: Duration::from_secs(3600),
        }
    }

    /// `period` of deployment time on this engine's clock (a speed that is
    /// not a positive number counts as real time; a wait too long to
    /// represent is `Duration::MAX`).
    pub fn scaled(&self, period: Duration) -> Duration {
        let speed = if self.speed.is_finite() && self.speed > 0.0 {
            self.speed
        } else {
            1.0
        };
        Duration::try_from_secs_f64(period.as_secs_f64() / speed).unwrap_or(Duration::MAX)
    }
}

/// How a deployment ended.
enum End {
    Succeeded,
    Failed(Failure),
    /// Failed before touching the alias, which is not the AppSpec's to roll back.
    Refused(Failure),
    Stopped {
        rollback: bool,
    },
    /// Alarms in `ALARM` (or unreadable) stopped it.
    Alarmed(Failure),
}

/// What interrupted a wait.
enum Interrupt {
    /// `StopDeployment`, with whether to roll back.
    Stop(bool),
    /// An alarm, or alarms that could not be read.
    Alarm(Failure),
}

impl From<Interrupt> for End {
    fn from(interrupt: Interrupt) -> Self {
        match interrupt {
            Interrupt::Stop(rollback) => End::Stopped { rollback },
            Interrupt::Alarm(failure) => End::Alarmed(failure),
        }
    }
}

/// The `LambdaTarget` shape of `deployment`.
pub(super) fn target_info(id: &str, deployment: &Deployment) -> LambdaTargetInfo {
    let target = &deployment.target;
    LambdaTargetInfo {
        deployment_id: id.to_owned(),
        target_id: target.target_id(),
        target_arn: format!("{}:{}", function_arn(&target.function_name), target.alias),
        status: deployment.target_status(),
        last_updated_at: epoch_seconds(SystemTime::now()),
        lifecycle_events: LIFECYCLE_EVENTS
            .iter()
            .zip(&deployment.events)
            .map(|(name, event)| LifecycleEvent {
                lifecycle_event_name: name,
                start_time: event.start.map(epoch_seconds),
                end_time: event.end.map(epoch_seconds),
                status: event.status.as_str(),
            })
            .collect(),
        lambda_function_info: LambdaFunctionInfo {
            function_name: target.function_name.clone(),
            function_alias: target.alias.clone(),
            current_version: target.current_version.clone(),
            target_version: target.target_version.clone(),
            target_version_weight: deployment.weight,
        },
    }
}

struct Run {
    shared: Arc<Shared>,
    engine: Arc<Engine>,
    id: String,
}

/// Drives deployment `id` to its end.
pub(super) async fn drive(shared: Arc<Shared>, engine: Arc<Engine>, id: String) {
    let run = Run { shared, engine, id };
    let end = run.sequence().await;
    run.finish(end).await;
}

impl Run {
    async fn with<T>(&self, f: impl FnOnce(&mut Deployment) -> T) -> Option<T> {
        let mut inner = self.shared.inner.lock().await;
        inner.deployments.get_mut(&self.id).map(f)
    }

    async fn event(&self, index: usize, status: EventStatus) {
        self.with(|d| {
            let event = &mut d.events[index];
            let now = SystemTime::now();
            match status {
                EventStatus::InProgress => event.start = Some(now),
                EventStatus::Succeeded | EventStatus::Failed => event.end = Some(now),
                EventStatus::Pending | EventStatus::Skipped => {}
            }
            event.status = status;
        })
        .await;
    }

    async fn say(&self, message: String) {
        self.with(|d| d.messages.push(message)).await;
    }

    /// The group's alarms, read now: `Some` when one is in `ALARM`, or when
    /// they could not be read and the group does not ignore that.
    async fn alarmed(&self) -> Option<Failure> {
        let config = self.with(|d| d.alarms.clone()).await?;
        if !config.enabled || config.alarms.is_empty() {
            return None;
        }
        let names: Vec<String> = config.alarms.iter().map(|a| a.name.clone()).collect();
        let unreadable = |why: String| {
            (!config.ignore_poll_alarm_failure).then(|| Failure {
                code: "ALARM_ACTIVE",
                message: format!("The deployment was stopped because the alarm status could not be retrieved from Amazon CloudWatch: {why}"),
            })
        };
        let Some(cloudwatch) = &self.engine.cloudwatch else {
            return unreadable(String::from("no CloudWatch endpoint is configured"));
        };
        let described = cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(names.clone()))
            .send()
            .await;
        let alarms = match described {
            Ok(out) => out.metric_alarms.unwrap_or_default(),
            Err(err) => return unreadable(aws_sdk_cloudwatch::error::DisplayErrorContext(&err).to_string()),
        };
        let active: Vec<String> = alarms
            .iter()
            .filter(|a| a.state_value == Some(aws_sdk_cloudwatch::types::StateValue::Alarm))
            .filter_map(|a| a.alarm_name.clone())
            .collect();
        if active.is_empty() {
            return None;
        }
        self.say(format!("Alarms in ALARM: {}", active.join(", "))).await;
        Some(Failure {
            code: "ALARM_ACTIVE",
            message: format!(
                "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <{}>",
                active.join(", ")
            ),
        })
    }

    /// Waits until `until`, reading the alarms every [`ALARM_POLL`] of
    /// deployment time; reports a stop request or an alarm.
    async fn interrupted_before(&self, until: Instant) -> Option<Interrupt> {
        let poll = self.engine.scaled(ALARM_POLL).max(MIN_POLL);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(Some(rollback)) = self.with(|d| d.stop).await {
                return Some(Interrupt::Stop(rollback));
            }
            if let Some(failure) = self.alarmed().await {
                return Some(Interrupt::Alarm(failure));
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            let _ = tokio::time::timeout_at(until.min(now + poll).into(), changed).await;
        }
    }

    async fn sequence(&self) -> End {
        let Some((target, config_name)) = self
            .with(|d| {
                d.status = Status::InProgress;
                d.started = Some(SystemTime::now());
                (d.target.clone(), d.config_name.clone())
            })
            .await
        else {
            return End::Failed(internal("the deployment vanished"));
        };
        let (routing, spec) = {
            let inner = self.shared.inner.lock().await;
            let Some(routing) = inner.routing(&config_name) else {
                return End::Failed(internal("the deployment configuration vanished"));
            };
            let Some(deployment) = inner.deployments.get(&self.id) else {
                return End::Failed(internal("the deployment vanished"));
            };
            let content = [&deployment.revision.app_spec_content, &deployment.revision.string]
                .into_iter()
                .flatten()
                .find_map(|c| c.content.clone())
                .unwrap_or_default();
            match super::appspec::AppSpec::parse(&content) {
                Ok(spec) => (routing, spec),
                Err(err) => {
                    return End::Failed(Failure {
                        code: "INVALID_REVISION",
                        message: err.to_string(),
                    });
                }
            }
        };
        if let Err(failure) = self.alias_is_current(&target).await {
            return End::Refused(failure);
        }
        // An alarm already in ALARM stops the deployment before it starts.
        if let Some(failure) = self.alarmed().await {
            return End::Alarmed(failure);
        }
        if let Some(end) = self.hook(0, spec.before_allow_traffic.as_deref()).await {
            return end;
        }
        self.event(1, EventStatus::InProgress).await;
        let shifting = Instant::now();
        for step in routing.steps() {
            if let Some(interrupt) = self.interrupted_before(shifting + self.engine.scaled(step.after)).await {
                self.event(1, EventStatus::Failed).await;
                return interrupt.into();
            }
            if let Err(message) = self.shift(&target, step.percent).await {
                self.event(1, EventStatus::Failed).await;
                return End::Failed(Failure {
                    code: "INVALID_LAMBDA_CONFIGURATION",
                    message,
                });
            }
            self.with(|d| d.weight = f64::from(step.percent)).await;
            self.say(format!(
                "Shifted {}% of traffic to version {}",
                step.percent, target.target_version
            ))
            .await;
        }
        // The last step's alarms, before the shift is called done.
        if let Some(interrupt) = self.interrupted_before(Instant::now()).await {
            self.event(1, EventStatus::Failed).await;
            return interrupt.into();
        }
        self.event(1, EventStatus::Succeeded).await;
        if let Some(end) = self.hook(2, spec.after_allow_traffic.as_deref()).await {
            return end;
        }
        End::Succeeded
    }

    /// CodeDeploy deploys only from where the alias is: on the AppSpec's
    /// `CurrentVersion`, with no traffic on another version.
    async fn alias_is_current(&self, target: &super::LambdaTarget) -> Result<(), Failure> {
        let alias = self
            .engine
            .lambda
            .get_alias()
            .function_name(&target.function_name)
            .name(&target.alias)
            .send()
            .await
            .map_err(|err| Failure {
                code: "INVALID_LAMBDA_CONFIGURATION",
                message: format!(
                    "GetAlias {}:{} failed: {}",
                    target.function_name,
                    target.alias,
                    aws_sdk_lambda::error::DisplayErrorContext(&err)
                ),
            })?;
        let weighted = alias
            .routing_config
            .and_then(|r| r.additional_version_weights)
            .is_some_and(|w| !w.is_empty());
        if alias.function_version.as_deref() != Some(target.current_version.as_str()) || weighted {
            return Err(Failure {
                code: "INVALID_LAMBDA_CONFIGURATION",
                message: format!(
                    "The Lambda function alias version does not match the current version in AppSpec file: {}:{} is on version {}{}, the AppSpec says {}.",
                    target.function_name,
                    target.alias,
                    alias.function_version.unwrap_or_default(),
                    if weighted {
                        " with traffic on another version"
                    } else {
                        ""
                    },
                    target.current_version
                ),
            });
        }
        Ok(())
    }

    /// Points the alias's traffic: `percent` on the target version.
    async fn shift(&self, target: &super::LambdaTarget, percent: u32) -> Result<(), String> {
        let update = self
            .engine
            .lambda
            .update_alias()
            .function_name(&target.function_name)
            .name(&target.alias);
        let update = if percent >= 100 {
            update.function_version(&target.target_version).routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(Default::default()))
                    .build(),
            )
        } else {
            update.function_version(&target.current_version).routing_config(
                AliasRoutingConfiguration::builder()
                    .additional_version_weights(&target.target_version, f64::from(percent) / 100.0)
                    .build(),
            )
        };
        update.send().await.map(|_| ()).map_err(|err| {
            format!(
                "UpdateAlias {}:{} to {percent}% on version {} failed: {}",
                target.function_name,
                target.alias,
                target.target_version,
                aws_sdk_lambda::error::DisplayErrorContext(&err)
            )
        })
    }

    /// Runs lifecycle event `index`'s hook, if there is one; `Some` ends the deployment.
    async fn hook(&self, index: usize, function: Option<&str>) -> Option<End> {
        let name = LIFECYCLE_EVENTS[index];
        let Some(function) = function else {
            self.event(index, EventStatus::Skipped).await;
            return None;
        };
        let execution = uuid::Uuid::new_v4().to_string();
        self.with(|d| d.hooks.push((execution.clone(), Some(index)))).await;
        self.event(index, EventStatus::InProgress).await;
        let payload = serde_json::json!({"DeploymentId": self.id, "LifecycleEventHookExecutionId": execution});
        let invoked = self
            .engine
            .lambda
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await;
        if let Err(err) = invoked {
            self.event(index, EventStatus::Failed).await;
            return Some(End::Failed(Failure {
                code: "HOOK_EXECUTION_FAILURE",
                message: format!(
                    "The {name} hook {function} could not be invoked: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&err)
                ),
            }));
        }
        let deadline = Instant::now() + self.engine.scaled(self.engine.hook_timeout);
        let poll = self.engine.scaled(ALARM_POLL).max(MIN_POLL);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (reported, stop) = {
                let inner = self.shared.inner.lock().await;
                let reported = inner
                    .statuses
                    .get(&(self.id.clone(), execution.clone()))
                    .and_then(|s| s.first().cloned());
                (reported, inner.deployments.get(&self.id).and_then(|d| d.stop))
            };
            match reported.as_deref() {
                Some("Succeeded") => {
                    self.event(index, EventStatus::Succeeded).await;
                    return None;
                }
                Some(_) => {
                    self.event(index, EventStatus::Failed).await;
                    return Some(End::Failed(Failure {
                        code: "HOOK_EXECUTION_FAILURE",
                        message: format!("The {name} hook {function} reported Failed."),
                    }));
                }
                None => {}
            }
            if let Some(rollback) = stop {
                self.event(index, EventStatus::Failed).await;
                return Some(End::Stopped { rollback });
            }
            if let Some(failure) = self.alarmed().await {
                self.event(index, EventStatus::Failed).await;
                return Some(End::Alarmed(failure));
            }
            if Instant::now() >= deadline {
                self.event(index, EventStatus::Failed).await;
                return Some(End::Failed(Failure {
                    code: "TIMEOUT",
                    message: format!(
                        "The {name} hook {function} did not report a status within the hook timeout ({:?} of deployment time).",
                        self.engine.hook_timeout
                    ),
                }));
            }
            let _ = tokio::time::timeout_at(deadline.min(Instant::now() + poll).into(), changed).await;
        }
    }

    async fn finish(&self, end: End) {
        let (status, failure, rollback) = match end {
            End::Succeeded => (Status::Succeeded, None, false),
            End::Failed(failure) => {
                let rollback = self
                    .with(|d| d.auto_rollback.on(AutoRollbackEvent::DeploymentFailure))
                    .await
                    .unwrap_or(false);
                (Status::Failed, Some(failure), rollback)
            }
            End::Refused(failure) => (Status::Failed, Some(failure), false),
            End::Stopped { rollback } => (
                Status::Stopped,
                Some(Failure {
                    code: "MANUAL_STOP",
                    message: String::from("The deployment was stopped by StopDeployment."),
                }),
                rollback,
            ),
            End::Alarmed(failure) => {
                let rollback = self
                    .with(|d| d.auto_rollback.on(AutoRollbackEvent::DeploymentStopOnAlarm))
                    .await
                    .unwrap_or(false);
                (Status::Stopped, Some(failure), rollback)
            }
        };
        let Some(deployment) = self
            .with(|d| {
                for event in d.events.iter_mut().filter(|e| e.status == EventStatus::Pending) {
                    event.status = EventStatus::Skipped;
                }
                d.status = status;
                d.failure = failure;
                d.completed = Some(SystemTime::now());
                d.clone()
            })
            .await
        else {
            return;
        };
        if rollback {
            self.roll_back(deployment).await;
        }
    }

    /// A new deployment, created by `codeDeployRollback`, that points the
    /// alias back at the current version alone.
    async fn roll_back(&self, original: Deployment) {
        let rollback_id = super::deployment_id();
        let mut rollback = Deployment::new(super::LambdaTarget {
            current_version: original.target.target_version.clone(),
            target_version: original.target.current_version.clone(),
            ..original.target.clone()
        });
        rollback.application = original.application.clone();
        rollback.group = original.group.clone();
        rollback.config_name = String::from("CodeDeployDefault.LambdaAllAtOnce");
        rollback.creator = "codeDeployRollback";
        rollback.status = Status::InProgress;
        rollback.started = Some(SystemTime::now());
        rollback.revision = original.revision.clone();
        rollback.rollback.rollback_triggering_deployment_id = Some(self.id.clone());
        {
            let mut inner = self.shared.inner.lock().await;
            inner.deployments.insert(rollback_id.clone(), rollback);
            if let Some(d) = inner.deployments.get_mut(&self.id) {
                d.rollback.rollback_deployment_id = Some(rollback_id.clone());
                d.rollback.rollback_message = Some(format!("Rollback deployment {rollback_id} in progress."));
            }
        }
        let back = Run {
            shared: self.shared.clone(),
            engine: self.engine.clone(),
            id: rollback_id.clone(),
        };
        back.event(0, EventStatus::Skipped).await;
        back.event(1, EventStatus::InProgress).await;
        let target = super::LambdaTarget {
            target_version: original.target.current_version.clone(),
            ..original.target.clone()
        };
        let shifted = back.shift(&target, 100).await;
        let succeeded = shifted.is_ok();
        back.event(
            1,
            if succeeded {
                EventStatus::Succeeded
            } else {
                EventStatus::Failed
            },
        )
        .await;
        back.event(2, EventStatus::Skipped).await;
        back.with(|d| {
            d.status = if succeeded { Status::Succeeded } else { Status::Failed };
            d.weight = if succeeded { 100.0 } else { 0.0 };
            d.failure = shifted.err().map(|message| Failure {
                code: "INVALID_LAMBDA_CONFIGURATION",
                message,
            });
            d.completed = Some(SystemTime::now());
        })
        .await;
        let message = if succeeded {
            format!(
                "Rollback deployment {rollback_id} succeeded: all traffic is back on version {}.",
                original.target.current_version
            )
        } else {
            format!("Rollback deployment {rollback_id} failed.")
        };
        self.with(|d| {
            d.weight = 0.0;
            d.rollback.rollback_message = Some(message);
        })
        .await;
    }
}

fn internal(message: &str) -> Failure {
    Failure {
        code: "INTERNAL_ERROR",
        message: message.to_owned(),
    }
}
