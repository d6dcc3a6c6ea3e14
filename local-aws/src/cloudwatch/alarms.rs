//! The rollback alarms' one definition, `infra/rollback-alarms.json`, read
//! here as `infra/lib/alarms.ts` reads it for the stacks: the file's alarms
//! with the stage's settings filled in, then the service's business alarms
//! (`[package.metadata.service.alarms]`) with the same settings on its EMF
//! metric, statistic `Sum`. What each alarm watches and why is in
//! `docs/runbook.md` ("Rollback alarms").

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::registry::Service;

/// API Gateway's metric of 5xx answers (1 per 5xx answer, 0 per other, so
/// its Average is the rate): what customers see, whatever answered 500 —
/// the service (a successful invocation to Lambda), API Gateway for a
/// function error or timeout, or an injected fault. A definition that does
/// not watch it is refused.
pub const SERVER_ERRORS: &str = "5XXError";

/// Whether CloudWatch takes `period_seconds` as an alarm's period: 10, 20,
/// 30 or a multiple of 60 seconds.
pub fn valid_period(period_seconds: u32) -> bool {
    matches!(period_seconds, 10 | 20 | 30) || (period_seconds > 0 && period_seconds.is_multiple_of(60))
}

/// Where a metric comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The service's REST API stage (`AWS/ApiGateway`, dimensions `ApiName`
    /// = `<app>-<stage>-<service>` and `Stage`).
    Api,
    /// Lambda's own metrics of the `live` alias (`AWS/Lambda`, dimensions
    /// `FunctionName` and `Resource` = `function:live`).
    Alias,
    /// The service's EMF metrics (the stage's namespace, dimension `service`).
    Service,
}

/// A statistic CloudWatch computes over a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// Sum of the values.
    Sum,
    /// Mean of the values.
    Average,
    /// Number of values.
    SampleCount,
    /// Smallest value.
    Minimum,
    /// Largest value.
    Maximum,
    /// A percentile, `pNN` or `pNN.NN` (0 < NN < 100).
    Percentile(f64),
}

impl Statistic {
    /// The name CloudWatch gives it (`Sum`, `p99`).
    pub fn name(&self) -> String {
        match self {
            Statistic::Sum => String::from("Sum"),
            Statistic::Average => String::from("Average"),
            Statistic::SampleCount => String::from("SampleCount"),
            Statistic::Minimum => String::from("Minimum"),
            Statistic::Maximum => String::from("Maximum"),
            Statistic::Percentile(p) => format!("p{p}"),
        }
    }
}

impl std::str::FromStr for Statistic {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "Sum" => Statistic::Sum,
            "Average" => Statistic::Average,
            "SampleCount" => Statistic::SampleCount,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            other => {
                let percentile = other
                    .strip_prefix('p')
                    .filter(|n| n.split('.').all(|part| (1..=2).contains(&part.len())) && n.split('.').count() <= 2)
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p < 100.0);
                match percentile {
                    Some(p) => Statistic::Percentile(p),
                    None => {
                        return Err(format!(
                            "expected Sum, Average, SampleCount, Minimum, Maximum or pNN, got {other:?}"
                        ));
                    }
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for Statistic {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One metric an alarm watches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRef {
    /// Where it comes from.
    pub source: Source,
    /// Its name (`Errors`, `5XXError`).
    pub name: String,
    /// What is computed over a period.
    pub statistic: Statistic,
}

/// How a datapoint is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Comparison {
    /// `>=`.
    GreaterThanOrEqualToThreshold,
    /// `>`.
    GreaterThanThreshold,
    /// `<`.
    LessThanThreshold,
    /// `<=`.
    LessThanOrEqualToThreshold,
}

/// What a missing datapoint counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TreatMissingData {
    /// As breaching.
    Breaching,
    /// As within the threshold.
    NotBreaching,
    /// The alarm keeps its state.
    Ignore,
    /// Not counted; all missing is `INSUFFICIENT_DATA`.
    Missing,
}

impl TreatMissingData {
    /// The name CloudWatch gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissingData::Breaching => "breaching",
            TreatMissingData::NotBreaching => "notBreaching",
            TreatMissingData::Ignore => "ignore",
            TreatMissingData::Missing => "missing",
        }
    }
}

/// A threshold in the file: a number, or the stage setting that holds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Threshold {
    Value(f64),
    Stage { stage: StageSetting },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum StageSetting {
    #[serde(rename = "p99DurationMs")]
    P99DurationMs,
}

/// What an alarm watches: one metric, or an expression over named metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    /// One metric.
    Metric(MetricRef),
    /// A metric-math expression over the metrics it names.
    Expression {
        /// The expression, e.g. `IF(invocations > 0, 100 * errors / invocations, 0)`.
        expression: String,
        /// Its metrics by id.
        using: BTreeMap<String, MetricRef>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmSpec {
    id: String,
    description: String,
    #[serde(default)]
    metric: Option<MetricRef>,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    using: BTreeMap<String, MetricRef>,
    threshold: Threshold,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    #[serde(rename = "$comment", default)]
    _comment: Option<String>,
    period_seconds: u32,
    evaluation_periods: u32,
    datapoints_to_alarm: u32,
    comparison: Comparison,
    treat_missing_data: TreatMissingData,
    alarms: Vec<AlarmSpec>,
}

/// The stage settings an alarm's threshold may name (`infra/cdk.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageThresholds {
    /// `p99DurationMs`.
    pub p99_duration_ms: f64,
}

/// One rollback alarm as a stage deploys it for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmDefinition {
    /// `ServerErrorRate`, `P99Duration`, `PaymentsStuck`: the alarm is
    /// named `<app>-<stage>-<service>-<id>`.
    pub id: String,
    /// What it means.
    pub description: String,
    /// What it watches.
    pub watched: Watched,
    /// The threshold.
    pub threshold: f64,
    /// The period, in seconds.
    pub period_seconds: u32,
    /// N: the datapoints evaluated.
    pub evaluation_periods: u32,
    /// M: how many of them must breach.
    pub datapoints_to_alarm: u32,
    /// How a datapoint is compared.
    pub comparison: Comparison,
    /// What a missing datapoint counts as.
    pub treat_missing_data: TreatMissingData,
}

/// `infra/rollback-alarms.json` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// Not readable.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not the expected shape (serde names the field).
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// Well formed, but not a definition a stage can deploy.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The field.
        field: String,
        /// What was expected.
        message: String,
    },
}

/// The rollback alarms' definition, checked.
#[derive(Debug)]
pub struct Definition {
    file: File,
}

impl Definition {
    /// Reads the workspace's `infra/rollback-alarms.json`.
    pub fn load() -> Result<Self, DefinitionError> {
        Self::read(&crate::workspace_root().join("infra/rollback-alarms.json"))
    }

    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Self, DefinitionError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
            path: shown.clone(),
            source,
        })?;
        let file: File = serde_json::from_str(&text).map_err(|source| DefinitionError::Parse {
            path: shown.clone(),
            source,
        })?;
        let invalid = |field: String, message: &str| DefinitionError::Invalid {
            path: shown.clone(),
            field,
            message: message.to_owned(),
        };
        for (field, value) in [
            ("periodSeconds", file.period_seconds),
            ("evaluationPeriods", file.evaluation_periods),
            ("datapointsToAlarm", file.datapoints_to_alarm),
        ] {
            if value == 0 {
                return Err(invalid(field.to_owned(), "expected a positive integer"));
            }
        }
        if !valid_period(file.period_seconds) {
            return Err(invalid(
                String::from("periodSeconds"),
                "expected 10, 20, 30 or a multiple of 60",
            ));
        }
        if u64::from(file.evaluation_periods) * u64::from(file.period_seconds) > 86_400 {
            return Err(invalid(
                String::from("evaluationPeriods"),
                "expected evaluationPeriods × periodSeconds of at most one day",
            ));
        }
        if file.datapoints_to_alarm > file.evaluation_periods {
            return Err(invalid(
                String::from("datapointsToAlarm"),
                "expected at most evaluationPeriods",
            ));
        }
        for (i, alarm) in file.alarms.iter().enumerate() {
            if alarm.id.is_empty() || !alarm.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(format!("alarms[{i}].id"), "expected letters and digits"));
            }
            match (&alarm.metric, &alarm.expression) {
                (Some(_), None) if alarm.using.is_empty() => {}
                (None, Some(_)) if !alarm.using.is_empty() => {}
                (None, Some(_)) => {
                    return Err(invalid(
                        format!("alarms[{i}].using"),
                        "an expression needs the metrics it names",
                    ));
                }
                _ => {
                    return Err(invalid(
                        format!("alarms[{i}]"),
                        "expected exactly one of metric and expression (with using)",
                    ));
                }
            }
        }
        let watches_5xx = file.alarms.iter().any(|alarm| {
            alarm
                .metric
                .iter()
                .chain(alarm.using.values())
                .any(|m| m.source == Source::Api && m.name == SERVER_ERRORS)
        });
        if !watches_5xx {
            return Err(invalid(
                String::from("alarms"),
                "none watches the API's 5XXError metric, so a release answering 5xx would never be rolled back (Lambda counts those invocations as successes)",
            ));
        }
        Ok(Self { file })
    }

    /// The alarms that roll `service`'s deployments back in a stage with
    /// `stage`'s settings: the file's, in order, then the business alarms.
    pub fn for_service(&self, service: &Service, stage: StageThresholds) -> Vec<AlarmDefinition> {
        let file = &self.file;
        let definition = |id: &str, description: String, watched: Watched, threshold: f64| AlarmDefinition {
            id: id.to_owned(),
            description,
            watched,
            threshold,
            period_seconds: file.period_seconds,
            evaluation_periods: file.evaluation_periods,
            datapoints_to_alarm: file.datapoints_to_alarm,
            comparison: file.comparison,
            treat_missing_data: file.treat_missing_data,
        };
        let defined = file.alarms.iter().map(|alarm| {
            let watched = match (&alarm.metric, &alarm.expression) {
                (Some(metric), _) => Watched::Metric(metric.clone()),
                (None, expression) => Watched::Expression {
                    expression: expression.clone().unwrap_or_default(),
                    using: alarm.using.clone(),
                },
            };
            let threshold = match alarm.threshold {
                Threshold::Value(value) => value,
                Threshold::Stage {
                    stage: StageSetting::P99DurationMs,
                } => stage.p99_duration_ms,
            };
            definition(&alarm.id, alarm.description.clone(), watched, threshold)
        });
        let business = service.spec.alarms.iter().map(|(name, threshold)| {
            definition(
                name,
                format!("{name} (EMF) at or above {threshold} in {} s", file.period_seconds),
                Watched::Metric(MetricRef {
                    source: Source::Service,
                    name: name.clone(),
                    statistic: Statistic::Sum,
                }),
                *threshold,
            )
        });
        defined.chain(business).collect()
    }
}

/// Where one service's alarms point in a stage, named as `infra/` names
/// them: alarms `<app>-<stage>-<service>-<id>`, the REST API
/// `<app>-<stage>-<service>` with stage `<stage>`, the alias, the EMF namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmTarget {
    /// `APP_NAME`.
    pub app: String,
    /// The stage.
    pub stage: String,
    /// The service (its function's name).
    pub service: String,
    /// The alias deployments shift (`live`).
    pub alias: String,
    /// The stage's EMF namespace (`cdk.json` `metricsNamespace`).
    pub namespace: String,
}

impl AlarmTarget {
    /// The alarm's name.
    pub fn alarm_name(&self, alarm: &AlarmDefinition) -> String {
        format!("{}-{}-{}-{}", self.app, self.stage, self.service, alarm.id)
    }

    /// The exact metric `metric` is for this service.
    pub fn metric(&self, metric: &MetricRef) -> crate::cloudwatch::store::MetricId {
        use crate::cloudwatch::store::MetricId;
        match metric.source {
            Source::Api => MetricId::new(
                crate::cloudwatch::store::API_NAMESPACE,
                &metric.name,
                &[
                    ("ApiName", &format!("{}-{}-{}", self.app, self.stage, self.service)),
                    ("Stage", &self.stage),
                ],
            ),
            Source::Alias => MetricId::new(
                crate::cloudwatch::store::LAMBDA_NAMESPACE,
                &metric.name,
                &[
                    ("FunctionName", &self.service),
                    ("Resource", &format!("{}:{}", self.service, self.alias)),
                ],
            ),
            Source::Service => MetricId::new(&self.namespace, &metric.name, &[("service", &self.service)]),
        }
    }

    /// `alarm` as the stage deploys it, in `AWS::CloudWatch::Alarm`'s
    /// property names (which are `PutMetricAlarm`'s): what [`AlarmTarget::put`]
    /// sends and `infra/test` compares with the synthesized template.
    pub fn properties(&self, alarm: &AlarmDefinition) -> AlarmProperties {
        let period = alarm.period_seconds as i32;
        let metric_of = |metric: &MetricRef| {
            let id = self.metric(metric);
            MetricProperties {
                namespace: id.namespace,
                metric_name: id.name,
                dimensions: id
                    .dimensions
                    .into_iter()
                    .map(|(name, value)| DimensionProperty { name, value })
                    .collect(),
            }
        };
        let (single, metrics) = match &alarm.watched {
            Watched::Metric(metric) => (Some((metric_of(metric), metric.statistic)), Vec::new()),
            Watched::Expression { expression, using } => (
                None,
                using
                    .iter()
                    .map(|(id, metric)| QueryProperties {
                        id: id.clone(),
                        metric_stat: Some(MetricStatProperties {
                            metric: metric_of(metric),
                            period,
                            stat: metric.statistic.name(),
                        }),
                        expression: None,
                        return_data: false,
                    })
                    .chain(std::iter::once(QueryProperties {
                        id: String::from("expression"),
                        metric_stat: None,
                        expression: Some(expression.clone()),
                        return_data: true,
                    }))
                    .collect(),
            ),
        };
        let statistic = single.as_ref().map(|(_, s)| *s);
        let percentile = |s: &Statistic| matches!(s, Statistic::Percentile(_));
        let single = single.map(|(m, _)| m);
        AlarmProperties {
            alarm_name: self.alarm_name(alarm),
            alarm_description: alarm.description.clone(),
            namespace: single.as_ref().map(|m| m.namespace.clone()),
            metric_name: single.as_ref().map(|m| m.metric_name.clone()),
            dimensions: single.map(|m| m.dimensions).unwrap_or_default(),
            statistic: statistic.filter(|s| !percentile(s)).map(|s| s.name()),
            extended_statistic: statistic.filter(percentile).map(|s| s.name()),
            period: statistic.map(|_| period),
            metrics,
            threshold: alarm.threshold,
            evaluation_periods: alarm.evaluation_periods as i32,
            datapoints_to_alarm: alarm.datapoints_to_alarm as i32,
            comparison_operator: format!("{:?}", alarm.comparison),
            treat_missing_data: alarm.treat_missing_data.as_str().to_owned(),
        }
    }

    /// Puts `alarm` with `PutMetricAlarm` through `client`, as the stage's
    /// stack creates it; its name.
    pub async fn put(
        &self,
        client: &aws_sdk_cloudwatch::Client,
        alarm: &AlarmDefinition,
    ) -> Result<
        String,
        aws_sdk_cloudwatch::error::SdkError<aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmError>,
    > {
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let p = self.properties(alarm);
        let dimensions = |dimensions: &[DimensionProperty]| {
            Some(
                dimensions
                    .iter()
                    .map(|d| Dimension::builder().name(&d.name).value(&d.value).build())
                    .collect(),
            )
        };
        let metrics = p
            .metrics
            .iter()
            .map(|q| {
                MetricDataQuery::builder()
                    .id(&q.id)
                    .set_metric_stat(q.metric_stat.as_ref().map(|stat| {
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace(&stat.metric.namespace)
                                    .metric_name(&stat.metric.metric_name)
                                    .set_dimensions(dimensions(&stat.metric.dimensions))
                                    .build(),
                            )
                            .period(stat.period)
                            .stat(&stat.stat)
                            .build()
                    }))
                    .set_expression(q.expression.clone())
                    .return_data(q.return_data)
                    .build()
            })
            .collect();
        client
            .put_metric_alarm()
            .alarm_name(&p.alarm_name)
            .alarm_description(&p.alarm_description)
            .set_namespace(p.namespace.clone())
            .set_metric_name(p.metric_name.clone())
            .set_dimensions(if p.dimensions.is_empty() {
                None
            } else {
                dimensions(&p.dimensions)
            })
            .set_statistic(p.statistic.as_deref().map(Into::into))
            .set_extended_statistic(p.extended_statistic.clone())
            .set_period(p.period)
            .set_metrics(if p.metrics.is_empty() { None } else { Some(metrics) })
            .threshold(p.threshold)
            .evaluation_periods(p.evaluation_periods)
            .datapoints_to_alarm(p.datapoints_to_alarm)
            .comparison_operator(p.comparison_operator.as_str().into())
            .treat_missing_data(&p.treat_missing_data)
            .send()
            .await
            .map(|_| p.alarm_name)
    }
}

/// `{Name, Value}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionProperty {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A metric: namespace, name, dimensions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricProperties {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub metric_name: String,
    /// The dimensions.
    pub dimensions: Vec<DimensionProperty>,
}

/// A metric with its period and statistic, in an expression's query.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStatProperties {
    /// The metric.
    pub metric: MetricProperties,
    /// Seconds.
    pub period: i32,
    /// `Sum`, `p99`, …
    pub stat: String,
}

/// One query of a metric-math alarm.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueryProperties {
    /// The id the expression names it by.
    pub id: String,
    /// A metric, or …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStatProperties>,
    /// … the expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Whether this is the alarm's value.
    pub return_data: bool,
}

/// An alarm in `AWS::CloudWatch::Alarm`'s (and `PutMetricAlarm`'s) terms.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmProperties {
    /// The name.
    pub alarm_name: String,
    /// The description.
    pub alarm_description: String,
    /// One metric's namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One metric's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// One metric's dimensions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<DimensionProperty>,
    /// One metric's statistic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// One metric's percentile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    /// One metric's period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<i32>,
    /// An expression's queries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<QueryProperties>,
    /// The threshold.
    pub threshold: f64,
    /// N.
    pub evaluation_periods: i32,
    /// M.
    pub datapoints_to_alarm: i32,
    /// The comparison.
    pub comparison_operator: String,
    /// The missing-data mode.
    pub treat_missing_data: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_parse_as_cloudwatch_names_them() {
        for (text, parsed) in [
            ("Sum", Statistic::Sum),
            ("Average", Statistic::Average),
            ("p99", Statistic::Percentile(99.0)),
            ("p99.9", Statistic::Percentile(99.9)),
            ("p50", Statistic::Percentile(50.0)),
        ] {
            assert_eq!(text.parse::<Statistic>(), Ok(parsed), "{text}");
            assert_eq!(parsed.name(), text);
        }
        for bad in ["Median", "p", "p100", "p0", "p-1", "p99.999", "P99", "sum", "p1e2"] {
            assert!(bad.parse::<Statistic>().is_err(), "{bad}");
        }
    }
}
