//! A CodeDeploy endpoint for one machine that deploys Lambda functions the
//! way CodeDeploy does, in the awsJson1.1 wire format (`POST /`,
//! `X-Amz-Target: CodeDeploy_20141006.<Operation>`) with CodeDeploy's error
//! shapes, so `aws-sdk-codedeploy` drives it through
//! `AWS_ENDPOINT_URL_CODEDEPLOY`.
//!
//! - Applications, deployment groups (default configuration, rollback
//!   policy) and custom deployment configurations: `CreateApplication`,
//!   `CreateDeploymentGroup`, `CreateDeploymentConfig`, `GetDeploymentConfig`.
//! - `CreateDeployment` with a Lambda AppSpec ([`appspec`]) starts the
//!   [`engine`]: the BeforeAllowTraffic hook (an `Event` invocation through
//!   the Lambda endpoint, then its status awaited up to the hook timeout),
//!   the traffic shift by the configuration's schedule ([`config`]) through
//!   `UpdateAlias`, the AfterAllowTraffic hook, the end. A failed or silent
//!   hook fails the deployment; `StopDeployment` stops it, and so does any
//!   of the group's alarms (`AlarmConfiguration`, or the deployment's
//!   `overrideAlarmConfiguration`, as AWS documents for shipping a fix while
//!   an alarm fires) found in `ALARM` through
//!   `aws-sdk-cloudwatch`'s `DescribeAlarms` — before the first hook and
//!   while the deployment waits; each rolls the alias back to the current
//!   version when the rollback policy says so, as a new deployment created
//!   by `codeDeployRollback`.
//! - `GetDeployment`, `ListDeploymentTargets`, `GetDeploymentTarget` (each
//!   lifecycle event's status) and `PutLifecycleEventHookExecutionStatus`.
//!
//! Time runs at [`Engine::speed`] times real time (waits and the hook
//! timeout alike), so a rehearsal of a ten-minute deployment takes seconds.
//! [`CodeDeploy::add_deployment`] registers a deployment no engine drives,
//! for running one hook by hand; faults (throttling, 5xx) can be injected per
//! operation; every call and every reported status is recorded.

pub mod appspec;
pub mod config;
mod engine;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};

pub use engine::Engine;

use crate::Error;
use config::TrafficRouting;
use wire::{AutoRollbackConfiguration, DeploymentInfo, Refusal, RevisionLocation, RollbackInfo, epoch_seconds};

/// The Lambda function a deployment shifts traffic for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaTarget {
    /// Function name.
    pub function_name: String,
    /// The alias being shifted (`live`).
    pub alias: String,
    /// The version the alias points at now.
    pub current_version: String,
    /// The version being deployed.
    pub target_version: String,
}

impl LambdaTarget {
    /// The target id CodeDeploy lists: `function:alias`.
    pub fn target_id(&self) -> String {
        format!("{}:{}", self.function_name, self.alias)
    }
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ThrottlingException`, HTTP 400.
    Throttle,
    /// `InternalFailure`, HTTP 500.
    ServerError,
    /// No answer for this long, then `InternalFailure` (the request was
    /// never processed: an endpoint that hangs, as behind a stuck load
    /// balancer). A caller without a per-attempt timeout waits it out.
    Stall(Duration),
}

/// A deployment's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted, not started.
    Created,
    /// Running.
    InProgress,
    /// Done: all traffic on the target version.
    Succeeded,
    /// A hook failed or never answered, or a step could not be taken.
    Failed,
    /// `StopDeployment` (or an alarm) stopped it.
    Stopped,
}

impl Status {
    /// The `DeploymentStatus` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Stopped => "Stopped",
        }
    }

    fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

/// A lifecycle event's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Not reached.
    Pending,
    /// Running.
    InProgress,
    /// Done.
    Succeeded,
    /// Failed.
    Failed,
    /// Not run: no hook for it, or the deployment ended before it.
    Skipped,
}

impl EventStatus {
    /// The `LifecycleEventStatus` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
        }
    }
}

/// The three lifecycle events of a Lambda deployment, in order.
pub const LIFECYCLE_EVENTS: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];

/// Why a deployment did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The `ErrorCode`.
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

#[derive(Debug, Clone)]
struct Event {
    status: EventStatus,
    start: Option<SystemTime>,
    end: Option<SystemTime>,
}

/// A deployment as the endpoint keeps it.
#[derive(Debug, Clone)]
struct Deployment {
    application: String,
    group: String,
    config_name: String,
    target: LambdaTarget,
    /// Hook execution ids handed out, with the lifecycle event each runs
    /// for (none for an engine-less deployment).
    hooks: Vec<(String, Option<usize>)>,
    status: Status,
    failure: Option<Failure>,
    creator: &'static str,
    rollback: RollbackInfo,
    auto_rollback: AutoRollbackConfiguration,
    /// The alarms it watches: the group's when it was created, or its override.
    alarms: wire::AlarmConfiguration,
    /// `overrideAlarmConfiguration`, as created.
    override_alarms: Option<wire::AlarmConfiguration>,
    events: [Event; 3],
    /// Percentage of traffic on the target version.
    weight: f64,
    created: SystemTime,
    started: Option<SystemTime>,
    completed: Option<SystemTime>,
    description: Option<String>,
    revision: RevisionLocation,
    messages: Vec<String>,
    /// Set by `StopDeployment`: whether to roll back.
    stop: Option<bool>,
}

impl Deployment {
    fn new(target: LambdaTarget) -> Self {
        let pending = Event {
            status: EventStatus::Pending,
            start: None,
            end: None,
        };
        Self {
            application: String::new(),
            group: String::new(),
            config_name: String::new(),
            target,
            hooks: Vec::new(),
            status: Status::Created,
            failure: None,
            creator: "user",
            rollback: RollbackInfo::default(),
            auto_rollback: AutoRollbackConfiguration::default(),
            alarms: wire::AlarmConfiguration::default(),
            override_alarms: None,
            events: [pending.clone(), pending.clone(), pending],
            weight: 0.0,
            created: SystemTime::now(),
            started: None,
            completed: None,
            description: None,
            revision: RevisionLocation::default(),
            messages: Vec::new(),
            stop: None,
        }
    }

    fn target_status(&self) -> &'static str {
        match self.status {
            Status::Created => "Pending",
            Status::InProgress => "InProgress",
            Status::Succeeded => "Succeeded",
            Status::Failed | Status::Stopped => "Failed",
        }
    }

    fn info(&self, id: &str) -> DeploymentInfo {
        let mut overview = wire::DeploymentOverview::default();
        match self.status {
            Status::Created => overview.pending = 1,
            Status::InProgress => overview.in_progress = 1,
            Status::Succeeded => overview.succeeded = 1,
            Status::Failed | Status::Stopped => overview.failed = 1,
        }
        let mut revision = self.revision.clone();
        for content in [&mut revision.app_spec_content, &mut revision.string]
            .into_iter()
            .flatten()
        {
            content.content = None;
        }
        DeploymentInfo {
            application_name: self.application.clone(),
            deployment_group_name: self.group.clone(),
            deployment_config_name: self.config_name.clone(),
            deployment_id: id.to_owned(),
            revision,
            status: self.status.as_str(),
            error_information: self.failure.as_ref().map(|f| wire::ErrorInformation {
                code: f.code,
                message: f.message.clone(),
            }),
            create_time: epoch_seconds(self.created),
            start_time: self.started.map(epoch_seconds),
            complete_time: self.completed.map(epoch_seconds),
            deployment_overview: overview,
            description: self.description.clone(),
            creator: self.creator,
            auto_rollback_configuration: self.auto_rollback.clone(),
            override_alarm_configuration: self.override_alarms.clone(),
            rollback_info: (self.rollback != RollbackInfo::default()).then(|| self.rollback.clone()),
            deployment_style: json!({"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}),
            compute_platform: "Lambda",
            deployment_status_messages: self.messages.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Group {
    config_name: Option<String>,
    auto_rollback: AutoRollbackConfiguration,
    alarms: wire::AlarmConfiguration,
}

#[derive(Default)]
struct Inner {
    applications: HashSet<String>,
    groups: HashMap<(String, String), Group>,
    configs: HashMap<String, TrafficRouting>,
    deployments: HashMap<String, Deployment>,
    /// (deployment, hook execution) → statuses accepted, in order.
    statuses: HashMap<(String, String), Vec<String>>,
    /// operation → (remaining count, fault).
    fail_next: HashMap<String, (usize, Fault)>,
    /// operation → (until, fault).
    fail_until: HashMap<String, (Instant, Fault)>,
    /// Every call received: (operation, accepted).
    calls: Vec<(String, bool)>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Woken whenever a hook reports or a stop is requested.
    changed: Notify,
    engine: Option<Arc<Engine>>,
}

/// A running CodeDeploy endpoint on 127.0.0.1.
pub struct CodeDeploy {
    endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl CodeDeploy {
    /// Starts an endpoint without an engine: deployments are registered by
    /// [`CodeDeploy::add_deployment`] and hooks report to it;
    /// `CreateDeployment` is refused.
    pub async fn start() -> Result<Self, Error> {
        Self::serve(None).await
    }

    /// Starts an endpoint whose `CreateDeployment` runs deployments with `engine`.
    pub async fn start_with(engine: Engine) -> Result<Self, Error> {
        Self::serve(Some(Arc::new(engine))).await
    }

    async fn serve(engine: Option<Arc<Engine>>) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            changed: Notify::new(),
            engine,
        });
        let app = Router::new()
            .route("/", post(handle))
            .with_state(shared.clone())
            .layer(axum::middleware::map_response(crate::with_request_id));
        let (address, server) = crate::serve_router(app).await?;
        let endpoint = format!("http://{address}");
        Ok(Self {
            endpoint,
            shared,
            server,
        })
    }

    /// The value for `AWS_ENDPOINT_URL_CODEDEPLOY`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Registers a deployment of `target`, in progress and driven by no
    /// engine, whose lifecycle hooks have the executions `hooks`.
    pub async fn add_deployment(&self, deployment_id: &str, target: LambdaTarget, hooks: &[&str]) {
        let mut deployment = Deployment::new(target);
        deployment.status = Status::InProgress;
        deployment.hooks = hooks.iter().map(|h| ((*h).to_owned(), None)).collect();
        self.shared
            .inner
            .lock()
            .await
            .deployments
            .insert(deployment_id.to_owned(), deployment);
    }

    /// The next `times` calls of `operation` fail with `fault`.
    pub async fn fail_next(&self, operation: &str, times: usize, fault: Fault) {
        self.shared
            .inner
            .lock()
            .await
            .fail_next
            .insert(operation.to_owned(), (times, fault));
    }

    /// Every call of `operation` fails with `fault` for `period`.
    pub async fn fail_for(&self, operation: &str, period: Duration, fault: Fault) {
        self.shared
            .inner
            .lock()
            .await
            .fail_until
            .insert(operation.to_owned(), (Instant::now() + period, fault));
    }

    /// The statuses accepted for one hook execution, in order.
    pub async fn statuses(&self, deployment_id: &str, hook_execution_id: &str) -> Vec<String> {
        let inner = self.shared.inner.lock().await;
        inner
            .statuses
            .get(&(deployment_id.to_owned(), hook_execution_id.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every call received, as (operation, whether it was accepted).
    pub async fn calls(&self) -> Vec<(String, bool)> {
        self.shared.inner.lock().await.calls.clone()
    }
}

impl Drop for CodeDeploy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Throttle => Refusal::new("ThrottlingException", "Rate exceeded").into_response(),
        Fault::ServerError => internal_failure(),
        Fault::Stall(period) => {
            tokio::time::sleep(period).await;
            internal_failure()
        }
    }
}

fn internal_failure() -> Response {
    Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        kind: "InternalFailure",
        message: String::from("An internal error occurred"),
    }
    .into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix("CodeDeploy_20141006.") else {
        return Refusal::new("UnknownOperationException", format!("unknown target {target:?}")).into_response();
    };
    let mut inner = shared.inner.lock().await;
    let injected = match inner.fail_next.get_mut(operation) {
        Some((remaining, fault)) if *remaining > 0 => {
            *remaining -= 1;
            Some(*fault)
        }
        _ => inner
            .fail_until
            .get(operation)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, fault)| *fault),
    };
    if let Some(fault) = injected {
        inner.calls.push((operation.to_owned(), false));
        drop(inner);
        return fault_response(fault).await;
    }
    let result = dispatch(&shared, &mut inner, operation, &body);
    inner.calls.push((operation.to_owned(), result.is_ok()));
    drop(inner);
    match result {
        Ok(Reply::Body(body)) => ok(body),
        Ok(Reply::Started(body, id)) => {
            if let Some(engine) = shared.engine.clone() {
                tokio::spawn(engine::drive(shared.clone(), engine, id));
            }
            ok(body)
        }
        Ok(Reply::Changed(body)) => {
            shared.changed.notify_waiters();
            ok(body)
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// What an accepted call answers, and what it sets going.
enum Reply {
    Body(Value),
    /// A deployment to drive.
    Started(Value, String),
    /// A hook reported or a stop was asked for: wake the engine.
    Changed(Value),
}

fn input<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|err| Refusal::new("SerializationException", format!("the request body: {err}")))
}

fn required(value: Option<String>, kind: &'static str, what: &str) -> Result<String, Refusal> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Refusal::new(kind, format!("{what} must be specified.")))
}

/// `d-` and nine characters from A–Z and 0–9, as every id in AWS's documentation.
fn deployment_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let tail: String = (0..9)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect();
    format!("d-{tail}")
}

/// This stand-in deploys Lambda functions only.
fn lambda_platform(platform: Option<&str>) -> Result<(), Refusal> {
    if platform == Some("Lambda") {
        Ok(())
    } else {
        Err(Refusal::new(
            "InvalidComputePlatformException",
            "This stand-in deploys Lambda functions only: computePlatform must be Lambda.",
        ))
    }
}

impl Inner {
    fn application_exists(&self, application: &str) -> Result<(), Refusal> {
        if self.applications.contains(application) {
            Ok(())
        } else {
            Err(Refusal::new(
                "ApplicationDoesNotExistException",
                format!("No application found for name: {application}"),
            ))
        }
    }

    fn routing(&self, name: &str) -> Option<TrafficRouting> {
        TrafficRouting::predefined(name).or_else(|| self.configs.get(name).copied())
    }

    fn deployment(&self, input: &Value) -> Result<(String, &Deployment), Refusal> {
        let id = required(
            input.get("deploymentId").and_then(Value::as_str).map(str::to_owned),
            "DeploymentIdRequiredException",
            "A deployment ID",
        )?;
        match self.deployments.get(&id) {
            Some(found) => Ok((id, found)),
            None => Err(Refusal::new(
                "DeploymentDoesNotExistException",
                format!("The deployment {id} could not be found."),
            )),
        }
    }
}

fn dispatch(shared: &Shared, inner: &mut Inner, operation: &str, body: &Bytes) -> Result<Reply, Refusal> {
    match operation {
        "CreateApplication" => {
            let request: wire::CreateApplication = input(body)?;
            let name = required(
                request.application_name,
                "ApplicationNameRequiredException",
                "An application name",
            )?;
            lambda_platform(request.compute_platform.as_deref())?;
            if !inner.applications.insert(name.clone()) {
                return Err(Refusal::new(
                    "ApplicationAlreadyExistsException",
                    format!("The application {name} already exists."),
                ));
            }
            Ok(Reply::Body(json!({"applicationId": uuid::Uuid::new_v4().to_string()})))
        }
        "CreateDeploymentGroup" => {
            let request: wire::CreateDeploymentGroup = input(body)?;
            let application = required(
                request.application_name,
                "ApplicationNameRequiredException",
                "An application name",
            )?;
            let group = required(
                request.deployment_group_name,
                "DeploymentGroupNameRequiredException",
                "A deployment group name",
            )?;
            required(request.service_role_arn, "RoleRequiredException", "A service role ARN")?;
            inner.application_exists(&application)?;
            if let Some(name) = &request.deployment_config_name
                && inner.routing(name).is_none()
            {
                return Err(Refusal::new(
                    "DeploymentConfigDoesNotExistException",
                    format!("No deployment configuration found for name: {name}"),
                ));
            }
            let key = (application, group);
            if inner.groups.contains_key(&key) {
                return Err(Refusal::new(
                    "DeploymentGroupAlreadyExistsException",
                    format!("The deployment group {} already exists.", key.1),
                ));
            }
            let alarms = request.alarm_configuration.unwrap_or_default();
            check_alarms(&alarms)?;
            inner.groups.insert(
                key,
                Group {
                    config_name: request.deployment_config_name,
                    auto_rollback: request.auto_rollback_configuration.unwrap_or_default(),
                    alarms,
                },
            );
            Ok(Reply::Body(
                json!({"deploymentGroupId": uuid::Uuid::new_v4().to_string()}),
            ))
        }
        "CreateDeploymentConfig" => {
            let request: wire::CreateDeploymentConfig = input(body)?;
            let name = required(
                request.deployment_config_name,
                "DeploymentConfigNameRequiredException",
                "A deployment configuration name",
            )?;
            lambda_platform(request.compute_platform.as_deref())?;
            if inner.routing(&name).is_some() {
                return Err(Refusal::new(
                    "DeploymentConfigAlreadyExistsException",
                    format!("A deployment configuration named {name} already exists."),
                ));
            }
            let routing = request
                .traffic_routing_config
                .ok_or_else(|| {
                    Refusal::new(
                        "InvalidTrafficRoutingConfigurationException",
                        "trafficRoutingConfig must be specified for Lambda.",
                    )
                })
                .and_then(|wire| {
                    TrafficRouting::from_wire(&wire)
                        .map_err(|message| Refusal::new("InvalidTrafficRoutingConfigurationException", message))
                })?;
            inner.configs.insert(name, routing);
            Ok(Reply::Body(
                json!({"deploymentConfigId": uuid::Uuid::new_v4().to_string()}),
            ))
        }
        "GetDeploymentConfig" => {
            let request: Value = input(body)?;
            let name = required(
                request
                    .get("deploymentConfigName")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                "DeploymentConfigNameRequiredException",
                "A deployment configuration name",
            )?;
            let routing = inner.routing(&name).ok_or_else(|| {
                Refusal::new(
                    "DeploymentConfigDoesNotExistException",
                    format!("No deployment configuration found for name: {name}"),
                )
            })?;
            Ok(Reply::Body(json!({"deploymentConfigInfo": {
                "deploymentConfigName": name,
                "computePlatform": "Lambda",
                "trafficRoutingConfig": routing.to_wire(),
            }})))
        }
        "CreateDeployment" => create_deployment(shared, inner, input(body)?),
        "GetDeployment" => {
            let (id, deployment) = inner.deployment(&input(body)?)?;
            Ok(Reply::Body(json!({"deploymentInfo": deployment.info(&id)})))
        }
        "StopDeployment" => {
            let request: wire::StopDeployment = input(body)?;
            let (id, deployment) = inner.deployment(&json!({"deploymentId": request.deployment_id}))?;
            if deployment.status.is_final() {
                return Err(Refusal::new(
                    "DeploymentAlreadyCompletedException",
                    format!("The deployment {id} has already completed."),
                ));
            }
            let rollback = request.auto_rollback_enabled.unwrap_or_else(|| {
                deployment
                    .auto_rollback
                    .on(wire::AutoRollbackEvent::DeploymentStopOnRequest)
            });
            if let Some(deployment) = inner.deployments.get_mut(&id) {
                deployment.stop = Some(rollback);
            }
            Ok(Reply::Changed(json!({
                "status": "Pending",
                "statusMessage": "Stopping the deployment; no further lifecycle events or traffic shifts will start."
            })))
        }
        "ListDeploymentTargets" => {
            let (_, deployment) = inner.deployment(&input(body)?)?;
            Ok(Reply::Body(json!({"targetIds": [deployment.target.target_id()]})))
        }
        "GetDeploymentTarget" => {
            let request: Value = input(body)?;
            let (id, deployment) = inner.deployment(&request)?;
            if request.get("targetId").and_then(Value::as_str) != Some(deployment.target.target_id().as_str()) {
                return Err(Refusal::new(
                    "DeploymentTargetDoesNotExistException",
                    "The target could not be found.",
                ));
            }
            Ok(Reply::Body(json!({"deploymentTarget": {
                "deploymentTargetType": "LambdaTarget",
                "lambdaTarget": engine::target_info(&id, deployment),
            }})))
        }
        "PutLifecycleEventHookExecutionStatus" => {
            let request: Value = input(body)?;
            let (id, deployment) = inner.deployment(&request)?;
            let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
            let hook = field("lifecycleEventHookExecutionId");
            let status = field("status");
            let Some((_, event)) = deployment.hooks.iter().find(|(h, _)| *h == hook) else {
                return Err(Refusal::new(
                    "InvalidLifecycleEventHookExecutionIdException",
                    format!("The lifecycle event hook execution ID {hook} is invalid."),
                ));
            };
            // A lifecycle event the engine already ended (its hook timed
            // out, or the deployment stopped) takes no more statuses.
            let ended = event.is_some_and(|i| deployment.events[i].status != EventStatus::InProgress);
            if !matches!(status.as_str(), "Succeeded" | "Failed") {
                return Err(Refusal::new(
                    "InvalidLifecycleEventHookExecutionStatusException",
                    format!("The status {status} is invalid."),
                ));
            }
            let recorded = inner.statuses.entry((id, hook.clone())).or_default();
            if ended || !recorded.is_empty() {
                return Err(Refusal::new(
                    "LifecycleEventAlreadyCompletedException",
                    "The lifecycle event is already completed.",
                ));
            }
            recorded.push(status);
            Ok(Reply::Changed(json!({"lifecycleEventHookExecutionId": hook})))
        }
        other => Err(Refusal::new(
            "UnknownOperationException",
            format!("{other} is not supported here"),
        )),
    }
}

/// An `AlarmConfiguration` CodeDeploy accepts: at most 10 alarms, each
/// named once with 1 to 255 characters, and at least one when enabled.
fn check_alarms(alarms: &wire::AlarmConfiguration) -> Result<(), Refusal> {
    if alarms.enabled && alarms.alarms.is_empty() {
        return Err(Refusal::new(
            "InvalidAlarmConfigException",
            "The alarm configuration is enabled, but the alarm list is empty.",
        ));
    }
    let mut names: Vec<&str> = alarms.alarms.iter().map(|a| a.name.as_str()).collect();
    if names.len() > 10 {
        return Err(Refusal::new(
            "AlarmsLimitExceededException",
            "The maximum number of alarms for a deployment group (10) has been exceeded.",
        ));
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) || names.iter().any(|n| n.is_empty() || n.chars().count() > 255) {
        return Err(Refusal::new(
            "InvalidAlarmConfigException",
            "The alarm configuration is invalid: each alarm name is 1 to 255 characters and used only once.",
        ));
    }
    Ok(())
}

fn create_deployment(shared: &Shared, inner: &mut Inner, request: wire::CreateDeployment) -> Result<Reply, Refusal> {
    if shared.engine.is_none() {
        return Err(Refusal::new(
            "UnsupportedActionForDeploymentTypeException",
            "This CodeDeploy stand-in was started without an engine (CodeDeploy::start_with runs deployments).",
        ));
    }
    let application = required(
        request.application_name,
        "ApplicationNameRequiredException",
        "An application name",
    )?;
    let group_name = required(
        request.deployment_group_name,
        "DeploymentGroupNameRequiredException",
        "A deployment group name",
    )?;
    inner.application_exists(&application)?;
    let group = inner
        .groups
        .get(&(application.clone(), group_name.clone()))
        .cloned()
        .ok_or_else(|| {
            Refusal::new(
                "DeploymentGroupDoesNotExistException",
                format!("No Deployment Group found for name: {group_name}"),
            )
        })?;
    if let Some(alarms) = &request.override_alarm_configuration {
        check_alarms(alarms)?;
    }
    let revision = request
        .revision
        .ok_or_else(|| Refusal::new("RevisionRequiredException", "A revision must be specified."))?;
    let content = match revision.revision_type.as_deref() {
        Some("AppSpecContent") => revision.app_spec_content.as_ref(),
        Some("String") => revision.string.as_ref(),
        _ => {
            return Err(Refusal::new(
                "InvalidRevisionException",
                "A Lambda deployment's revision is of type AppSpecContent (or String) with the AppSpec as its content.",
            ));
        }
    }
    .and_then(|c| c.content.clone())
    .ok_or_else(|| Refusal::new("InvalidRevisionException", "The revision has no AppSpec content."))?;
    let spec =
        appspec::AppSpec::parse(&content).map_err(|err| Refusal::new("InvalidRevisionException", err.to_string()))?;
    // The group's configuration, else the default a Lambda group gets here
    // (what AWS picks when neither names one is not published).
    let config_name = request
        .deployment_config_name
        .or(group.config_name)
        .unwrap_or_else(|| String::from("CodeDeployDefault.LambdaAllAtOnce"));
    if inner.routing(&config_name).is_none() {
        return Err(Refusal::new(
            "DeploymentConfigDoesNotExistException",
            format!("No deployment configuration found for name: {config_name}"),
        ));
    }
    let busy = inner
        .deployments
        .values()
        .any(|d| d.application == application && d.group == group_name && !d.status.is_final());
    if busy {
        return Err(Refusal::new(
            "DeploymentLimitExceededException",
            format!("The deployment group {group_name} already has an active deployment."),
        ));
    }
    let id = deployment_id();
    let mut deployment = Deployment::new(spec.target.clone());
    deployment.application = application;
    deployment.group = group_name;
    deployment.config_name = config_name;
    deployment.auto_rollback = request.auto_rollback_configuration.unwrap_or(group.auto_rollback);
    deployment.override_alarms = request.override_alarm_configuration.clone();
    deployment.alarms = request.override_alarm_configuration.unwrap_or(group.alarms);
    deployment.description = request.description;
    deployment.revision = revision;
    inner.deployments.insert(id.clone(), deployment);
    Ok(Reply::Started(json!({"deploymentId": id}), id))
}
