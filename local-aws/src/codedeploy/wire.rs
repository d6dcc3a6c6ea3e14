//! The shapes CodeDeploy's awsJson1.1 protocol carries, as the service
//! model names them, and its error responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::config::TrafficRoutingConfig;

/// A refusal, with the `__type` the SDK matches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status (400 for every client error CodeDeploy sends).
    pub status: StatusCode,
    /// The exception's shape name.
    pub kind: &'static str,
    /// The message.
    pub message: String,
}

impl Refusal {
    /// A 400 with `kind` and `message`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-errortype", self.kind),
            ],
            serde_json::json!({"__type": self.kind, "message": self.message}).to_string(),
        )
            .into_response()
    }
}

/// Seconds since the epoch, fractions allowed: how CodeDeploy sends times.
pub fn epoch_seconds(at: std::time::SystemTime) -> f64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `AutoRollbackConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoRollbackConfiguration {
    /// Whether rollback happens at all.
    #[serde(default)]
    pub enabled: bool,
    /// `DEPLOYMENT_FAILURE | DEPLOYMENT_STOP_ON_ALARM | DEPLOYMENT_STOP_ON_REQUEST`.
    #[serde(default)]
    pub events: Vec<AutoRollbackEvent>,
}

/// What rolls a deployment back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AutoRollbackEvent {
    /// The deployment failed.
    DeploymentFailure,
    /// An alarm stopped it.
    DeploymentStopOnAlarm,
    /// `StopDeployment` stopped it.
    DeploymentStopOnRequest,
}

impl AutoRollbackConfiguration {
    /// Whether `event` rolls back.
    pub fn on(&self, event: AutoRollbackEvent) -> bool {
        self.enabled && self.events.contains(&event)
    }
}

/// `CreateApplication`'s input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApplication {
    /// The name.
    pub application_name: Option<String>,
    /// `Server | Lambda | ECS`.
    pub compute_platform: Option<String>,
}

/// `CreateDeploymentGroup`'s input (what a Lambda group uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDeploymentGroup {
    /// The application.
    pub application_name: Option<String>,
    /// The group.
    pub deployment_group_name: Option<String>,
    /// The default configuration of its deployments.
    pub deployment_config_name: Option<String>,
    /// Required by the service; not checked here.
    pub service_role_arn: Option<String>,
    /// Rollback policy.
    pub auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    /// The alarms that stop its deployments.
    pub alarm_configuration: Option<AlarmConfiguration>,
}

/// `AlarmConfiguration`: the CloudWatch alarms that stop a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmConfiguration {
    /// Whether the alarms are watched.
    #[serde(default)]
    pub enabled: bool,
    /// Whether a deployment goes on when the alarms cannot be read.
    #[serde(default)]
    pub ignore_poll_alarm_failure: bool,
    /// At most 10, each named once.
    #[serde(default)]
    pub alarms: Vec<Alarm>,
}

/// `Alarm`: `{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// The alarm's name.
    pub name: String,
}

/// `CreateDeploymentConfig`'s input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDeploymentConfig {
    /// The name.
    pub deployment_config_name: Option<String>,
    /// How traffic shifts.
    pub traffic_routing_config: Option<TrafficRoutingConfig>,
    /// Must be `Lambda` here.
    pub compute_platform: Option<String>,
}

/// `RevisionLocation`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionLocation {
    /// `AppSpecContent` or `String` for Lambda.
    pub revision_type: Option<String>,
    /// The AppSpec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_spec_content: Option<Content>,
    /// The AppSpec, the older way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<Content>,
}

/// `AppSpecContent` / `RawString`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// The AppSpec text; `GetDeployment` always answers it null.
    pub content: Option<String>,
    /// Its SHA-256.
    pub sha256: Option<String>,
}

/// `CreateDeployment`'s input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDeployment {
    /// The application.
    pub application_name: Option<String>,
    /// The group.
    pub deployment_group_name: Option<String>,
    /// The AppSpec.
    pub revision: Option<RevisionLocation>,
    /// Overrides the group's configuration.
    pub deployment_config_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Overrides the group's rollback policy.
    pub auto_rollback_configuration: Option<AutoRollbackConfiguration>,
    /// Overrides the group's alarms for this deployment: how a fix ships
    /// while the version it replaces keeps an alarm in `ALARM`.
    pub override_alarm_configuration: Option<AlarmConfiguration>,
}

/// `StopDeployment`'s input.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopDeployment {
    /// The deployment.
    pub deployment_id: Option<String>,
    /// Whether to roll back; absent: the group's `DEPLOYMENT_STOP_ON_REQUEST`.
    pub auto_rollback_enabled: Option<bool>,
}

/// `DeploymentInfo` (the members a Lambda deployment fills).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInfo {
    /// The application.
    pub application_name: String,
    /// The group.
    pub deployment_group_name: String,
    /// The configuration.
    pub deployment_config_name: String,
    /// `d-XXXXXXXXX`.
    pub deployment_id: String,
    /// The AppSpec's location (its content null, as the service answers).
    pub revision: RevisionLocation,
    /// `Created | InProgress | Succeeded | Failed | Stopped`.
    pub status: &'static str,
    /// Why it failed or stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_information: Option<ErrorInformation>,
    /// Epoch seconds.
    pub create_time: f64,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_time: Option<f64>,
    /// Targets by status.
    pub deployment_overview: DeploymentOverview,
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `user` or `codeDeployRollback`.
    pub creator: &'static str,
    /// The rollback policy in force.
    pub auto_rollback_configuration: AutoRollbackConfiguration,
    /// The alarms this deployment watches instead of its group's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_alarm_configuration: Option<AlarmConfiguration>,
    /// Links between a deployment and its rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_info: Option<RollbackInfo>,
    /// Always `BLUE_GREEN` with traffic control for Lambda.
    pub deployment_style: serde_json::Value,
    /// `Lambda`.
    pub compute_platform: &'static str,
    /// What the deployment said along the way.
    pub deployment_status_messages: Vec<String>,
}

/// `ErrorInformation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInformation {
    /// An `ErrorCode`.
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

/// `RollbackInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackInfo {
    /// Set on the deployment that was rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_deployment_id: Option<String>,
    /// Set on the rollback deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_triggering_deployment_id: Option<String>,
    /// How the rollback went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_message: Option<String>,
}

/// `DeploymentOverview`: targets by status (one target for Lambda).
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentOverview {
    /// Waiting.
    pub pending: u64,
    /// Deploying.
    pub in_progress: u64,
    /// Done.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
    /// Ready.
    pub ready: u64,
}

/// `LifecycleEvent`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleEvent {
    /// `BeforeAllowTraffic`, `AllowTraffic` or `AfterAllowTraffic`.
    pub lifecycle_event_name: &'static str,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<f64>,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// `Pending | InProgress | Succeeded | Failed | Skipped`.
    pub status: &'static str,
}

/// `LambdaFunctionInfo`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaFunctionInfo {
    /// The function.
    pub function_name: String,
    /// The alias shifted.
    pub function_alias: String,
    /// The version the alias pointed at.
    pub current_version: String,
    /// The version deployed.
    pub target_version: String,
    /// The percentage of traffic the target version receives (0–100).
    pub target_version_weight: f64,
}

/// `LambdaTarget`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaTargetInfo {
    /// The deployment.
    pub deployment_id: String,
    /// `function:alias`.
    pub target_id: String,
    /// The alias's ARN.
    pub target_arn: String,
    /// A `TargetStatus`.
    pub status: &'static str,
    /// Epoch seconds.
    pub last_updated_at: f64,
    /// The three Lambda lifecycle events.
    pub lifecycle_events: Vec<LifecycleEvent>,
    /// The function, its versions and the weight.
    pub lambda_function_info: LambdaFunctionInfo,
}
