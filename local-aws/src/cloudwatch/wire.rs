//! CloudWatch's wire shapes as `aws-sdk-cloudwatch` (1.100 and later)
//! speaks them: Smithy RPC v2 CBOR, `POST
//! /service/GraniteServiceVersion20100801/operation/<Operation>`, members
//! by their PascalCase names, timestamps as CBOR tag 1 with epoch seconds,
//! doubles as CBOR floats, errors as a CBOR map with `__type` and `message`
//! plus the awsQuery code in `x-amzn-query-error` (see `docs/aws-cloudwatch.md`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Epoch seconds as a CBOR tag-1 value, as the SDK requires timestamps.
pub type Timestamp = ciborium::tag::Required<f64, 1>;

/// `t` as a [`Timestamp`].
pub fn timestamp(t: SystemTime) -> Timestamp {
    ciborium::tag::Required(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64())
}

/// `{Name, Value}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// `{Namespace, MetricName, Dimensions}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    /// The namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The name.
    #[serde(default)]
    pub metric_name: Option<String>,
    /// The dimensions.
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
}

/// `MetricStat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    /// The metric.
    pub metric: Metric,
    /// Its period, seconds.
    pub period: i32,
    /// `Sum`, `p99`, …
    pub stat: String,
    /// The unit, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// `MetricDataQuery`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataQuery {
    /// The id expressions name it by.
    pub id: String,
    /// A metric, or …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStat>,
    /// … an expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// A label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Whether its values are the result (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
    /// An expression's period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i32>,
}

/// `PutMetricAlarmInput` (the members this endpoint reads; others are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricAlarmInput {
    /// Required.
    #[serde(default)]
    pub alarm_name: Option<String>,
    /// Optional.
    #[serde(default)]
    pub alarm_description: Option<String>,
    /// Single-metric form.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Single-metric form.
    #[serde(default)]
    pub metric_name: Option<String>,
    /// Single-metric form.
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    /// Single-metric form: `Sum`, `Average`, …
    #[serde(default)]
    pub statistic: Option<String>,
    /// Single-metric form: `p99`, …
    #[serde(default)]
    pub extended_statistic: Option<String>,
    /// Single-metric form.
    #[serde(default)]
    pub period: Option<i32>,
    /// Metric-math form.
    #[serde(default)]
    pub metrics: Vec<MetricDataQuery>,
    /// Required.
    #[serde(default)]
    pub evaluation_periods: Option<i32>,
    /// Default: EvaluationPeriods.
    #[serde(default)]
    pub datapoints_to_alarm: Option<i32>,
    /// Required.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Required.
    #[serde(default)]
    pub comparison_operator: Option<String>,
    /// Default `missing`.
    #[serde(default)]
    pub treat_missing_data: Option<String>,
    /// `evaluate` (the default) or `ignore`; percentile alarms only.
    #[serde(default)]
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// Where ALARM notifications go (kept, not sent).
    #[serde(default)]
    pub alarm_actions: Vec<String>,
}

/// `DescribeAlarmsInput` (the members read).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsInput {
    /// Exactly these.
    #[serde(default)]
    pub alarm_names: Vec<String>,
    /// Names starting with this.
    #[serde(default)]
    pub alarm_name_prefix: Option<String>,
    /// Only alarms in this state.
    #[serde(default)]
    pub state_value: Option<String>,
    /// Which kinds of alarm (`MetricAlarm`, `CompositeAlarm`, `LogAlarm`);
    /// none: metric alarms only.
    #[serde(default)]
    pub alarm_types: Vec<String>,
    /// At most this many alarms per page (1 to 100; 50 when absent).
    #[serde(default)]
    pub max_records: Option<i64>,
    /// Where the previous page ended.
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `MetricAlarm` in `DescribeAlarmsOutput`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricAlarmOut {
    /// The name.
    pub alarm_name: String,
    /// Its ARN.
    pub alarm_arn: String,
    /// The description.
    pub alarm_description: String,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`.
    pub state_value: String,
    /// Why.
    pub state_reason: String,
    /// When it last changed.
    pub state_updated_timestamp: Timestamp,
    /// Single-metric form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Single-metric form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    /// Single-metric form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<Dimension>,
    /// Single-metric form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    /// Single-metric form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    /// Single-metric form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<i32>,
    /// Metric-math form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricDataQuery>,
    /// N.
    pub evaluation_periods: i32,
    /// M.
    pub datapoints_to_alarm: i32,
    /// The threshold.
    pub threshold: f64,
    /// The comparison.
    pub comparison_operator: String,
    /// The missing-data mode.
    pub treat_missing_data: String,
    /// As put, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluate_low_sample_count_percentile: Option<String>,
    /// The ALARM actions.
    pub alarm_actions: Vec<String>,
    /// Always true here.
    pub actions_enabled: bool,
}

/// `DescribeAlarmsOutput`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsOutput {
    /// The metric alarms.
    pub metric_alarms: Vec<MetricAlarmOut>,
    /// Where the next page starts, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `SetAlarmStateInput`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmStateInput {
    /// The alarm.
    #[serde(default)]
    pub alarm_name: Option<String>,
    /// The state to set.
    #[serde(default)]
    pub state_value: Option<String>,
    /// Why.
    #[serde(default)]
    pub state_reason: Option<String>,
}

/// `GetMetricDataInput`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataInput {
    /// The queries.
    #[serde(default)]
    pub metric_data_queries: Vec<MetricDataQuery>,
    /// Inclusive start.
    #[serde(default)]
    pub start_time: Option<Timestamp>,
    /// Exclusive end.
    #[serde(default)]
    pub end_time: Option<Timestamp>,
    /// `TimestampDescending` (default) or `TimestampAscending`.
    #[serde(default)]
    pub scan_by: Option<String>,
}

/// One `MetricDataResult`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataResult {
    /// The query's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Period starts.
    pub timestamps: Vec<Timestamp>,
    /// Values, one per timestamp.
    pub values: Vec<f64>,
    /// `Complete`.
    pub status_code: String,
}

/// `GetMetricDataOutput`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataOutput {
    /// One per query with `ReturnData`.
    pub metric_data_results: Vec<MetricDataResult>,
}

/// An empty output: `{}`, which the SDK needs even when it reads nothing.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Empty {}

/// A CBOR response with the protocol's headers.
pub fn cbor<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut bytes = Vec::new();
    if let Err(err) = ciborium::into_writer(body, &mut bytes) {
        return Refusal::server(&format!("encoding the response: {err}")).into_response();
    }
    (
        status,
        [("content-type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")],
        bytes,
    )
        .into_response()
}

/// A refused call, in CloudWatch's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400 for the caller's fault, 500 for ours.
    pub status: StatusCode,
    /// The awsQuery error code (`InvalidParameterValue`, `ResourceNotFound`).
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl Refusal {
    /// A caller's mistake, `code` naming its kind.
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// The endpoint's own failure.
    pub fn server(message: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServiceError",
            message: message.to_owned(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "__type")]
    kind: &'a str,
    message: &'a str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = cbor(
            self.status,
            &ErrorBody {
                kind: self.code,
                message: &self.message,
            },
        );
        let fault = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        if let Ok(value) = HeaderValue::from_str(&format!("{};{fault}", self.code)) {
            response.headers_mut().insert("x-amzn-query-error", value);
        }
        response
    }
}
