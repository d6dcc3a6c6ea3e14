//! The hook's report: every check, the assertions, the versions, the verdict
//! and how it reached CodeDeploy — one JSON log line, plus EMF metrics
//! (`HookFailed`: 1 for a `Failed` verdict, 0 for `Succeeded`, so its sum
//! counts failed verdicts and its sample count all verdicts;
//! `HookVerdictUndelivered`: 1 when CodeDeploy never accepted the verdict;
//! `HookChecksFailed`, `HookDurationMs`) with the service as dimension.

use std::time::Duration;

use shared::metrics::{InvocationMetrics, Unit};

use crate::checks::{Check, Outcome};
use crate::target::Target;
use crate::verdict::Reported;
use crate::{HookEvent, Phase, Settings};

/// What one hook invocation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The hook.
    pub phase: Phase,
    /// CodeDeploy's ids.
    pub deployment_id: String,
    /// The hook execution answered.
    pub hook_execution_id: String,
    /// The target, when found.
    pub target: Option<Target>,
    /// The service, when known.
    pub service: Option<String>,
    /// Each check.
    pub checks: Vec<Check>,
    /// Every assertion of the collection run: (request, assertion, passed).
    pub assertions: Vec<(String, String, bool)>,
    /// Why the verdict is `Failed`, when it is.
    pub reason: Option<String>,
    /// `true` = `Succeeded`.
    pub verdict: bool,
    /// How the verdict reached CodeDeploy.
    pub reported: Option<Reported>,
    /// Wall time of the invocation.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Report {
    /// An empty report for `event`, not yet passed.
    pub fn new(phase: Phase, event: &HookEvent) -> Self {
        Self {
            phase,
            deployment_id: event.deployment_id.clone(),
            hook_execution_id: event.lifecycle_event_hook_execution_id.clone(),
            target: None,
            service: None,
            checks: Vec::new(),
            assertions: Vec::new(),
            reason: None,
            verdict: false,
            reported: None,
            duration: Duration::ZERO,
        }
    }

    /// Takes in the checks' outcome: passed only when there were checks and all passed.
    pub fn absorb(&mut self, outcome: Outcome) {
        self.target = outcome.target;
        self.service = outcome.service;
        if let Some(summary) = &outcome.summary {
            self.assertions = summary
                .executions
                .iter()
                .flat_map(|e| {
                    e.assertions
                        .iter()
                        .map(move |a| (e.name.clone(), a.assertion.clone(), a.error.is_none()))
                })
                .collect();
        }
        self.verdict = !outcome.checks.is_empty() && outcome.checks.iter().all(|c| c.passed);
        if !self.verdict {
            self.reason = outcome
                .checks
                .iter()
                .find(|c| !c.passed)
                .map(|c| format!("{}: {}", c.name, c.detail));
        }
        self.checks = outcome.checks;
    }

    /// Marks the verdict `Failed` for `reason`.
    pub fn fail(&mut self, reason: String) {
        self.verdict = false;
        self.reason = Some(reason);
    }

    /// CodeDeploy's last answer when the verdict was not delivered.
    pub fn undelivered(&self) -> Option<&str> {
        match &self.reported {
            Some(Reported::NotReported { error }) => Some(error),
            _ => None,
        }
    }

    /// Writes the JSON log line and the EMF metrics.
    pub fn emit(&self, settings: &Settings) {
        let json = serde_json::to_string(self).unwrap_or_default();
        if self.verdict {
            tracing::info!(report = %json, "verdict Succeeded");
        } else {
            tracing::error!(report = %json, reason = self.reason.as_deref().unwrap_or(""), "verdict Failed");
        }
        if let Some(sink) = &settings.metrics {
            let mut config = sink.0.clone();
            config.service = self.service.clone().unwrap_or_else(|| String::from("unknown"));
            let metrics = InvocationMetrics::default();
            let failed = self.checks.iter().filter(|c| !c.passed).count()
                + usize::from(!self.verdict && self.checks.iter().all(|c| c.passed));
            metrics.add("HookFailed", Unit::Count, f64::from(u8::from(!self.verdict)));
            metrics.add(
                "HookVerdictUndelivered",
                Unit::Count,
                f64::from(u8::from(self.undelivered().is_some())),
            );
            metrics.add("HookChecksFailed", Unit::Count, failed as f64);
            metrics.add("HookDurationMs", Unit::Milliseconds, self.duration.as_millis() as f64);
            metrics.with(|m| m.add_metadata("phase", self.phase.as_str()));
            metrics.flush(&config);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;
    use shared::metrics::MetricsConfig;
    use shared::telemetry::Capture;

    use super::Report;
    use crate::plan::MetricsSink;
    use crate::{Phase, Settings};

    /// The EMF document a report with `verdict` emits.
    fn emitted(verdict: bool) -> Value {
        let capture = Capture::default();
        let config = MetricsConfig {
            namespace: String::from("fintech"),
            service: String::from("hooks"),
            function_name: String::from("before-allow-traffic"),
            enabled: true,
            sink: Arc::new(capture.clone()),
        };
        let settings = Settings {
            metrics: Some(MetricsSink(config)),
            ..Settings::default()
        };
        let event = crate::parse_event(&serde_json::json!({
            "DeploymentId": "d-1",
            "LifecycleEventHookExecutionId": "hook-1",
        }))
        .unwrap();
        let mut report = Report::new(Phase::BeforeAllowTraffic, &event);
        report.service = Some(String::from("payments"));
        report.verdict = verdict;
        report.emit(&settings);
        let lines = capture.json();
        assert_eq!(lines.len(), 1, "{lines:?}");
        lines[0].clone()
    }

    #[test]
    fn each_verdict_is_one_sample_of_hook_failed_for_the_target_service() {
        for (verdict, failed) in [(true, 0.0), (false, 1.0)] {
            let emf = emitted(verdict);
            assert_eq!(emf["HookFailed"].as_f64(), Some(failed), "{emf}");
            assert_eq!(emf["service"], "payments", "{emf}");
            assert_eq!(emf["phase"], "BeforeAllowTraffic", "{emf}");
            let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["Name"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                [
                    "HookFailed",
                    "HookVerdictUndelivered",
                    "HookChecksFailed",
                    "HookDurationMs"
                ],
                "{emf}"
            );
            assert_eq!(emf["HookVerdictUndelivered"].as_f64(), Some(0.0), "{emf}");
        }
    }
}
