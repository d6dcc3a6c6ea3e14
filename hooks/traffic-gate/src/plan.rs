//! What the gate checks for each service, and its budgets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use collection_runner::collection::Collection;
use collection_runner::transport::PayloadFormat;
use collection_runner::variables::Scope;

/// Which lifecycle hook is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Phase {
    /// The alias still serves the old version: the target version is tested directly.
    BeforeAllowTraffic,
    /// The alias serves the new version: the live path is tested.
    AfterAllowTraffic,
}

impl Phase {
    /// `BeforeAllowTraffic` / `AfterAllowTraffic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeAllowTraffic => "BeforeAllowTraffic",
            Self::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }
}

/// One service's checks.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The service (the metrics' `service` dimension).
    pub service: String,
    /// Its Postman collection.
    pub collection: Arc<Collection>,
    /// The stage's environment.
    pub environment: Scope,
    /// The environment's name.
    pub environment_name: Option<String>,
    /// Folders run before traffic (after the smoke check).
    pub before_folders: Vec<String>,
    /// Folders run after traffic.
    pub after_folders: Vec<String>,
    /// The variable holding the service's base URL in the collection (`accounts_url`).
    pub url_variable: String,
    /// After traffic: the live base URL (API Gateway stage URL). Without one,
    /// the alias is invoked directly.
    pub live_url: Option<String>,
    /// Variables added to the environment (e.g. the URLs of the other services).
    pub variables: Vec<(String, serde_json::Value)>,
    /// The function's deployed timeout (`[package.metadata.lambda.deploy]
    /// timeout`): how long its first answer, cold start included, may take
    /// unless [`Settings::cold_start_allowance`] says otherwise.
    pub function_timeout: Duration,
}

impl Plan {
    /// The folders of `phase`.
    pub fn folders(&self, phase: Phase) -> &[String] {
        match phase {
            Phase::BeforeAllowTraffic => &self.before_folders,
            Phase::AfterAllowTraffic => &self.after_folders,
        }
    }
}

/// Plans by function name.
#[derive(Debug, Clone, Default)]
pub struct Plans(HashMap<String, Plan>);

impl Plans {
    /// Adds the plan for `function`.
    pub fn insert(&mut self, function: &str, plan: Plan) {
        self.0.insert(function.to_owned(), plan);
    }

    /// Adds `key` = `value` to the environment of `function`'s checks.
    pub fn add_variable(&mut self, function: &str, key: &str, value: serde_json::Value) {
        if let Some(plan) = self.0.get_mut(function) {
            plan.variables.push((key.to_owned(), value));
        }
    }

    /// The plan for `function`.
    pub fn get(&self, function: &str) -> Option<&Plan> {
        self.0.get(function)
    }
}

/// Budgets and margins.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A warm `/health` must answer within this.
    pub smoke_budget: Duration,
    /// How long the target's first `/health` answer may take, its cold
    /// start included; `None`: the function's own timeout
    /// ([`Plan::function_timeout`]). A first answer slower than
    /// `smoke_budget` but within this is a cold start, and a second, warm
    /// answer is then held to `smoke_budget`.
    pub cold_start_allowance: Option<Duration>,
    /// Each CodeDeploy call's attempt is given up after this (and retried
    /// while the budget lasts), so one stalled call cannot eat the budget.
    pub call_timeout: Duration,
    /// Checks still running this long before the function's deadline are cut off and reported `Failed`.
    pub deadline_margin: Duration,
    /// Per request of the checks.
    pub request_timeout: Duration,
    /// The API Gateway payload sent when invoking the function.
    pub payload: PayloadFormat,
    /// Where the report's EMF metrics go (their `service` is the target service).
    pub metrics: Option<MetricsSink>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            smoke_budget: Duration::from_millis(1500),
            cold_start_allowance: None,
            call_timeout: Duration::from_secs(2),
            deadline_margin: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            payload: PayloadFormat::RestV1 {
                stage: String::from("live"),
            },
            metrics: None,
        }
    }
}

/// The metrics configuration, shared (not `Debug` itself).
#[derive(Clone)]
pub struct MetricsSink(pub shared::metrics::MetricsConfig);

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSink")
            .field("namespace", &self.0.namespace)
            .finish_non_exhaustive()
    }
}
