//! The hook functions' `main`: telemetry, configuration, the bundled plans
//! and the hooks' identity, then `lambda_runtime` with the invocation's
//! deadline. Init never fails hard — a hook that does not start leaves the
//! deployment waiting for an hour — so bad configuration or a missing secret
//! is logged and the checks then fail, which CodeDeploy hears as `Failed`.
//!
//! What init could not read is read again: the configuration (SSM) and the
//! hooks' client secret (Secrets Manager) are fetched concurrently at init
//! and, when that fails, on each invocation until they load; once loaded
//! they are re-read after [`REREAD_AFTER`], as the services re-read theirs
//! (`shared::config::Refreshing`, `shared::secrets::SecretStore`). A
//! transient error at a cold start costs one retry, not a rollback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use collection_runner::transport::PayloadFormat;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use shared::credentials::{ClientCredentials, TokenSource};
use shared::secrets::SecretStore;

use crate::credentials::Credentials;
use crate::plan::{MetricsSink, Plans};
use crate::{Clients, Gate, Phase, Settings};

/// The hooks' configuration, under `/{app}/{stage}/traffic-gate/` in SSM
/// (each key overridable with `CONFIG_<KEY>`); every key has a default.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct HookConfig {
    /// `/health` must answer within this.
    pub smoke_budget_ms: u64,
    /// Checks still running this close to the deadline are cut off.
    pub deadline_margin_ms: u64,
    /// Per request of the checks.
    pub request_timeout_ms: u64,
    /// How long the target's first `/health` answer may take, cold start
    /// included; 0: the function's own deployed timeout.
    pub cold_start_allowance_ms: u64,
    /// Each CodeDeploy call's attempt is given up after this and retried.
    pub call_timeout_ms: u64,
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
            cold_start_allowance_ms: 0,
            call_timeout_ms: 2000,
            payload_format: String::from("rest"),
            api_stage: String::from("live"),
            live_urls: BTreeMap::new(),
            token_url: String::new(),
        }
    }
}

/// The accepted range of each duration setting, in ms: (key, value, least, most).
type Range = (&'static str, u64, u64, u64);

impl HookConfig {
    /// The gate's settings from this configuration, or every value out of
    /// its range named with the range expected.
    pub fn settings(&self, metrics: Option<MetricsSink>) -> Result<Settings, String> {
        // Lambda's longest timeout, 15 minutes, bounds every wait.
        const LAMBDA_MAX_MS: u64 = 900_000;
        let ranges: [Range; 5] = [
            ("smoke_budget_ms", self.smoke_budget_ms, 50, LAMBDA_MAX_MS),
            (
                "cold_start_allowance_ms",
                self.cold_start_allowance_ms,
                0,
                LAMBDA_MAX_MS,
            ),
            ("call_timeout_ms", self.call_timeout_ms, 100, 60_000),
            ("deadline_margin_ms", self.deadline_margin_ms, 0, LAMBDA_MAX_MS),
            ("request_timeout_ms", self.request_timeout_ms, 100, LAMBDA_MAX_MS),
        ];
        let mut problems: Vec<String> = ranges
            .iter()
            .filter(|(_, value, least, most)| value < least || value > most)
            .map(|(key, value, least, most)| format!("{key} = {value}: expected {least} to {most}"))
            .collect();
        if self.cold_start_allowance_ms != 0 && self.cold_start_allowance_ms < self.smoke_budget_ms {
            problems.push(format!(
                "cold_start_allowance_ms = {}: expected 0 (the function's timeout) or at least smoke_budget_ms ({})",
                self.cold_start_allowance_ms, self.smoke_budget_ms
            ));
        }
        let payload = match self.payload_format.as_str() {
            "http" => Some(PayloadFormat::HttpV2),
            "rest" => Some(PayloadFormat::RestV1 {
                stage: self.api_stage.clone(),
            }),
            other => {
                problems.push(format!("payload_format = {other:?}: expected \"rest\" or \"http\""));
                None
            }
        };
        match payload {
            Some(payload) if problems.is_empty() => Ok(Settings {
                smoke_budget: Duration::from_millis(self.smoke_budget_ms),
                cold_start_allowance: (self.cold_start_allowance_ms > 0)
                    .then(|| Duration::from_millis(self.cold_start_allowance_ms)),
                call_timeout: Duration::from_millis(self.call_timeout_ms),
                deadline_margin: Duration::from_millis(self.deadline_margin_ms),
                request_timeout: Duration::from_millis(self.request_timeout_ms),
                payload,
                metrics,
            }),
            _ => Err(problems.join("; ")),
        }
    }
}

/// Where the hook's configuration lives.
pub const CONFIG_NAME: &str = "traffic-gate";

/// How long the configuration and the hooks' client secret are kept before
/// they are read again (a rotated secret or changed setting is picked up
/// within this).
pub const REREAD_AFTER: Duration = Duration::from_secs(300);

/// The longest a read of the configuration or the client secret may take at
/// init (a quarter of the time left, at most, at an event), so a stalled
/// SSM or Secrets Manager costs a bounded wait, never the verdict.
pub const READ_LIMIT: Duration = Duration::from_secs(3);

/// What a hook keeps between invocations: its clients, its configuration and
/// its client secret (each re-read after [`REREAD_AFTER`], or on the next
/// invocation when init could not read it), and the gate built from the
/// configuration last seen.
pub struct Hook {
    phase: Phase,
    clients: Clients,
    /// What the hook reads, or why its own environment names no deployment.
    sources: Result<Sources, String>,
    http: reqwest::Client,
    /// The gate for the configuration value it was built from.
    built: tokio::sync::Mutex<Option<(Arc<HookConfig>, Gate)>>,
}

/// Where a hook of one deployment reads its configuration and its client.
struct Sources {
    deployment: shared::naming::Deployment,
    config: shared::config::Refreshing<HookConfig>,
    secret: Arc<SecretStore<ClientCredentials>>,
}

impl Hook {
    /// The hook of `deployment` (or of none, for the reason given): reads
    /// its configuration and client secret concurrently; what cannot be
    /// read now is read again when an event comes.
    pub async fn load(
        phase: Phase,
        sdk: &aws_config::SdkConfig,
        deployment: Result<shared::naming::Deployment, String>,
    ) -> Self {
        let sources = match deployment {
            Ok(deployment) => Ok(Sources::load(sdk, deployment).await),
            Err(reason) => Err(reason),
        };
        Self {
            phase,
            clients: Clients::new(sdk),
            sources,
            http: reqwest::Client::new(),
            built: tokio::sync::Mutex::new(None),
        }
    }

    /// The gate for an event due by `deadline`: built again when the
    /// configuration changed. A read slower than its share of the time is a
    /// failed read, and a failed read keeps the values loaded before. When
    /// nothing ever loaded, the event runs on the defaults and the
    /// `CONFIG_*` overrides and says so wherever a missing value fails a
    /// check. Invalid configuration keeps the last good gate, or with none
    /// fails every check naming the keys.
    pub async fn gate(&self, deadline: Instant) -> Gate {
        let sources = match &self.sources {
            Ok(sources) => sources,
            Err(reason) => return self.unusable(reason.clone()),
        };
        let budget = READ_LIMIT.min(deadline.saturating_duration_since(Instant::now()) / 4);
        let unreadable = match sources.config.get_within(budget).await {
            Ok(config) => return self.gate_for(config, sources).await,
            Err(err @ shared::config::ConfigError::Invalid { .. }) => {
                return self.unusable(format!("configuration: {err}"));
            }
            Err(err) => err.to_string(),
        };
        tracing::error!(error = %unreadable, "hook configuration unreadable; using the defaults and the CONFIG_* overrides for this event");
        let prefix = sources.deployment.config_prefix(CONFIG_NAME);
        match shared::config::from_raw::<HookConfig>(&prefix, &shared::config::overrides()) {
            Ok(config) => self
                .build(&sources.deployment, &config, &sources.secret, Some(&unreadable))
                .unwrap_or_else(|reason| self.unusable(reason)),
            Err(err) => self.unusable(format!("configuration: {err}")),
        }
    }

    /// The gate for `config`: the one built before when the values are the
    /// same (its tokens kept), else a new one; when `config` is invalid, the
    /// last good gate (with a warning), or with none an unusable one.
    async fn gate_for(&self, config: Arc<HookConfig>, sources: &Sources) -> Gate {
        let mut built = self.built.lock().await;
        if let Some((seen, gate)) = built.as_ref()
            && **seen == *config
        {
            return gate.clone();
        }
        match self.build(&sources.deployment, &config, &sources.secret, None) {
            Ok(gate) => {
                *built = Some((config, gate.clone()));
                gate
            }
            Err(reason) => match built.as_ref() {
                Some((_, last_good)) => {
                    tracing::warn!(%reason, "new hook configuration refused; keeping the last good one");
                    last_good.clone()
                }
                None => self.unusable(reason),
            },
        }
    }

    /// The gate for `config`: plans from the bundle for the deployment's
    /// stage, the hooks' client from `secret`; `unreadable` says why the
    /// configuration is only the defaults and overrides. The error says
    /// what makes `config` unusable.
    fn build(
        &self,
        deployment: &shared::naming::Deployment,
        config: &HookConfig,
        secret: &Arc<SecretStore<ClientCredentials>>,
        unreadable: Option<&str>,
    ) -> Result<Gate, String> {
        let settings = config.settings(Some(metrics(self.phase))).map_err(|problems| {
            format!(
                "configuration under {} is invalid: {problems}",
                deployment.config_prefix(CONFIG_NAME)
            )
        })?;
        let live_urls: Vec<(String, String)> = config.live_urls.clone().into_iter().collect();
        let (plans, scopes) = crate::bundle::plans(&deployment.stage, &live_urls)
            .map_err(|err| format!("the bundled checks are unusable: {err}"))?;
        Ok(Gate {
            phase: self.phase,
            plans,
            settings,
            clients: self.clients.clone(),
            credentials: credentials(config, deployment, secret, scopes, &self.http, unreadable),
            unusable: None,
        })
    }

    /// A gate that can check nothing, for `reason`: each verdict is `Failed`
    /// with it, reported to CodeDeploy like any other.
    fn unusable(&self, reason: String) -> Gate {
        tracing::error!(%reason, "the hook can check nothing; every verdict will be Failed");
        Gate {
            phase: self.phase,
            plans: Plans::default(),
            settings: Settings {
                metrics: Some(metrics(self.phase)),
                ..Settings::default()
            },
            clients: self.clients.clone(),
            credentials: Credentials::Unusable(reason.clone()),
            unusable: Some(reason),
        }
    }
}

impl Sources {
    /// Fetches both at once; either failing is logged and read again later.
    async fn load(sdk: &aws_config::SdkConfig, deployment: shared::naming::Deployment) -> Self {
        let ssm = shared::aws::ssm(sdk);
        let secrets = shared::aws::secrets_manager(sdk);
        let prefix = deployment.config_prefix(CONFIG_NAME);
        let id = deployment.secret_name(&crate::credentials::client_secret());
        // Bounded: a stalled SSM or Secrets Manager must not hold init past
        // Lambda's init limit (10 s); what is not read now is read later.
        let (config, secret) = tokio::join!(
            tokio::time::timeout(READ_LIMIT, shared::config::load::<HookConfig>(&ssm, &prefix)),
            tokio::time::timeout(READ_LIMIT, shared::secrets::fetch::<ClientCredentials>(&secrets, &id))
        );
        let late = |_| format!("no answer within {} ms", READ_LIMIT.as_millis());
        let config = match config.map_err(late).and_then(|read| read.map_err(|e| e.to_string())) {
            Ok(config) => shared::config::Refreshing::new(ssm, prefix, config, REREAD_AFTER),
            Err(err) => {
                tracing::error!(error = %err, "hook configuration unreadable at init; reading it again at the next event");
                shared::config::Refreshing::unloaded(ssm, prefix, REREAD_AFTER)
            }
        };
        let secret = match secret.map_err(late).and_then(|read| read.map_err(|e| e.to_string())) {
            Ok(value) => SecretStore::with_value(secrets, id, REREAD_AFTER, value),
            Err(err) => {
                tracing::error!(secret = %id, error = %err, "the hooks' client secret unreadable at init; reading it again at the next event");
                SecretStore::new(secrets, id, REREAD_AFTER)
            }
        };
        Self {
            deployment,
            config,
            secret: Arc::new(secret),
        }
    }
}

/// The hook's metrics, as EMF on stdout.
fn metrics(phase: Phase) -> MetricsSink {
    MetricsSink(shared::metrics::MetricsConfig::from_env(
        phase.as_str(),
        Arc::new(shared::telemetry::Stdout),
    ))
}

/// The hooks' client (`secret`) and the token endpoint from the
/// configuration, for tokens with the bundled services' `scopes`; without
/// an endpoint the credential check fails, saying where to set it.
fn credentials(
    config: &HookConfig,
    deployment: &shared::naming::Deployment,
    secret: &Arc<SecretStore<ClientCredentials>>,
    scopes: crate::bundle::Scopes,
    http: &reqwest::Client,
    unreadable: Option<&str>,
) -> Credentials {
    if config.token_url.is_empty() {
        let prefix = deployment.config_prefix(CONFIG_NAME);
        let reason = match unreadable {
            Some(why) => format!("configuration unreadable, so no token endpoint (token_url under {prefix}): {why}"),
            None => format!("no token endpoint: set token_url under {prefix}"),
        };
        tracing::error!(%reason, "the hooks have no identity; checks that need a token will fail");
        return Credentials::Unusable(reason);
    }
    let source = |scopes| {
        Arc::new(TokenSource::new(
            &config.token_url,
            secret.clone(),
            scopes,
            http.clone(),
        ))
    };
    Credentials::ClientCredentials {
        customer: source(scopes.customer),
        service: source(scopes.service),
    }
}

/// A hook function's whole `main`.
pub async fn run(phase: Phase, info: &'static shared::ServiceInfo) -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init(info);
    let sdk = shared::aws::sdk_config().await;
    // Init never fails: a hook that cannot start its checks still answers
    // every event with a reported Failed verdict saying why.
    let deployment =
        shared::naming::Deployment::from_env().map_err(|missing| format!("the hook's own environment: {missing}"));
    let hook = Arc::new(Hook::load(phase, &sdk, deployment).await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let hook = hook.clone();
        async move { invoke(&hook, event).await }
    }))
    .await
}

async fn invoke(hook: &Hook, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
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
        otel.name = hook.phase.as_str(),
        otel.status_code = tracing::field::Empty,
        annotation.phase = hook.phase.as_str(),
        annotation.deployment_id = parsed.deployment_id.as_str(),
        annotation.verdict = tracing::field::Empty,
    );
    shared::xray::adopt(&span, event.context.xray_trace_id.as_deref());
    let report = async { hook.gate(deadline).await.handle(&parsed, deadline).await }
        .instrument(span.clone())
        .await;
    span.record(
        "annotation.verdict",
        if report.verdict { "Succeeded" } else { "Failed" },
    );
    if !report.verdict {
        span.record("otel.status_code", "error");
    }
    let verdict = if report.verdict { "Succeeded" } else { "Failed" };
    if let Some(error) = report.undelivered() {
        return Err(crate::GateError::Undelivered {
            deployment_id: parsed.deployment_id.clone(),
            verdict,
            error: error.to_owned(),
        }
        .into());
    }
    Ok(json!({"verdict": verdict, "reason": report.reason}))
}
