//! The checks of one hook: the target, a `/health` smoke check (200 within
//! the budget, reporting the target version), then the phase's Postman
//! folders through `collection-runner`.
//!
//! The smoke check tells the target's cold start from its latency: the
//! first answer may take up to the cold-start allowance (by default the
//! function's own timeout); when it took longer than the budget, a second,
//! warm answer must come within the budget.
//!
//! The version contract: `/health` reports the version that answers as
//! `function_version` (Lambda's `AWS_LAMBDA_FUNCTION_VERSION`), as every
//! service built on `shared::http` does. Before traffic this is how the hook
//! knows it tested the version being deployed, so a `/health` without it
//! fails, saying so.

use std::time::{Duration, Instant};

use collection_runner::collection::ProtocolProfileBehavior;
use collection_runner::report::Summary;
use collection_runner::request::{Payload, Prepared};
use collection_runner::runner::{self, Options};
use collection_runner::sandbox::Limits;
use collection_runner::transport::{Http, LambdaInvoke, Split, Transport};
use serde_json::Value;
use tracing::{Instrument, Span};

use crate::target::{self, Target};
use crate::{Gate, HookEvent, Phase};

/// One check's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    /// `target`, `smoke`, `collection`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The deployment's target, when found.
    pub target: Option<Target>,
    /// The service checked.
    pub service: Option<String>,
    /// Each check, in order.
    pub checks: Vec<Check>,
    /// The collection run, when it ran.
    pub summary: Option<Summary>,
}

/// A check's span: an X-Ray subsegment of the hook's invocation, ended by [`Outcome::record`].
fn check_span(name: &'static str) -> Span {
    tracing::info_span!(
        "check",
        otel.name = name,
        otel.status_code = tracing::field::Empty,
        annotation.check = name,
    )
}

impl Outcome {
    /// Records a check's result and ends its span (an error with the cause when it failed).
    fn record(&mut self, span: Span, name: &str, started: Instant, result: Result<String, String>) -> bool {
        let passed = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        if !passed {
            shared::xray::fail(&span, &detail);
        }
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        passed
    }
}

/// Runs every check for `event`; stops at the first that fails.
pub async fn run(gate: &Gate, event: &HookEvent, until: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    let started = Instant::now();
    if let Some(reason) = &gate.unusable {
        outcome.record(
            check_span("configuration"),
            "configuration",
            started,
            Err(reason.clone()),
        );
        return outcome;
    }
    let span = check_span("target");
    let found = target::lookup(
        &gate.clients.codedeploy,
        &event.deployment_id,
        until,
        gate.settings.call_timeout,
    )
    .instrument(span.clone())
    .await;
    let detail = found
        .as_ref()
        .map(|t| format!("{} {} → {}", t.function_name, t.current_version, t.target_version))
        .map_err(Clone::clone);
    if !outcome.record(span, "target", started, detail) {
        return outcome;
    }
    let Ok(target) = found else { return outcome };
    outcome.target = Some(target.clone());
    let started = Instant::now();
    let Some(plan) = gate.plans.get(&target.function_name) else {
        outcome.record(
            check_span("plan"),
            "plan",
            started,
            Err(format!(
                "no checks are configured for function {}",
                target.function_name
            )),
        );
        return outcome;
    };
    outcome.service = Some(plan.service.clone());

    let settings = &gate.settings;
    let (transport, base): (Box<dyn Transport>, String) = match (gate.phase, &plan.live_url) {
        (Phase::AfterAllowTraffic, Some(url)) => (Box::new(Http::new(false)), url.trim_end_matches('/').to_owned()),
        (phase, _) => {
            let qualifier = if phase == Phase::BeforeAllowTraffic {
                &target.target_version
            } else {
                &target.alias
            };
            let invoke = LambdaInvoke::new(
                gate.clients.lambda.clone(),
                &target.function_name,
                Some(qualifier),
                settings.payload.clone(),
            );
            // The function's own URLs are invoked; any other URL the checks use goes over HTTP.
            let base = format!("https://{}.lambda.invoke", target.function_name);
            (
                Box::new(Split::new(&base, Box::new(invoke), Box::new(Http::new(false)))),
                base,
            )
        }
    };

    let started = Instant::now();
    let span = check_span("smoke");
    let budget = Smoke {
        budget: settings.smoke_budget,
        allowance: settings
            .cold_start_allowance
            .unwrap_or(plan.function_timeout + LAMBDA_INIT_LIMIT),
        until,
    };
    let smoke = budget
        .check(transport.as_ref(), &base, &target)
        .instrument(span.clone())
        .await;
    if !outcome.record(span, "smoke", started, smoke) {
        return outcome;
    }

    let folders = plan.folders(gate.phase);
    if folders.is_empty() {
        return outcome;
    }
    let started = Instant::now();
    let span = check_span("credential");
    let tokens = gate
        .credentials
        .tokens(settings.request_timeout, until)
        .instrument(span.clone())
        .await;
    let detail = tokens.as_ref().map(|t| match t {
        Some(_) => String::from("tokens for the hooks' client"),
        None => String::from("no token needed"),
    });
    if !outcome.record(span, "credential", started, detail.map_err(Clone::clone)) {
        return outcome;
    }
    let tokens = tokens.ok().flatten();

    let started = Instant::now();
    let span = check_span("collection");
    let mut options = Options {
        environment: plan.environment.clone(),
        environment_name: plan.environment_name.clone(),
        folders: folders.to_vec(),
        timeout: Some(until.saturating_duration_since(Instant::now())),
        timeout_request: Some(settings.request_timeout),
        limits: Limits::default(),
        ..Options::default()
    };
    options.environment.set(plan.url_variable.clone(), Value::String(base));
    for (key, value) in &plan.variables {
        options.environment.set(key.clone(), value.clone());
    }
    if let Some(tokens) = tokens {
        for (variable, token) in [
            (crate::credentials::TOKEN_VARIABLE, &tokens.access),
            (crate::credentials::SERVICE_TOKEN_VARIABLE, &tokens.service),
        ] {
            options
                .environment
                .set(variable.to_owned(), Value::String(token.expose().clone()));
        }
    }
    if runner::count(&plan.collection, folders) == 0 {
        outcome.record(
            span,
            "collection",
            started,
            Err(format!("the collection has no folder named {folders:?}")),
        );
        return outcome;
    }
    let result = match runner::run(&plan.collection, &options, transport.as_ref())
        .instrument(span.clone())
        .await
    {
        Ok(summary) => {
            let failures = summary.failures().count() + summary.run_failures.len();
            let assertions: usize = summary.executions.iter().map(|e| e.assertions.len()).sum();
            let detail = format!(
                "{} requests, {assertions} assertions, {failures} failures",
                summary.executions.len()
            );
            let passed = summary.passed();
            outcome.summary = Some(summary);
            if passed { Ok(detail) } else { Err(detail) }
        }
        Err(err) => Err(err.to_string()),
    };
    outcome.record(span, "collection", started, result);
    outcome
}

/// Lambda's limit on a function's init phase, which a first invocation
/// pays on top of its handler's time (itself bounded by the timeout).
const LAMBDA_INIT_LIMIT: Duration = Duration::from_secs(10);

/// Time kept between the smoke check's last wait and the checks' end, so a
/// `/health` that outlasts the checks is reported as the smoke check's
/// failure (with the target it found), not as checks cut off.
const SMOKE_MARGIN: Duration = Duration::from_millis(200);

/// The smoke check's time limits.
struct Smoke {
    /// A warm answer's.
    budget: Duration,
    /// The first answer's, cold start included.
    allowance: Duration,
    /// The checks' end.
    until: Instant,
}

impl Smoke {
    /// `GET /health`: 200 reporting the target version, the first answer
    /// within the cold-start allowance and, when it was slower than the
    /// budget, a warm one within the budget.
    async fn check(&self, transport: &dyn Transport, base: &str, target: &Target) -> Result<String, String> {
        let left = || {
            self.until
                .checked_sub(SMOKE_MARGIN)
                .map_or(Duration::ZERO, |end| end.saturating_duration_since(Instant::now()))
        };
        let allowance = self.allowance;
        let first_limit = allowance.min(left());
        let (first, version) = health(transport, base, target, first_limit)
            .await
            .map_err(|e| match e {
                Health::Late(e) if first_limit < allowance => format!(
                    "/health gave no first answer in the {} ms the checks had left (cold-start allowance {} ms): {e}",
                    first_limit.as_millis(),
                    allowance.as_millis()
                ),
                Health::Late(e) => format!(
                    "/health gave no first answer within the {} ms cold-start allowance: {e}",
                    allowance.as_millis()
                ),
                Health::Wrong(e) => e,
            })?;
        if first <= self.budget {
            return Ok(format!("200 in {} ms, version {version}", first.as_millis()));
        }
        // Slower than the budget but within the allowance: a cold start. Now
        // the target is warm, and held to the budget.
        let warm_limit = (self.budget * 2).min(left());
        let over = |warm: Duration| {
            format!(
                "/health took {} ms warm, over the {} ms budget (first answer {} ms, a cold start within the {} ms allowance)",
                warm.as_millis(),
                self.budget.as_millis(),
                first.as_millis(),
                allowance.as_millis()
            )
        };
        let (warm, _) = health(transport, base, target, warm_limit).await.map_err(|e| match e {
            Health::Late(e) => format!(
                "/health gave no warm answer within {} ms (budget {} ms, after a {} ms first answer): {e}",
                warm_limit.as_millis(),
                self.budget.as_millis(),
                first.as_millis()
            ),
            Health::Wrong(e) => e,
        })?;
        if warm > self.budget {
            return Err(over(warm));
        }
        Ok(format!(
            "200 in {} ms warm after a {} ms first answer (cold start, allowance {} ms), version {version}",
            warm.as_millis(),
            first.as_millis(),
            allowance.as_millis()
        ))
    }
}

/// Why one `/health` request did not pass.
enum Health {
    /// No answer in time (or none at all).
    Late(String),
    /// An answer that fails the check.
    Wrong(String),
}

/// One `GET /health` within `limit`: how long it took and the version it reports.
async fn health(
    transport: &dyn Transport,
    base: &str,
    target: &Target,
    limit: Duration,
) -> Result<(Duration, String), Health> {
    let request = Prepared {
        method: String::from("GET"),
        url: format!("{base}/health"),
        headers: vec![(String::from("accept"), String::from("application/json"))],
        payload: Payload::None,
        warnings: Vec::new(),
    };
    let started = Instant::now();
    let response = transport
        .send(
            &request,
            &ProtocolProfileBehavior::default(),
            Some(limit.max(Duration::from_millis(1))),
        )
        .await
        .map_err(|e| Health::Late(format!("/health: {e}")))?;
    let elapsed = started.elapsed();
    if response.code != 200 {
        return Err(Health::Wrong(format!(
            "/health answered {} {}",
            response.code, response.status
        )));
    }
    let health: Value =
        serde_json::from_slice(&response.body).map_err(|e| Health::Wrong(format!("/health body is not JSON: {e}")))?;
    let version = match health.get("function_version") {
        Some(Value::String(version)) => version.as_str(),
        Some(other @ (Value::Number(_) | Value::Bool(_))) => {
            return Err(Health::Wrong(format!(
                "/health reports function_version as {other}, not as a string; the version contract \
                 (hooks/README.md) wants Lambda's AWS_LAMBDA_FUNCTION_VERSION as it is, {:?}",
                target.target_version
            )));
        }
        _ => "",
    };
    if version.is_empty() {
        return Err(Health::Wrong(format!(
            "/health does not report function_version, so the hook cannot tell which version answered; \
             a service reports it by serving shared::http's health route (the version contract, hooks/README.md); \
             expected the target version {:?}",
            target.target_version
        )));
    }
    if version != target.target_version {
        return Err(Health::Wrong(format!(
            "/health reports version {version:?}, expected the target version {:?}",
            target.target_version
        )));
    }
    Ok((elapsed, version.to_owned()))
}
