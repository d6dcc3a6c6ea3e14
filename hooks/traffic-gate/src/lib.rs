//! The deployment gate behind the CodeDeploy `BeforeAllowTraffic` and
//! `AfterAllowTraffic` hooks, one library for both and for every service.
//!
//! [`Gate::handle`] takes CodeDeploy's event and the invocation's deadline:
//! it finds the function and versions being deployed ([`target`]), runs the
//! service's checks ([`checks`]: `/health` smoke, then the Postman folders of
//! the phase through `collection-runner`, as the hooks' own machine client
//! of the user pool: [`credentials`]) against the target version (before
//! traffic, by Lambda Invoke with the version as qualifier) or the live path
//! (after traffic), and reports `Succeeded` only when all passed ([`verdict`]).
//! It always answers: checks still running near the deadline, a panic in the
//! checks, a missing plan all become `Failed`; CodeDeploy's throttling, 5xx
//! and stalled calls (each attempt has its own timeout) are retried inside
//! the deadline, and the checks stop early enough for a whole last attempt;
//! an already-completed hook is left as it is. A verdict that still could
//! not be delivered ends the invocation with a function error
//! ([`GateError::Undelivered`]), so Lambda's retries of CodeDeploy's
//! asynchronous invocation run the hook again, and is counted
//! (`HookVerdictUndelivered`). The [`report`] goes to the JSON log and EMF
//! metrics.

pub mod bundle;
pub mod checks;
pub mod credentials;
pub mod lambda;
pub mod plan;
pub mod report;
pub mod target;
pub mod verdict;

use std::time::{Duration, Instant};

pub use plan::{Phase, Plan, Plans, Settings};
pub use report::Report;

/// The event CodeDeploy sends a lifecycle hook.
pub type HookEvent = aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;

/// Why an event could not be handled at all (nothing could be reported).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The payload is not a CodeDeploy lifecycle event.
    #[error("not a CodeDeploy lifecycle event ({reason}): {raw}")]
    Unparseable {
        /// What is wrong with it.
        reason: String,
        /// The payload as received.
        raw: String,
    },
    /// The verdict could not be delivered before the deadline: a function
    /// error, so Lambda invokes the hook again (CodeDeploy invokes hooks
    /// asynchronously) instead of the deployment waiting out the hook timeout.
    #[error("the {verdict} verdict for deployment {deployment_id} was not delivered: {error}")]
    Undelivered {
        /// The deployment.
        deployment_id: String,
        /// `Succeeded` or `Failed`.
        verdict: &'static str,
        /// CodeDeploy's last answer, or why there was none.
        error: String,
    },
}

/// Parses a hook's payload; an unusable one is an error carrying the raw text.
pub fn parse_event(payload: &serde_json::Value) -> Result<HookEvent, GateError> {
    let unparseable = |reason: String| GateError::Unparseable {
        reason,
        raw: payload.to_string(),
    };
    let event: HookEvent = serde_json::from_value(payload.clone()).map_err(|e| unparseable(e.to_string()))?;
    if event.deployment_id.is_empty() || event.lifecycle_event_hook_execution_id.is_empty() {
        return Err(unparseable(String::from(
            "DeploymentId and LifecycleEventHookExecutionId must not be empty",
        )));
    }
    Ok(event)
}

/// The AWS clients the gate uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// CodeDeploy: target lookup and the verdict.
    pub codedeploy: aws_sdk_codedeploy::Client,
    /// Lambda: invoking the target version.
    pub lambda: aws_sdk_lambda::Client,
}

impl Clients {
    /// Clients from the shared SDK configuration. The gate retries CodeDeploy
    /// itself, bounded by the invocation's deadline, so the SDK's own retries are off there.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let codedeploy = aws_sdk_codedeploy::config::Builder::from(sdk)
            .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
            .interceptor(shared::xray::SdkTracing)
            .build();
        let lambda = aws_sdk_lambda::config::Builder::from(sdk)
            .interceptor(shared::xray::SdkTracing)
            .build();
        Self {
            codedeploy: aws_sdk_codedeploy::Client::from_conf(codedeploy),
            lambda: aws_sdk_lambda::Client::from_conf(lambda),
        }
    }
}

/// One hook: its phase, the services' plans, the settings and the clients.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Before or after traffic.
    pub phase: Phase,
    /// What to check per function.
    pub plans: Plans,
    /// Budgets and margins.
    pub settings: Settings,
    /// AWS clients.
    pub clients: Clients,
    /// How the checks get the token every route but `/health` needs.
    pub credentials: credentials::Credentials,
    /// Why this hook can check nothing (its own configuration is broken:
    /// no `STAGE`, no usable bundle): every verdict is `Failed` with this
    /// reason, still reported, so no deployment waits out the hook timeout.
    pub unusable: Option<String>,
}

impl Gate {
    /// Handles one event: checks, then exactly one verdict reported (or the
    /// already-completed path), before `deadline`.
    pub async fn handle(&self, event: &HookEvent, deadline: Instant) -> Report {
        let gate = self.clone();
        let for_checks = event.clone();
        let checks_until = self.checks_until(deadline);
        self.conclude(event, deadline, async move {
            checks::run(&gate, &for_checks, checks_until).await
        })
        .await
    }

    /// The time kept before the deadline for reporting: the margin, and
    /// never less than one whole attempt to report the verdict.
    fn reserve(&self) -> Duration {
        self.settings
            .deadline_margin
            .max(self.settings.call_timeout + verdict::LAST_CALL)
    }

    /// When the checks are cut off: [`Gate::reserve`] before the deadline.
    fn checks_until(&self, deadline: Instant) -> Instant {
        deadline.checked_sub(self.reserve()).unwrap_or_else(Instant::now)
    }

    /// Runs `checks` under the guard and reports the verdict: checks still
    /// running at the deadline minus the margin, or panicking, become `Failed`.
    pub async fn conclude<F>(&self, event: &HookEvent, deadline: Instant, checks: F) -> Report
    where
        F: Future<Output = checks::Outcome> + Send + 'static,
    {
        let started = Instant::now();
        let checks_until = self.checks_until(deadline);
        let mut report = Report::new(self.phase, event);
        // The checks run in their own task: a panic there is a JoinError here,
        // never a lost verdict. They stay in this span (the hook's trace).
        let left = deadline.saturating_duration_since(started);
        if left <= self.reserve() {
            report.fail(format!(
                "the hook had {} ms before its deadline, no more than the {} ms it keeps for reporting the verdict \
                 (deadline_margin_ms, call_timeout_ms): give the hook function a longer timeout",
                left.as_millis(),
                self.reserve().as_millis()
            ));
            return self.deliver(event, deadline, report, started).await;
        }
        let task = tokio::spawn(tracing::Instrument::in_current_span(checks));
        let abort = task.abort_handle();
        match tokio::time::timeout(checks_until.saturating_duration_since(Instant::now()), task).await {
            Ok(Ok(outcome)) => report.absorb(outcome),
            Ok(Err(join)) if join.is_panic() => report.fail(format!("the checks panicked: {}", panic_message(join))),
            Ok(Err(join)) => report.fail(format!("the checks stopped: {join}")),
            Err(_) => {
                abort.abort();
                report.fail(format!(
                    "checks still running {} ms before the function's deadline",
                    self.reserve().as_millis()
                ));
            }
        }
        self.deliver(event, deadline, report, started).await
    }

    /// Reports `report`'s verdict and emits the report.
    async fn deliver(&self, event: &HookEvent, deadline: Instant, mut report: Report, started: Instant) -> Report {
        report.reported = Some(
            verdict::report(
                &self.clients.codedeploy,
                event,
                report.verdict,
                deadline,
                self.settings.call_timeout,
            )
            .await,
        );
        report.duration = started.elapsed();
        report.emit(&self.settings);
        report
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(no message)"))
}

/// The time limit of CodeDeploy attempt `attempt` (1-based) with `left`
/// before the calls must end: `base`, doubling with each retry up to 8 ×
/// `base`, so an endpoint that is slow but working is eventually waited
/// for while a stalled one costs `base` the first time — and everything
/// `left` when no whole `base` attempt would fit after this one.
pub(crate) fn attempt_limit(base: Duration, attempt: u32, left: Duration) -> Duration {
    let grown = base.saturating_mul(1 << attempt.saturating_sub(1).min(3));
    if left.saturating_sub(grown) < base { left } else { grown }
}

/// Exponential backoff from 100 ms, doubling to at most 2 s, never past `until`.
pub(crate) async fn backoff(attempt: u32, until: Instant) -> bool {
    let wait = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(2));
    let now = Instant::now();
    if now + wait >= until {
        return false;
    }
    tokio::time::sleep(wait).await;
    true
}
