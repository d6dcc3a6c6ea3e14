//! A CodeDeploy endpoint for one machine, enough for the traffic hooks:
//! `ListDeploymentTargets`, `GetDeploymentTarget` and
//! `PutLifecycleEventHookExecutionStatus` in the awsJson1.1 wire format
//! (`POST /`, `X-Amz-Target: CodeDeploy_20141006.<Operation>`) with
//! CodeDeploy's error shapes, so `aws-sdk-codedeploy` talks to it through
//! `AWS_ENDPOINT_URL_CODEDEPLOY`. Every status is recorded; faults
//! (throttling, 5xx) can be injected per operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::Error;

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

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ThrottlingException`, HTTP 400.
    Throttle,
    /// `InternalFailure`, HTTP 500.
    ServerError,
}

struct Deployment {
    target: LambdaTarget,
    hooks: Vec<String>,
}

#[derive(Default)]
struct Inner {
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

/// A running CodeDeploy endpoint on 127.0.0.1.
pub struct CodeDeploy {
    endpoint: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl CodeDeploy {
    /// Starts the endpoint on a free loopback port.
    pub async fn start() -> Result<Self, Error> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/", post(handle))
            .with_state(inner.clone())
            .layer(axum::middleware::map_response(crate::with_request_id));
        let (address, server) = crate::serve_router(app).await?;
        let endpoint = format!("http://{address}");
        Ok(Self {
            endpoint,
            inner,
            server,
        })
    }

    /// The value for `AWS_ENDPOINT_URL_CODEDEPLOY`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Registers a deployment of `target` whose lifecycle hooks have the executions `hooks`.
    pub async fn add_deployment(&self, deployment_id: &str, target: LambdaTarget, hooks: &[&str]) {
        self.inner.lock().await.deployments.insert(
            deployment_id.to_owned(),
            Deployment {
                target,
                hooks: hooks.iter().map(|h| (*h).to_owned()).collect(),
            },
        );
    }

    /// The next `times` calls of `operation` fail with `fault`.
    pub async fn fail_next(&self, operation: &str, times: usize, fault: Fault) {
        self.inner
            .lock()
            .await
            .fail_next
            .insert(operation.to_owned(), (times, fault));
    }

    /// Every call of `operation` fails with `fault` for `period`.
    pub async fn fail_for(&self, operation: &str, period: Duration, fault: Fault) {
        self.inner
            .lock()
            .await
            .fail_until
            .insert(operation.to_owned(), (Instant::now() + period, fault));
    }

    /// The statuses accepted for one hook execution, in order.
    pub async fn statuses(&self, deployment_id: &str, hook_execution_id: &str) -> Vec<String> {
        let inner = self.inner.lock().await;
        inner
            .statuses
            .get(&(deployment_id.to_owned(), hook_execution_id.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every call received, as (operation, whether it was accepted).
    pub async fn calls(&self) -> Vec<(String, bool)> {
        self.inner.lock().await.calls.clone()
    }
}

impl Drop for CodeDeploy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amzn-errortype", kind),
        ],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Throttle => error(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded"),
        Fault::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "An internal error occurred",
        ),
    }
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix("CodeDeploy_20141006.") else {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("unknown target {target:?}"),
        );
    };
    let Ok(input) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "SerializationException", "body is not JSON");
    };
    let mut inner = inner.lock().await;
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
        return fault_response(fault);
    }
    let response = dispatch(&mut inner, operation, &input);
    let accepted = response.status().is_success();
    inner.calls.push((operation.to_owned(), accepted));
    response
}

fn dispatch(inner: &mut Inner, operation: &str, input: &Value) -> Response {
    let field = |name: &str| input.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let deployment_id = field("deploymentId");
    if deployment_id.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "DeploymentIdRequiredException",
            "A deployment ID must be specified.",
        );
    }
    let Some(deployment) = inner.deployments.get(&deployment_id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "DeploymentDoesNotExistException",
            &format!("The deployment {deployment_id} could not be found."),
        );
    };
    let target = &deployment.target;
    let target_id = format!("{}:{}", target.function_name, target.alias);
    match operation {
        "ListDeploymentTargets" => ok(json!({"targetIds": [target_id]})),
        "GetDeploymentTarget" => {
            if field("targetId") != target_id {
                return error(
                    StatusCode::BAD_REQUEST,
                    "DeploymentTargetDoesNotExistException",
                    "The target could not be found.",
                );
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            ok(json!({"deploymentTarget": {
                "deploymentTargetType": "LambdaTarget",
                "lambdaTarget": {
                    "deploymentId": deployment_id,
                    "targetId": target_id,
                    "targetArn": format!("arn:aws:lambda:us-east-1:000000000000:function:{}:{}", target.function_name, target.alias),
                    "status": "InProgress",
                    "lastUpdatedAt": now,
                    "lifecycleEvents": [],
                    "lambdaFunctionInfo": {
                        "functionName": target.function_name,
                        "functionAlias": target.alias,
                        "currentVersion": target.current_version,
                        "targetVersion": target.target_version,
                        "targetVersionWeight": 0.0
                    }
                }
            }}))
        }
        "PutLifecycleEventHookExecutionStatus" => {
            let hook = field("lifecycleEventHookExecutionId");
            let status = field("status");
            if !deployment.hooks.contains(&hook) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidLifecycleEventHookExecutionIdException",
                    &format!("The lifecycle event hook execution ID {hook} is invalid."),
                );
            }
            if !matches!(status.as_str(), "Succeeded" | "Failed") {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidLifecycleEventHookExecutionStatusException",
                    &format!("The status {status} is invalid."),
                );
            }
            let recorded = inner.statuses.entry((deployment_id, hook.clone())).or_default();
            if !recorded.is_empty() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "LifecycleEventAlreadyCompletedException",
                    "The lifecycle event is already completed.",
                );
            }
            recorded.push(status);
            ok(json!({"lifecycleEventHookExecutionId": hook}))
        }
        other => error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("{other} is not supported here"),
        ),
    }
}
