//! CloudWatch metrics in Embedded Metric Format (EMF), as Powertools emits them.
//!
//! Each invocation gets its own [`Metrics`]; the HTTP middleware flushes it
//! once when the response is ready. A flush writes one EMF object per 100
//! metrics (CloudWatch's limit per object) with the `service` dimension and
//! any others added (30 at most). The first invocation of a process also
//! emits `ColdStart` with the `function_name` dimension, as Powertools does.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::env;
use crate::telemetry::LineSink;

/// CloudWatch's limit of metrics in one EMF object.
pub const MAX_METRICS_PER_OBJECT: usize = 100;
/// CloudWatch's limit of dimensions in one dimension set.
pub const MAX_DIMENSIONS: usize = 30;
/// CloudWatch's limit of values one metric carries in one EMF object.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// EMF units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// A percentage.
    Percent,
    /// No unit.
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::Percent => "Percent",
            Unit::None => "None",
        }
    }
}

/// A metric or dimension that EMF would reject.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    /// More than [`MAX_DIMENSIONS`] dimensions.
    #[error("dimension {name} would exceed EMF's {MAX_DIMENSIONS}-dimension limit")]
    TooManyDimensions {
        /// The dimension that did not fit.
        name: String,
    },
    /// The same metric name was added with two units.
    #[error("metric {name} was added as {first} and then as {second}")]
    UnitConflict {
        /// The metric.
        name: String,
        /// The unit it was first added with.
        first: &'static str,
        /// The unit of the rejected value.
        second: &'static str,
    },
    /// A value that is not a finite number.
    #[error("metric {name} got a value that is not a finite number")]
    NotFinite {
        /// The metric.
        name: String,
    },
}

/// Where metrics go and under which namespace; read once at init.
#[derive(Clone)]
pub struct MetricsConfig {
    /// The CloudWatch namespace.
    pub namespace: String,
    /// The service name, the default dimension.
    pub service: String,
    /// The function name, the `ColdStart` metric's dimension.
    pub function_name: String,
    /// Whether to emit at all (`POWERTOOLS_METRICS_DISABLED=true` turns it off).
    pub enabled: bool,
    /// Where EMF lines are written.
    pub sink: Arc<dyn LineSink>,
}

impl MetricsConfig {
    /// Reads namespace and switches from the environment, writing to `sink`.
    pub fn from_env(service: &str, sink: Arc<dyn LineSink>) -> Self {
        let namespace = env::var(env::POWERTOOLS_METRICS_NAMESPACE)
            .or_else(|| env::var(env::APP_NAME))
            .unwrap_or_else(|| String::from("ServerlessRust"));
        Self {
            namespace,
            service: service.to_owned(),
            function_name: env::var(env::AWS_LAMBDA_FUNCTION_NAME).unwrap_or_else(|| service.to_owned()),
            enabled: env::var(env::POWERTOOLS_METRICS_DISABLED).is_none_or(|v| !v.eq_ignore_ascii_case("true")),
            sink,
        }
    }
}

/// The metrics of one invocation.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Metrics {
    dimensions: Vec<(String, String)>,
    metrics: Vec<(String, Unit, Vec<f64>)>,
    metadata: Map<String, Value>,
}

impl Metrics {
    /// Adds a value; the same name may be added many times with one unit.
    pub fn add(&mut self, name: &str, unit: Unit, value: f64) -> Result<(), MetricsError> {
        if !value.is_finite() {
            return Err(MetricsError::NotFinite { name: name.to_owned() });
        }
        match self.metrics.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, existing, _)) if *existing != unit => Err(MetricsError::UnitConflict {
                name: name.to_owned(),
                first: existing.as_str(),
                second: unit.as_str(),
            }),
            Some((_, _, values)) => {
                values.push(value);
                Ok(())
            }
            None => {
                self.metrics.push((name.to_owned(), unit, vec![value]));
                Ok(())
            }
        }
    }

    /// Adds a dimension to every metric of this invocation (beside `service`).
    pub fn add_dimension(&mut self, name: &str, value: &str) -> Result<(), MetricsError> {
        if let Some(existing) = self.dimensions.iter_mut().find(|(n, _)| n == name) {
            existing.1 = value.to_owned();
            return Ok(());
        }
        // `service` is always one of the dimensions.
        if self.dimensions.len() + 1 >= MAX_DIMENSIONS {
            return Err(MetricsError::TooManyDimensions { name: name.to_owned() });
        }
        self.dimensions.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// Adds searchable metadata that is not a dimension.
    pub fn add_metadata(&mut self, key: &str, value: impl Into<Value>) {
        self.metadata.insert(key.to_owned(), value.into());
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Renders EMF objects, one per 100 metrics, with the given timestamp (ms since the epoch).
    pub fn to_emf(&self, namespace: &str, service: &str, timestamp_ms: u128) -> Vec<String> {
        let mut dimension_names = vec![Value::from("service")];
        dimension_names.extend(self.dimensions.iter().map(|(n, _)| Value::from(n.as_str())));
        // A metric with more than 100 values is split over several objects.
        let entries: Vec<(&str, Unit, &[f64])> = self
            .metrics
            .iter()
            .flat_map(|(name, unit, values)| {
                values
                    .chunks(MAX_VALUES_PER_METRIC)
                    .map(move |chunk| (name.as_str(), *unit, chunk))
            })
            .collect();
        let mut objects: Vec<Vec<(&str, Unit, &[f64])>> = Vec::new();
        for entry in entries {
            match objects
                .iter_mut()
                .find(|o| o.len() < MAX_METRICS_PER_OBJECT && o.iter().all(|e| e.0 != entry.0))
            {
                Some(object) => object.push(entry),
                None => objects.push(vec![entry]),
            }
        }
        objects
            .into_iter()
            .map(|metrics| {
                let definitions: Vec<Value> = metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                    .collect();
                let mut root = Map::new();
                root.insert(
                    "_aws".into(),
                    json!({
                        "Timestamp": timestamp_ms as u64,
                        "CloudWatchMetrics": [{
                            "Namespace": namespace,
                            "Dimensions": [dimension_names],
                            "Metrics": definitions,
                        }]
                    }),
                );
                root.extend(self.metadata.clone());
                root.insert("service".into(), Value::from(service));
                for (name, value) in &self.dimensions {
                    root.insert(name.clone(), Value::from(value.as_str()));
                }
                for (name, _, values) in &metrics {
                    let value = match values {
                        [one] => Value::from(*one),
                        many => Value::from(many.to_vec()),
                    };
                    root.insert((*name).to_owned(), value);
                }
                Value::Object(root).to_string()
            })
            .collect()
    }
}

/// The metrics of one invocation, shared between its handler and the
/// middleware that flushes them. Handlers take it as an axum extractor.
#[derive(Clone, Default)]
pub struct InvocationMetrics(Arc<Mutex<Metrics>>);

impl InvocationMetrics {
    /// Runs `f` on this invocation's metrics.
    pub fn with<R>(&self, f: impl FnOnce(&mut Metrics) -> R) -> R {
        f(&mut self.0.lock().expect("metrics lock"))
    }

    /// Adds a value, logging (not failing the request) when EMF would reject it.
    pub fn add(&self, name: &str, unit: Unit, value: f64) {
        if let Err(err) = self.with(|m| m.add(name, unit, value)) {
            tracing::warn!(error = %err, "metric dropped");
        }
    }

    /// Writes this invocation's metrics (if any) and empties them.
    pub fn flush(&self, config: &MetricsConfig) {
        let metrics = self.with(std::mem::take);
        if config.enabled && !metrics.is_empty() {
            for line in metrics.to_emf(&config.namespace, &config.service, now_ms()) {
                config.sink.write_line(&line);
            }
        }
    }
}

/// Emits the `ColdStart` metric as its own object with the `function_name` dimension.
pub fn emit_cold_start(config: &MetricsConfig) {
    if !config.enabled {
        return;
    }
    let mut metrics = Metrics::default();
    // Both calls are within EMF's limits by construction.
    let _ = metrics.add_dimension("function_name", &config.function_name);
    let _ = metrics.add("ColdStart", Unit::Count, 1.0);
    for line in metrics.to_emf(&config.namespace, &config.service, now_ms()) {
        config.sink.write_line(&line);
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emf(metrics: &Metrics) -> Vec<Value> {
        metrics
            .to_emf("Fintech", "accounts", 1_700_000_000_000)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn renders_powertools_shape() {
        let mut m = Metrics::default();
        m.add("Debits", Unit::Count, 1.0).unwrap();
        m.add("Debits", Unit::Count, 2.0).unwrap();
        m.add_dimension("currency", "EUR").unwrap();
        let out = emf(&m);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0],
            json!({
                "_aws": {"Timestamp": 1_700_000_000_000u64, "CloudWatchMetrics": [{
                    "Namespace": "Fintech",
                    "Dimensions": [["service", "currency"]],
                    "Metrics": [{"Name": "Debits", "Unit": "Count"}]
                }]},
                "service": "accounts",
                "currency": "EUR",
                "Debits": [1.0, 2.0]
            })
        );
    }

    #[test]
    fn splits_at_one_hundred_metrics() {
        let mut m = Metrics::default();
        for i in 0..250 {
            m.add(&format!("M{i}"), Unit::Count, 1.0).unwrap();
        }
        let out = emf(&m);
        let sizes: Vec<usize> = out
            .iter()
            .map(|o| o["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let names: std::collections::BTreeSet<String> = out
            .iter()
            .flat_map(|o| {
                o["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["Name"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(names.len(), 250);
    }

    #[test]
    fn splits_a_metric_with_more_than_one_hundred_values() {
        let mut m = Metrics::default();
        for i in 0..150 {
            m.add("Latency", Unit::Milliseconds, f64::from(i)).unwrap();
        }
        let out = emf(&m);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["Latency"].as_array().unwrap().len(), 100);
        assert_eq!(out[1]["Latency"].as_array().unwrap().len(), 50);
    }

    #[test]
    fn refuses_a_thirty_first_dimension_and_unit_conflicts() {
        let mut m = Metrics::default();
        for i in 0..29 {
            m.add_dimension(&format!("d{i}"), "v").unwrap();
        }
        assert_eq!(
            m.add_dimension("d29", "v"),
            Err(MetricsError::TooManyDimensions { name: "d29".into() })
        );
        m.add_dimension("d0", "replaced").unwrap();
        m.add("X", Unit::Count, 1.0).unwrap();
        assert!(matches!(
            m.add("X", Unit::Seconds, 1.0),
            Err(MetricsError::UnitConflict { .. })
        ));
        assert!(matches!(
            m.add("Y", Unit::Count, f64::NAN),
            Err(MetricsError::NotFinite { .. })
        ));
    }
}
