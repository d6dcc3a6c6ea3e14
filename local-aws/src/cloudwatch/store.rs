//! The metrics CloudWatch holds, from what really runs:
//!
//! - the services' EMF lines, read from their stdout the way CloudWatch
//!   Logs extracts them ([`emf`]): each directive's namespace, each of its
//!   dimension sets as its own metric, values or arrays of values, units;
//! - the Lambda endpoint's own per-invocation records
//!   ([`crate::lambda::metrics::Invocation`]): `Invocations`, `Errors`,
//!   `Throttles`, `Duration` in `AWS/Lambda`, under
//!   each dimension combination Lambda publishes: none, `FunctionName`,
//!   `FunctionName`+`Resource`, and, for a qualified invocation,
//!   `FunctionName`+`Resource`+`ExecutedVersion`.
//!
//! - the API Gateway stage's per-answer metrics ([`api`]): `Count`,
//!   `4XXError`, `5XXError`, `Latency` in `AWS/ApiGateway`.
//!
//! A query matches dimensions exactly, as CloudWatch does: `{FunctionName}`
//! does not return the `{FunctionName, Resource}` series.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::lambda::metrics::{Ending, Invocation};

/// A metric: namespace, name and its exact dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId {
    /// `AWS/Lambda`, `Fintech`.
    pub namespace: String,
    /// `Errors`, `5XXError`.
    pub name: String,
    /// Name → value.
    pub dimensions: BTreeMap<String, String>,
}

impl MetricId {
    /// A metric with `dimensions`.
    pub fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            dimensions: dimensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// One value published at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When (the EMF `Timestamp`, the invocation's start).
    pub at: SystemTime,
    /// The value.
    pub value: f64,
}

/// Why an EMF line yields no metric (CloudWatch counts these as
/// `EMFParsingErrors` / `EMFValidationErrors` and keeps the line as a log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmfError {
    /// `_aws` is there but not as the specification requires.
    #[error("EMF validation: {0}")]
    Invalid(String),
}

/// The most metrics in one directive, dimensions in one set, and values of
/// one metric, as the EMF specification limits them.
const MAX_METRICS: usize = 100;
const MAX_DIMENSIONS: usize = 30;
const MAX_VALUES: usize = 100;
/// The largest CloudWatch Logs event: 256 KB.
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The metrics in one log line: none for a line that is not EMF (no JSON
/// object with `_aws`), an error for one whose `_aws` is invalid.
pub fn emf(line: &str) -> Result<Vec<(MetricId, Sample)>, EmfError> {
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(line.trim()) else {
        return Ok(Vec::new());
    };
    let Some(aws) = root.get("_aws") else {
        return Ok(Vec::new());
    };
    let invalid = |what: &str| EmfError::Invalid(what.to_owned());
    if line.len() > MAX_EVENT_BYTES {
        return Err(invalid(
            "the log event is over 256 KB, the limit of a CloudWatch Logs event",
        ));
    }
    let timestamp = aws
        .get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("_aws.Timestamp must be an integer (milliseconds since the epoch)"))?;
    let at = UNIX_EPOCH + Duration::from_millis(timestamp);
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("_aws.CloudWatchMetrics must be an array"))?;
    let mut out = Vec::new();
    for directive in directives {
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .filter(|n| (1..=1024).contains(&n.len()))
            .ok_or_else(|| invalid("Namespace must be 1 to 1024 characters"))?;
        // CloudWatch keeps `AWS/` namespaces for AWS's own metrics: a
        // function cannot publish into (and so fake) AWS/ApiGateway or AWS/Lambda.
        if namespace.starts_with("AWS/") {
            return Err(invalid(
                "Namespace must not begin with AWS/ (reserved for AWS services)",
            ));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .filter(|sets| !sets.is_empty())
            .ok_or_else(|| invalid("Dimensions must be a non-empty array of dimension sets"))?;
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .filter(|m| m.len() <= MAX_METRICS)
            .ok_or_else(|| invalid("Metrics must be an array of at most 100 definitions"))?;
        let mut dimension_sets = Vec::new();
        for set in sets {
            let keys = set
                .as_array()
                .filter(|keys| keys.len() <= MAX_DIMENSIONS)
                .ok_or_else(|| invalid("a dimension set must be an array of at most 30 names"))?;
            let mut dimensions = BTreeMap::new();
            for key in keys {
                let key = key
                    .as_str()
                    .filter(|k| (1..=250).contains(&k.len()))
                    .ok_or_else(|| invalid("a dimension name must be a string of 1 to 250 characters"))?;
                let value = root
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty() && v.len() <= 1024)
                    .ok_or_else(|| EmfError::Invalid(format!("dimension {key} must be a string member of the root")))?;
                dimensions.insert(key.to_owned(), value.to_owned());
            }
            dimension_sets.push(dimensions);
        }
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .filter(|n| (1..=1024).contains(&n.len()))
                .ok_or_else(|| invalid("a metric's Name must be 1 to 1024 characters"))?;
            let values: Vec<f64> = match root.get(name) {
                Some(Value::Number(n)) => n.as_f64().into_iter().collect(),
                Some(Value::Array(many)) if many.len() <= MAX_VALUES => many
                    .iter()
                    .map(Value::as_f64)
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| EmfError::Invalid(format!("metric {name}'s values must all be numbers")))?,
                _ => {
                    return Err(EmfError::Invalid(format!(
                        "metric {name} must be a number or an array of at most 100 numbers in the root"
                    )));
                }
            };
            for dimensions in &dimension_sets {
                let id = MetricId {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    dimensions: dimensions.clone(),
                };
                out.extend(values.iter().map(|value| (id.clone(), Sample { at, value: *value })));
            }
        }
    }
    Ok(out)
}

/// The namespace of Lambda's own metrics.
pub const LAMBDA_NAMESPACE: &str = "AWS/Lambda";

/// Lambda's metrics of one invocation, under each dimension combination
/// Lambda publishes, stamped with when it ended.
pub fn lambda(invocation: &Invocation) -> Vec<(MetricId, Sample)> {
    let function = invocation.function.as_str();
    let resource = invocation.resource();
    let mut sets: Vec<Vec<(&str, &str)>> = vec![Vec::new(), vec![("FunctionName", function)]];
    if invocation.qualifier.is_some() {
        sets.push(vec![("FunctionName", function), ("Resource", &resource)]);
        sets.push(vec![
            ("FunctionName", function),
            ("Resource", &resource),
            ("ExecutedVersion", &invocation.executed_version),
        ]);
    }
    // Published when the invocation ends (its REPORT line), so a slow one
    // counts in the period it finished in, not one evaluated before it did.
    let at = invocation.at + invocation.duration;
    let error = match invocation.ending {
        Ending::Answered => 0.0,
        Ending::FunctionError => 1.0,
    };
    // The endpoint throttles nothing: every invocation is a 0 for Throttles,
    // as a minute with invocations and no throttle is on Lambda.
    let values = [
        ("Invocations", 1.0),
        ("Errors", error),
        ("Throttles", 0.0),
        ("Duration", invocation.duration.as_secs_f64() * 1000.0),
    ];
    sets.iter()
        .flat_map(|dimensions| {
            values.iter().map(move |(name, value)| {
                (
                    MetricId::new(LAMBDA_NAMESPACE, name, dimensions),
                    Sample { at, value: *value },
                )
            })
        })
        .collect()
}

/// The namespace of API Gateway's metrics.
pub const API_NAMESPACE: &str = "AWS/ApiGateway";

/// API Gateway's metrics of one answer of stage `stage` of REST API
/// `api_name`: `Count` 1, `4XXError` and `5XXError` 1 or 0, `Latency` in
/// milliseconds, under `ApiName` and `ApiName`+`Stage`, stamped with when
/// the answer went out.
pub fn api(api_name: &str, stage: &str, served: &crate::apigateway::Served) -> Vec<(MetricId, Sample)> {
    let class = |hundreds: u16| if served.status / 100 == hundreds { 1.0 } else { 0.0 };
    let values = [
        ("Count", 1.0),
        ("4XXError", class(4)),
        ("5XXError", class(5)),
        ("Latency", served.latency.as_secs_f64() * 1000.0),
    ];
    let sets: [Vec<(&str, &str)>; 2] = [
        vec![("ApiName", api_name)],
        vec![("ApiName", api_name), ("Stage", stage)],
    ];
    sets.iter()
        .flat_map(|dimensions| {
            values.iter().map(move |(name, value)| {
                (
                    MetricId::new(API_NAMESPACE, name, dimensions),
                    Sample {
                        at: served.at + served.latency,
                        value: *value,
                    },
                )
            })
        })
        .collect()
}

/// Every sample published, by metric.
#[derive(Debug, Default)]
pub struct Store {
    samples: Mutex<HashMap<MetricId, Vec<Sample>>>,
    emf_errors: Mutex<u64>,
}

impl Store {
    /// Records `samples`.
    pub fn put(&self, samples: impl IntoIterator<Item = (MetricId, Sample)>) {
        let mut store = self.samples.lock().expect("metrics lock");
        for (id, sample) in samples {
            store.entry(id).or_default().push(sample);
        }
    }

    /// The values of `id` published in `[from, to)`.
    pub fn values(&self, id: &MetricId, from: SystemTime, to: SystemTime) -> Vec<f64> {
        self.samples
            .lock()
            .expect("metrics lock")
            .get(id)
            .map(|samples| {
                samples
                    .iter()
                    .filter(|s| s.at >= from && s.at < to)
                    .map(|s| s.value)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records the metrics of a log line, if it is EMF; an invalid EMF line
    /// is counted ([`Store::emf_errors`]) and otherwise only a log line.
    pub fn put_log_line(&self, line: &str) {
        match emf(line) {
            Ok(samples) => self.put(samples),
            Err(_) => *self.emf_errors.lock().expect("metrics lock") += 1,
        }
    }

    /// How many log lines were invalid EMF (`EMFValidationErrors`).
    pub fn emf_errors(&self) -> u64 {
        *self.emf_errors.lock().expect("metrics lock")
    }

    /// Every metric that has a sample.
    pub fn metrics(&self) -> Vec<MetricId> {
        let mut ids: Vec<MetricId> = self.samples.lock().expect("metrics lock").keys().cloned().collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The EMF specification's own example: one directive, one dimension
    /// set, a metric with one value.
    #[test]
    fn the_specifications_example() {
        let line = r#"{"_aws":{"Timestamp":1574109732004,"CloudWatchMetrics":[{"Namespace":"lambda-function-metrics","Dimensions":[["functionVersion"]],"Metrics":[{"Name":"time","Unit":"Milliseconds","StorageResolution":60}]}]},"functionVersion":"$LATEST","time":100,"requestId":"989ffbf8-9ace-4817-a57c-e4dd734019ee"}"#;
        let metrics = emf(line).unwrap();
        assert_eq!(
            metrics,
            [(
                MetricId::new("lambda-function-metrics", "time", &[("functionVersion", "$LATEST")]),
                Sample {
                    at: UNIX_EPOCH + Duration::from_millis(1_574_109_732_004),
                    value: 100.0
                }
            )]
        );
    }

    /// The specification's limits around a document (issue 17, found in
    /// review): an event over 256 KB, an `AWS/` namespace (a function would
    /// otherwise fake API Gateway's 5xx metric and trip a rollback alarm),
    /// a dimension name over 250 characters — each invalid, no metric.
    #[test]
    fn oversized_events_reserved_namespaces_and_long_dimension_names_are_invalid() {
        let document = |namespace: &str, key: &str, padding: usize| {
            format!(
                r#"{{"_aws":{{"Timestamp":1000,"CloudWatchMetrics":[{{"Namespace":"{namespace}","Dimensions":[["{key}"]],"Metrics":[{{"Name":"5XXError"}}]}}]}},"{key}":"accounts","5XXError":1,"pad":"{}"}}"#,
                "x".repeat(padding)
            )
        };
        assert_eq!(emf(&document("Fintech", "ApiName", 0)).unwrap().len(), 1);
        for (line, why) in [
            (document("Fintech", "ApiName", MAX_EVENT_BYTES), "256 KB"),
            (document("AWS/ApiGateway", "ApiName", 0), "AWS/"),
            (document("Fintech", &"k".repeat(251), 0), "250"),
        ] {
            let err = emf(&line).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn each_dimension_set_is_its_own_metric_and_arrays_publish_each_value() {
        let line = r#"{"_aws":{"Timestamp":1000,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["service"],["service","route"],[]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"},{"Name":"Hits"}]}]},"service":"accounts","route":"/a","Latency":[3,5],"Hits":1}"#;
        let metrics = emf(line).unwrap();
        assert_eq!(metrics.len(), 3 * 3, "3 sets × (2 latency values + 1 hit)");
        let latency_by_service: Vec<f64> = metrics
            .iter()
            .filter(|(id, _)| id == &MetricId::new("N", "Latency", &[("service", "accounts")]))
            .map(|(_, s)| s.value)
            .collect();
        assert_eq!(latency_by_service, [3.0, 5.0]);
        assert!(metrics.iter().any(|(id, _)| id == &MetricId::new("N", "Hits", &[])));
        assert!(
            metrics
                .iter()
                .any(|(id, _)| id == &MetricId::new("N", "Hits", &[("route", "/a"), ("service", "accounts")]))
        );
    }

    #[test]
    fn more_than_one_directive_and_metric_per_line() {
        let line = r#"{"_aws":{"Timestamp":1000,"CloudWatchMetrics":[{"Namespace":"A","Dimensions":[["s"]],"Metrics":[{"Name":"x"},{"Name":"y"}]},{"Namespace":"B","Dimensions":[["s"]],"Metrics":[{"Name":"x"}]}]},"s":"v","x":1,"y":2}"#;
        let ids: Vec<(String, String)> = emf(line)
            .unwrap()
            .into_iter()
            .map(|(id, _)| (id.namespace, id.name))
            .collect();
        assert_eq!(
            ids,
            [
                (String::from("A"), String::from("x")),
                (String::from("A"), String::from("y")),
                (String::from("B"), String::from("x"))
            ]
        );
    }

    #[test]
    fn lines_that_are_not_emf_give_nothing_and_invalid_emf_says_why() {
        for line in ["", "not json", r#"{"message":"a log line"}"#, "[1,2]"] {
            assert_eq!(emf(line), Ok(Vec::new()), "{line}");
        }
        for (line, why) in [
            (r#"{"_aws":{"CloudWatchMetrics":[]}}"#, "Timestamp"),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["s"]],"Metrics":[{"Name":"x"}]}]},"x":1}"#,
                "dimension s",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"x"}]}]},"x":"1"}"#,
                "metric x",
            ),
            (
                r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[]}]}}"#,
                "Dimensions",
            ),
        ] {
            let err = emf(line).unwrap_err();
            assert!(err.to_string().contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn lambdas_metrics_under_each_dimension_combination() {
        let invocation = Invocation {
            at: UNIX_EPOCH + Duration::from_secs(60),
            function: String::from("accounts"),
            qualifier: Some(String::from("live")),
            executed_version: String::from("2"),
            ending: Ending::FunctionError,
            duration: Duration::from_millis(12),
        };
        let metrics = lambda(&invocation);
        let errors = |dimensions: &[(&str, &str)]| {
            metrics
                .iter()
                .find(|(id, _)| id == &MetricId::new(LAMBDA_NAMESPACE, "Errors", dimensions))
                .map(|(_, s)| s.value)
        };
        assert_eq!(errors(&[]), Some(1.0));
        assert_eq!(errors(&[("FunctionName", "accounts")]), Some(1.0));
        assert_eq!(
            errors(&[("FunctionName", "accounts"), ("Resource", "accounts:live")]),
            Some(1.0)
        );
        assert_eq!(
            errors(&[
                ("FunctionName", "accounts"),
                ("Resource", "accounts:live"),
                ("ExecutedVersion", "2")
            ]),
            Some(1.0)
        );
        assert_eq!(metrics.len(), 4 * 4);
        let unqualified = Invocation {
            qualifier: None,
            ..invocation
        };
        assert_eq!(lambda(&unqualified).len(), 2 * 4, "no Resource without a qualifier");
    }
}
