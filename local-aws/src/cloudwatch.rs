//! A CloudWatch endpoint for one machine, in the wire format
//! `aws-sdk-cloudwatch` speaks (Smithy RPC v2 CBOR, [`wire`]), reached
//! through `AWS_ENDPOINT_URL_CLOUDWATCH`:
//!
//! - `PutMetricAlarm` (one metric with a statistic or percentile, or a
//!   metric-math expression over metrics, [`math`]), `DescribeAlarms` (what
//!   CodeDeploy reads between steps), `SetAlarmState`, `DeleteAlarms`, and
//!   `GetMetricData` for reports;
//! - metrics from what really runs ([`store`]): the Lambda endpoint's own
//!   per-invocation metrics and the functions' EMF lines from their stdout;
//! - alarms evaluated as CloudWatch evaluates them ([`evaluate`], [`alarm`]),
//!   period by period on the endpoint's [`Clock`] — faster than real time in
//!   a rehearsal;
//! - [`alarms`]: the rollback alarms' one definition (`infra/rollback-alarms.json`),
//!   resolved for a service and stage exactly as `infra/lib/alarms.ts` resolves it.

pub mod alarm;
pub mod alarms;
pub mod evaluate;
pub mod math;
pub mod store;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::Mutex;

use crate::Error;
pub use alarm::Clock;
use alarm::{LowSampleCount, MetricAlarm, MetricStat, Query};
use alarms::{Comparison, Statistic, TreatMissingData, valid_period};
use evaluate::AlarmState;
use store::{MetricId, Store};
use wire::Refusal;

/// The path prefix of every operation.
const SERVICE_PATH: &str = "/service/GraniteServiceVersion20100801/operation";

/// The latest time a query may name (2200-01-01), in epoch seconds.
const MAX_EPOCH_SECONDS: f64 = 7_258_118_400.0;

/// CloudWatch's longest evaluation window: `EvaluationPeriods` × `Period`
/// at most one day for periods under an hour, seven days otherwise.
fn evaluation_window_ok(evaluation_periods: u32, period_seconds: u32) -> bool {
    let limit = if period_seconds < 3600 { 86_400 } else { 604_800 };
    u64::from(evaluation_periods) * u64::from(period_seconds) <= limit
}

/// The region and account alarm ARNs are made with.
const ARN_PREFIX: &str = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:";

struct Shared {
    store: Arc<Store>,
    clock: Clock,
    alarms: Mutex<BTreeMap<String, MetricAlarm>>,
}

/// A running CloudWatch endpoint on 127.0.0.1.
pub struct CloudWatch {
    endpoint: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl CloudWatch {
    /// Starts an endpoint whose alarms read `store`, with time running on `clock`.
    pub async fn start(store: Arc<Store>, clock: Clock) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            store,
            clock,
            alarms: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new()
            .route(&format!("{SERVICE_PATH}/{{operation}}"), post(handle))
            .with_state(shared.clone())
            .layer(axum::middleware::map_response(crate::with_request_id));
        let (address, server) = crate::serve_router(app).await?;
        Ok(Self {
            endpoint: format!("http://{address}"),
            shared,
            server,
        })
    }

    /// The value for `AWS_ENDPOINT_URL_CLOUDWATCH`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The metrics its alarms read.
    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// Every alarm's name and state, evaluated up to now.
    pub async fn states(&self) -> Vec<(String, AlarmState)> {
        let mut alarms = self.shared.alarms.lock().await;
        let now = SystemTime::now();
        alarms
            .values_mut()
            .map(|alarm| {
                alarm.advance(&self.shared.store, &self.shared.clock, now);
                (alarm.name.clone(), alarm.state)
            })
            .collect()
    }
}

impl Drop for CloudWatch {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    // The SDK sends `{}` for an input with no members set; an empty body is the same.
    let body: &[u8] = if body.is_empty() { &[0xA0] } else { body };
    ciborium::from_reader(body).map_err(|err| {
        Refusal::client(
            "InvalidParameterValue",
            format!("the request is not the operation's CBOR input: {err}"),
        )
    })
}

async fn handle(State(shared): State<Arc<Shared>>, Path(operation): Path<String>, body: Bytes) -> Response {
    let answer = match operation.as_str() {
        "PutMetricAlarm" => put_metric_alarm(&shared, &body).await,
        "DescribeAlarms" => describe_alarms(&shared, &body).await,
        "SetAlarmState" => set_alarm_state(&shared, &body).await,
        "DeleteAlarms" => delete_alarms(&shared, &body).await,
        "GetMetricData" => get_metric_data(&shared, &body),
        other => Err(Refusal::client(
            "InvalidAction",
            format!("{other} is not an operation this endpoint serves"),
        )),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

fn required<T>(value: Option<T>, member: &str) -> Result<T, Refusal> {
    value.ok_or_else(|| Refusal::client("MissingParameter", format!("The parameter {member} is required.")))
}

fn invalid(member: &str, expected: &str) -> Refusal {
    Refusal::client("InvalidParameterValue", format!("{member}: expected {expected}"))
}

fn metric_id(metric: &wire::Metric, member: &str) -> Result<MetricId, Refusal> {
    Ok(MetricId {
        namespace: required(metric.namespace.clone(), &format!("{member}.Namespace"))?,
        name: required(metric.metric_name.clone(), &format!("{member}.MetricName"))?,
        dimensions: metric
            .dimensions
            .iter()
            .map(|d| (d.name.clone(), d.value.clone()))
            .collect(),
    })
}

fn positive(value: i32, member: &str) -> Result<u32, Refusal> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid(member, "a positive integer"))
}

fn parse_statistic(text: &str, member: &str) -> Result<Statistic, Refusal> {
    text.parse().map_err(|_| {
        invalid(
            member,
            "Sum, Average, SampleCount, Minimum, Maximum or a percentile pNN",
        )
    })
}

/// The metrics of `queries` (those with a `MetricStat`) by id; a bad one is
/// named by its member path under `list`.
fn metric_stats(queries: &[wire::MetricDataQuery], list: &str) -> Result<BTreeMap<String, MetricStat>, Refusal> {
    let mut metrics = BTreeMap::new();
    for (i, query) in queries.iter().enumerate() {
        if let Some(stat) = &query.metric_stat {
            let member = format!("{list}.member.{}.MetricStat", i + 1);
            metrics.insert(
                query.id.clone(),
                MetricStat {
                    metric: metric_id(&stat.metric, &format!("{member}.Metric"))?,
                    statistic: parse_statistic(&stat.stat, &format!("{member}.Stat"))?,
                    period_seconds: positive(stat.period, &format!("{member}.Period"))?,
                },
            );
        }
    }
    Ok(metrics)
}

fn query_of(input: &wire::PutMetricAlarmInput) -> Result<Query, Refusal> {
    if input.metrics.is_empty() {
        let statistic = match (&input.statistic, &input.extended_statistic) {
            (Some(s), None) => parse_statistic(s, "Statistic")?,
            (None, Some(s)) => match parse_statistic(s, "ExtendedStatistic")? {
                Statistic::Percentile(p) => Statistic::Percentile(p),
                _ => return Err(invalid("ExtendedStatistic", "a percentile pNN")),
            },
            _ => return Err(invalid("Statistic", "exactly one of Statistic and ExtendedStatistic")),
        };
        let metric = wire::Metric {
            namespace: input.namespace.clone(),
            metric_name: input.metric_name.clone(),
            dimensions: input.dimensions.clone(),
        };
        return Ok(Query::Metric(MetricStat {
            metric: metric_id(&metric, "")?,
            statistic,
            period_seconds: positive(required(input.period, "Period")?, "Period")?,
        }));
    }
    if input.metric_name.is_some() || input.namespace.is_some() {
        return Err(Refusal::client(
            "InvalidParameterCombination",
            "Metrics cannot be given with MetricName or Namespace",
        ));
    }
    let returned: Vec<&wire::MetricDataQuery> =
        input.metrics.iter().filter(|q| q.return_data.unwrap_or(true)).collect();
    let [result] = returned[..] else {
        return Err(invalid("Metrics", "exactly one query with ReturnData true"));
    };
    let mut metrics = metric_stats(&input.metrics, "Metrics")?;
    let periods: std::collections::BTreeSet<u32> = metrics.values().map(|m| m.period_seconds).collect();
    if periods.len() > 1 {
        return Err(invalid(
            "Metrics",
            "every metric of an alarm's expression with the same period",
        ));
    }
    match (&result.expression, &result.metric_stat) {
        (Some(text), None) => {
            let expression = math::parse(text).map_err(|err| invalid("Metrics.Expression", &err.to_string()))?;
            if let Some(unknown) = expression.ids().into_iter().find(|id| !metrics.contains_key(*id)) {
                return Err(invalid(
                    "Metrics.Expression",
                    &format!("ids of the alarm's metrics, not {unknown}"),
                ));
            }
            Ok(Query::Math {
                text: text.clone(),
                expression,
                metrics,
            })
        }
        (None, Some(_)) => Ok(Query::Metric(metrics.remove(&result.id).expect("inserted above"))),
        _ => Err(invalid(
            "Metrics",
            "a query with exactly one of MetricStat and Expression",
        )),
    }
}

async fn put_metric_alarm(shared: &Shared, body: &[u8]) -> Result<Response, Refusal> {
    let input: wire::PutMetricAlarmInput = decode(body)?;
    let name = required(input.alarm_name.clone(), "AlarmName")?;
    if name.is_empty() || name.len() > 255 {
        return Err(invalid("AlarmName", "1 to 255 characters"));
    }
    let query = query_of(&input)?;
    let n = positive(
        required(input.evaluation_periods, "EvaluationPeriods")?,
        "EvaluationPeriods",
    )?;
    let m = match input.datapoints_to_alarm {
        Some(m) => positive(m, "DatapointsToAlarm")?,
        None => n,
    };
    if m > n {
        return Err(invalid("DatapointsToAlarm", "at most EvaluationPeriods"));
    }
    let period = query.period_seconds();
    if !valid_period(period) {
        return Err(invalid("Period", "10, 20, 30 or a multiple of 60 seconds"));
    }
    if !evaluation_window_ok(n, period) {
        return Err(invalid(
            "EvaluationPeriods",
            "EvaluationPeriods × Period of at most one day (seven days for periods of an hour or more)",
        ));
    }
    let threshold = required(input.threshold, "Threshold")?;
    if !threshold.is_finite() {
        return Err(invalid("Threshold", "a finite number"));
    }
    let comparison = match required(input.comparison_operator.clone(), "ComparisonOperator")?.as_str() {
        "GreaterThanOrEqualToThreshold" => Comparison::GreaterThanOrEqualToThreshold,
        "GreaterThanThreshold" => Comparison::GreaterThanThreshold,
        "LessThanThreshold" => Comparison::LessThanThreshold,
        "LessThanOrEqualToThreshold" => Comparison::LessThanOrEqualToThreshold,
        _ => return Err(invalid("ComparisonOperator", "one of the four threshold comparisons")),
    };
    let treat = match input.treat_missing_data.as_deref().unwrap_or("missing") {
        "breaching" => TreatMissingData::Breaching,
        "notBreaching" => TreatMissingData::NotBreaching,
        "ignore" => TreatMissingData::Ignore,
        "missing" => TreatMissingData::Missing,
        _ => {
            return Err(invalid(
                "TreatMissingData",
                "breaching, notBreaching, ignore or missing",
            ));
        }
    };
    let low_sample_count = match input.evaluate_low_sample_count_percentile.as_deref() {
        None => None,
        Some("evaluate") => Some(LowSampleCount::Evaluate),
        Some("ignore") => Some(LowSampleCount::Ignore),
        Some(_) => return Err(invalid("EvaluateLowSampleCountPercentile", "evaluate or ignore")),
    };
    let mut alarm = MetricAlarm::new(
        name.clone(),
        input.alarm_description.clone().unwrap_or_default(),
        query,
        threshold,
        comparison,
        n,
        m,
        treat,
        input.alarm_actions.clone(),
        &shared.clock,
        SystemTime::now(),
    );
    alarm.low_sample_count = low_sample_count;
    shared.alarms.lock().await.insert(name, alarm);
    Ok(wire::cbor(StatusCode::OK, &wire::Empty {}))
}

fn describe(alarm: &MetricAlarm) -> wire::MetricAlarmOut {
    let dimensions = |id: &MetricId| -> Vec<wire::Dimension> {
        id.dimensions
            .iter()
            .map(|(name, value)| wire::Dimension {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    };
    let (single, metrics) = match &alarm.query {
        Query::Metric(stat) => (Some(stat), Vec::new()),
        Query::Math { text, metrics, .. } => (
            None,
            metrics
                .iter()
                .map(|(id, stat)| wire::MetricDataQuery {
                    id: id.clone(),
                    metric_stat: Some(wire::MetricStat {
                        metric: wire::Metric {
                            namespace: Some(stat.metric.namespace.clone()),
                            metric_name: Some(stat.metric.name.clone()),
                            dimensions: dimensions(&stat.metric),
                        },
                        period: stat.period_seconds as i32,
                        stat: stat.statistic.name(),
                        unit: None,
                    }),
                    expression: None,
                    label: None,
                    return_data: Some(false),
                    period: None,
                })
                .chain(std::iter::once(wire::MetricDataQuery {
                    id: String::from("expression"),
                    metric_stat: None,
                    expression: Some(text.clone()),
                    label: Some(alarm.description.clone()),
                    return_data: Some(true),
                    period: None,
                }))
                .collect(),
        ),
    };
    let percentile = single.filter(|s| matches!(s.statistic, Statistic::Percentile(_)));
    wire::MetricAlarmOut {
        alarm_name: alarm.name.clone(),
        alarm_arn: format!("{ARN_PREFIX}{}", alarm.name),
        alarm_description: alarm.description.clone(),
        state_value: alarm.state.as_str().to_owned(),
        state_reason: alarm.state_reason.clone(),
        state_updated_timestamp: wire::timestamp(alarm.state_updated),
        namespace: single.map(|s| s.metric.namespace.clone()),
        metric_name: single.map(|s| s.metric.name.clone()),
        dimensions: single.map(|s| dimensions(&s.metric)).unwrap_or_default(),
        statistic: single.filter(|_| percentile.is_none()).map(|s| s.statistic.name()),
        extended_statistic: percentile.map(|s| s.statistic.name()),
        period: single.map(|s| s.period_seconds as i32),
        metrics,
        evaluation_periods: alarm.evaluation_periods as i32,
        datapoints_to_alarm: alarm.datapoints_to_alarm as i32,
        threshold: alarm.threshold,
        comparison_operator: format!("{:?}", alarm.comparison),
        treat_missing_data: alarm.treat_missing_data.as_str().to_owned(),
        evaluate_low_sample_count_percentile: alarm.low_sample_count.map(|l| l.as_str().to_owned()),
        alarm_actions: alarm.alarm_actions.clone(),
        actions_enabled: true,
    }
}

/// `DescribeAlarms` as the API reference defines it: `AlarmNames` (at most
/// 100) or `AlarmNamePrefix`, not both; `StateValue` one of the three
/// states; `AlarmTypes` (metric alarms only when absent; this stand-in holds
/// no other kind); pages of `MaxRecords` (1 to 100, 50 by default) in name
/// order, continued by the `NextToken` of the previous page.
async fn describe_alarms(shared: &Shared, body: &[u8]) -> Result<Response, Refusal> {
    let input: wire::DescribeAlarmsInput = decode(body)?;
    if input.alarm_names.len() > 100 {
        return Err(invalid("AlarmNames", "at most 100 names"));
    }
    if !input.alarm_names.is_empty() && input.alarm_name_prefix.is_some() {
        return Err(Refusal::client(
            "InvalidParameterCombination",
            String::from("AlarmNamePrefix cannot be specified with AlarmNames"),
        ));
    }
    if let Some(state) = &input.state_value
        && !["OK", "ALARM", "INSUFFICIENT_DATA"].contains(&state.as_str())
    {
        return Err(invalid("StateValue", "OK, ALARM or INSUFFICIENT_DATA"));
    }
    if let Some(kind) = input
        .alarm_types
        .iter()
        .find(|t| !["MetricAlarm", "CompositeAlarm", "LogAlarm"].contains(&t.as_str()))
    {
        return Err(invalid(
            "AlarmTypes",
            &format!("MetricAlarm, CompositeAlarm or LogAlarm, not {kind:?}"),
        ));
    }
    let page = match input.max_records {
        None => 50,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(invalid("MaxRecords", "1 to 100")),
    };
    let metric_alarms = input.alarm_types.is_empty() || input.alarm_types.iter().any(|t| t == "MetricAlarm");
    let now = SystemTime::now();
    let mut alarms = shared.alarms.lock().await;
    let mut names: Vec<String> = alarms
        .keys()
        .filter(|_| metric_alarms)
        .filter(|name| input.alarm_names.is_empty() || input.alarm_names.contains(name))
        .filter(|name| {
            input
                .alarm_name_prefix
                .as_ref()
                .is_none_or(|p| name.starts_with(p.as_str()))
        })
        .cloned()
        .collect();
    names.sort();
    let mut found = Vec::new();
    for name in &names {
        if let Some(alarm) = alarms.get_mut(name) {
            alarm.advance(&shared.store, &shared.clock, now);
            let described = describe(alarm);
            if input.state_value.as_ref().is_none_or(|s| &described.state_value == s) {
                found.push(described);
            }
        }
    }
    // The token is the name of the last alarm a page held: the next page
    // starts after it, whatever was added or removed in between.
    let start = match input.next_token.as_deref() {
        None => 0,
        Some("") => return Err(Refusal::client("InvalidNextToken", String::from("The token is empty."))),
        Some(token) => found
            .iter()
            .position(|a| a.alarm_name.as_str() > token)
            .unwrap_or(found.len()),
    };
    let rest = found.split_off(start);
    let more = rest.len() > page;
    let metric_alarms: Vec<wire::MetricAlarmOut> = rest.into_iter().take(page).collect();
    let next_token = more
        .then(|| metric_alarms.last().map(|a| a.alarm_name.clone()))
        .flatten();
    Ok(wire::cbor(
        StatusCode::OK,
        &wire::DescribeAlarmsOutput {
            metric_alarms,
            next_token,
        },
    ))
}

async fn set_alarm_state(shared: &Shared, body: &[u8]) -> Result<Response, Refusal> {
    let input: wire::SetAlarmStateInput = decode(body)?;
    let name = required(input.alarm_name, "AlarmName")?;
    let state = match required(input.state_value, "StateValue")?.as_str() {
        "OK" => AlarmState::Ok,
        "ALARM" => AlarmState::Alarm,
        "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
        _ => return Err(invalid("StateValue", "OK, ALARM or INSUFFICIENT_DATA")),
    };
    let reason = required(input.state_reason, "StateReason")?;
    let mut alarms = shared.alarms.lock().await;
    let alarm = alarms
        .get_mut(&name)
        .ok_or_else(|| Refusal::client("ResourceNotFound", format!("Alarm {name} does not exist.")))?;
    // Evaluated up to now first, so the set state holds until the next period ends.
    let now = SystemTime::now();
    alarm.advance(&shared.store, &shared.clock, now);
    alarm.set_state(state, reason, now);
    Ok(wire::cbor(StatusCode::OK, &wire::Empty {}))
}

async fn delete_alarms(shared: &Shared, body: &[u8]) -> Result<Response, Refusal> {
    let input: wire::DescribeAlarmsInput = decode(body)?;
    let mut alarms = shared.alarms.lock().await;
    if let Some(missing) = input.alarm_names.iter().find(|n| !alarms.contains_key(*n)) {
        return Err(Refusal::client(
            "ResourceNotFound",
            format!("Alarm {missing} does not exist."),
        ));
    }
    for name in &input.alarm_names {
        alarms.remove(name);
    }
    Ok(wire::cbor(StatusCode::OK, &wire::Empty {}))
}

fn get_metric_data(shared: &Shared, body: &[u8]) -> Result<Response, Refusal> {
    let input: wire::GetMetricDataInput = decode(body)?;
    let seconds = |t: Option<wire::Timestamp>, member: &str| -> Result<SystemTime, Refusal> {
        let t = required(t, member)?.0;
        // Between 1970 and 2200: beyond, nothing was ever published, and
        // the arithmetic below stays within range.
        if !(0.0..=MAX_EPOCH_SECONDS).contains(&t) {
            return Err(invalid(member, "a time between 1970 and 2200"));
        }
        Ok(UNIX_EPOCH + Duration::from_secs_f64(t))
    };
    let (start, end) = (
        seconds(input.start_time, "StartTime")?,
        seconds(input.end_time, "EndTime")?,
    );
    if end <= start {
        return Err(invalid("EndTime", "a time after StartTime"));
    }
    let clock = &shared.clock;
    let metrics = metric_stats(&input.metric_data_queries, "MetricDataQueries")?;
    let mut results = Vec::new();
    for query in input
        .metric_data_queries
        .iter()
        .filter(|q| q.return_data.unwrap_or(true))
    {
        let built = match (&query.metric_stat, &query.expression) {
            (Some(_), None) => Query::Metric(metrics[&query.id].clone()),
            (None, Some(text)) => {
                let expression = math::parse(text).map_err(|err| invalid("Expression", &err.to_string()))?;
                // As an alarm's math: every id must name a MetricStat query.
                if let Some(unknown) = expression.ids().into_iter().find(|id| !metrics.contains_key(*id)) {
                    return Err(invalid(
                        "Expression",
                        &format!("ids of MetricStat queries in MetricDataQueries, not {unknown}"),
                    ));
                }
                Query::Math {
                    text: text.clone(),
                    expression,
                    metrics: metrics.clone(),
                }
            }
            _ => {
                return Err(invalid(
                    "MetricDataQueries",
                    "each query with exactly one of MetricStat and Expression",
                ));
            }
        };
        let period = query.period.map_or(built.period_seconds(), |p| p.max(1) as u32);
        if !valid_period(period) {
            return Err(invalid("Period", "10, 20, 30 or a multiple of 60 seconds"));
        }
        let period = i64::from(period);
        let (from, to) = (clock.scaled(start) as i64, clock.scaled(end) as i64);
        let first = from.div_euclid(period) * period;
        let starts: Vec<i64> = (0..10_000)
            .map(|i| first + i * period)
            .take_while(|s| *s < to)
            .collect();
        let mut points: Vec<(i64, f64)> = built.datapoints(&shared.store, clock, &starts).into_iter().collect();
        if input.scan_by.as_deref() != Some("TimestampAscending") {
            points.reverse();
        }
        results.push(wire::MetricDataResult {
            id: query.id.clone(),
            label: query.label.clone().unwrap_or_else(|| query.id.clone()),
            timestamps: points
                .iter()
                .map(|(t, _)| wire::timestamp(clock.real(*t as f64)))
                .collect(),
            values: points.iter().map(|(_, v)| *v).collect(),
            status_code: String::from("Complete"),
        });
    }
    Ok(wire::cbor(
        StatusCode::OK,
        &wire::GetMetricDataOutput {
            metric_data_results: results,
        },
    ))
}
