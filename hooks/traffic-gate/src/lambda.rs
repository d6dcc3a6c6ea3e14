//! The hook functions' `main`: telemetry, configuration, the bundled plans
//! and the hooks' identity, then `lambda_runtime` with the invocation's
//! deadline. Init never fails hard — a hook that does not start leaves the
//! deployment waiting for an hour — so bad configuration or a missing secret
//! is logged and the checks then fail, which CodeDeploy hears as `Failed`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use collection_runner::transport::PayloadFormat;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::credentials::Credentials;
use crate::plan::{MetricsSink, Plans};
use crate::{Clients, Gate, Phase, Settings};

/// The hooks' configuration, under `/{app}/{stage}/traffic-gate/` in SSM
/// (each key overridable with `CONFIG_<KEY>`); every key has a default.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct HookConfig {
    /// `/health` must answer within this.
    pub smoke_budget_ms: u64,
    /// Checks still running this close to the deadline are cut off.
    pub deadline_margin_ms: u64,
    /// Per request of the checks.
    pub request_timeout_ms: u64,
    /// `rest` (API Gateway REST, payload 1.0) or `http` (HTTP API, payload 2.0).
    pub payload_format: String,
    /// The REST API stage name put in the events.
    pub api_stage: String,
    /// After traffic: the live base URL per function (`live_urls/accounts`);
    /// functions without one are checked by invoking their alias.
    pub live_urls: BTreeMap<String, String>,
    /// The user pool's OAuth 2.0 token endpoint the hooks' client gets its
    /// tokens from (`https://<domain>/oauth2/token`); without it every
    /// check that needs a token fails.
    pub token_url: String,
}

impl Default for HookConfig {
    fn default() -> Self {
        Self {
            smoke_budget_ms: 1500,
            deadline_margin_ms: 3000,
            request_timeout_ms: 10_000,
            payload_format: String::from("rest"),
            api_stage: String::from("live"),
            live_urls: BTreeMap::new(),
            token_url: String::new(),
        }
    }
}

impl HookConfig {
    /// The gate's settings from this configuration.
    pub fn settings(&self, metrics: Option<MetricsSink>) -> Settings {
        Settings {
            smoke_budget: Duration::from_millis(self.smoke_budget_ms),
            deadline_margin: Duration::from_millis(self.deadline_margin_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            payload: match self.payload_format.as_str() {
                "http" => PayloadFormat::HttpV2,
                _ => PayloadFormat::RestV1 {
                    stage: self.api_stage.clone(),
                },
            },
            metrics,
        }
    }
}

/// Where the hook's configuration lives.
pub const CONFIG_NAME: &str = "traffic-gate";

/// How long the hooks' client secret is kept before it is read again (a
/// rotated secret is picked up within this).
const CLIENT_SECRET_TTL: Duration = Duration::from_secs(300);

/// Builds the gate for `phase`: configuration from SSM, plans from the
/// bundle for the deployment's stage, the hooks' client from Secrets Manager.
pub async fn gate(phase: Phase, sdk: &aws_config::SdkConfig, deployment: &shared::naming::Deployment) -> Gate {
    let ssm = shared::aws::ssm(sdk);
    let prefix = deployment.config_prefix(CONFIG_NAME);
    let config: HookConfig = match shared::config::load(&ssm, &prefix).await {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(error = %err, "hook configuration unusable; using the defaults and the CONFIG_* overrides");
            shared::config::from_raw(&prefix, &shared::config::overrides()).unwrap_or_else(|err| {
                tracing::error!(error = %err, "the CONFIG_* overrides are unusable too; using the defaults");
                HookConfig::default()
            })
        }
    };
    let live_urls: Vec<(String, String)> = config.live_urls.clone().into_iter().collect();
    let (plans, scopes) = match crate::bundle::plans(&deployment.stage, &live_urls) {
        Ok(bundled) => bundled,
        Err(err) => return unusable(phase, sdk, format!("the bundled checks are unusable: {err}")),
    };
    let secrets_client = shared::aws::secrets_manager(sdk);
    let credentials = credentials(&config, &secrets_client, deployment, scopes).await;
    Gate {
        phase,
        plans,
        settings: config.settings(Some(metrics(phase))),
        clients: Clients::new(sdk),
        credentials,
        unusable: None,
    }
}

/// A gate that can check nothing, for `reason`: each verdict is `Failed`
/// with it, reported to CodeDeploy like any other.
fn unusable(phase: Phase, sdk: &aws_config::SdkConfig, reason: String) -> Gate {
    tracing::error!(%reason, "the hook can check nothing; every verdict will be Failed");
    Gate {
        phase,
        plans: Plans::default(),
        settings: HookConfig::default().settings(Some(metrics(phase))),
        clients: Clients::new(sdk),
        credentials: Credentials::Unusable(reason.clone()),
        unusable: Some(reason),
    }
}

/// The hook's metrics, as EMF on stdout.
fn metrics(phase: Phase) -> MetricsSink {
    MetricsSink(shared::metrics::MetricsConfig::from_env(
        phase.as_str(),
        Arc::new(shared::telemetry::Stdout),
    ))
}

/// The hooks' client from Secrets Manager and the token endpoint from the
/// configuration, for tokens with the bundled services' `scopes`; what is
/// missing makes the credential check fail.
async fn credentials(
    config: &HookConfig,
    secrets: &aws_sdk_secretsmanager::Client,
    deployment: &shared::naming::Deployment,
    scopes: crate::bundle::Scopes,
) -> Credentials {
    if config.token_url.is_empty() {
        let reason = format!(
            "no token endpoint: set token_url under {}",
            deployment.config_prefix(CONFIG_NAME)
        );
        tracing::error!(%reason, "the hooks have no identity; checks that need a token will fail");
        return Credentials::Unusable(reason);
    }
    let id = deployment.secret_name(&crate::credentials::client_secret());
    match shared::secrets::fetch::<shared::credentials::ClientCredentials>(secrets, &id).await {
        Ok(client) => {
            let client = Arc::new(shared::secrets::SecretStore::with_value(
                secrets.clone(),
                id,
                CLIENT_SECRET_TTL,
                client,
            ));
            let http = reqwest::Client::new();
            let source = |scopes| {
                Arc::new(shared::credentials::TokenSource::new(
                    &config.token_url,
                    client.clone(),
                    scopes,
                    http.clone(),
                ))
            };
            Credentials::ClientCredentials {
                customer: source(scopes.customer),
                service: source(scopes.service),
            }
        }
        Err(err) => {
            let reason = format!("the hooks' client secret {id} is unusable: {err}");
            tracing::error!(%reason, "the hooks have no identity; checks that need a token will fail");
            Credentials::Unusable(reason)
        }
    }
}

/// A hook function's whole `main`.
pub async fn run(phase: Phase, info: &'static shared::ServiceInfo) -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(info);
    let sdk = shared::aws::sdk_config().await;
    // Init never fails: a hook that cannot start its checks still answers
    // every event with a reported Failed verdict saying why.
    let gate = match shared::naming::Deployment::from_env() {
        Ok(deployment) => gate(phase, &sdk, &deployment).await,
        Err(missing) => unusable(phase, &sdk, format!("the hook's own environment: {missing}")),
    };
    let gate = Arc::new(gate);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let gate = gate.clone();
        async move { invoke(&gate, event).await }
    }))
    .await
}

async fn invoke(gate: &Gate, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let remaining = event
        .context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let deadline = Instant::now() + remaining;
    let parsed = crate::parse_event(&event.payload).inspect_err(|err| {
        tracing::error!(payload = %event.payload, error = %err, "not a CodeDeploy lifecycle event; nothing can be reported");
    })?;
    // The hook's subsegment of the invocation's facade; checks, SDK calls and
    // collection requests nest under it.
    let span = tracing::info_span!(
        "hook",
        otel.name = gate.phase.as_str(),
        otel.status_code = tracing::field::Empty,
        annotation.phase = gate.phase.as_str(),
        annotation.deployment_id = parsed.deployment_id.as_str(),
        annotation.verdict = tracing::field::Empty,
    );
    shared::xray::adopt(&span, event.context.xray_trace_id.as_deref());
    let report = gate.handle(&parsed, deadline).instrument(span.clone()).await;
    span.record(
        "annotation.verdict",
        if report.verdict { "Succeeded" } else { "Failed" },
    );
    if !report.verdict {
        span.record("otel.status_code", "error");
    }
    Ok(json!({"verdict": if report.verdict { "Succeeded" } else { "Failed" }, "reason": report.reason}))
}
