//! The checks of one hook: the target, a `/health` smoke check (200 within
//! the budget, reporting the target version), then the phase's Postman
//! folders through `collection-runner`.

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
    let found = target::lookup(&gate.clients.codedeploy, &event.deployment_id, until)
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
    let smoke = smoke(
        transport.as_ref(),
        &base,
        &target,
        settings.smoke_budget,
        settings.request_timeout,
    )
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

/// `GET /health`: 200 within `budget`, reporting the target version.
async fn smoke(
    transport: &dyn Transport,
    base: &str,
    target: &Target,
    budget: Duration,
    timeout: Duration,
) -> Result<String, String> {
    let request = Prepared {
        method: String::from("GET"),
        url: format!("{base}/health"),
        headers: vec![(String::from("accept"), String::from("application/json"))],
        payload: Payload::None,
    };
    let started = Instant::now();
    let response = transport
        .send(
            &request,
            &ProtocolProfileBehavior::default(),
            Some(timeout.min(budget.max(Duration::from_millis(1)) * 2)),
        )
        .await
        .map_err(|e| format!("/health: {e}"))?;
    let elapsed = started.elapsed();
    if response.code != 200 {
        return Err(format!("/health answered {} {}", response.code, response.status));
    }
    if elapsed > budget {
        return Err(format!(
            "/health took {} ms, over the {} ms budget",
            elapsed.as_millis(),
            budget.as_millis()
        ));
    }
    let health: Value = serde_json::from_str(&response.body).map_err(|e| format!("/health body is not JSON: {e}"))?;
    let version = health
        .get("function_version")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if version != target.target_version {
        return Err(format!(
            "/health reports version {version:?}, expected the target version {:?}",
            target.target_version
        ));
    }
    Ok(format!("200 in {} ms, version {version}", elapsed.as_millis()))
}
