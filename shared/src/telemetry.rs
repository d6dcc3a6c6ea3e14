//! Structured logs in AWS Lambda Powertools' shape: one JSON object per line.
//!
//! Keys match Powertools so dashboards and queries carry over: `level`,
//! `location`, `message`, `timestamp`, `service`, `cold_start`,
//! `function_name`, `function_memory_size`, `function_arn`,
//! `function_request_id`, `correlation_id`, `xray_trace_id`, then every other
//! field of the event and of the spans it is in. The per-invocation keys come
//! from the `invocation` span that [`crate::http`] opens from the Lambda
//! context of each request, never from process-wide variables, so they stay
//! right when one process serves many invocations at once.
//!
//! The level is read from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, else `INFO`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::{ServiceInfo, env};

/// Where finished lines go: stdout in production, memory in tests.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one complete line (without its newline).
    fn write_line(&self, line: &str);
}

/// Writes lines to stdout, each whole, so concurrent invocations never interleave.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stdout;

impl LineSink for Stdout {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nowhere to report to; dropping the line is all we can do.
        let _ = out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
    }
}

/// Keeps lines in memory, for tests that assert on what was logged.
#[derive(Debug, Default, Clone)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("capture lock").clone()
    }

    /// Every line parsed as JSON.
    pub fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    }
}

impl LineSink for Capture {
    fn write_line(&self, line: &str) {
        self.0.lock().expect("capture lock").push(line.to_owned());
    }
}

/// Installs the JSON logger on stdout, and X-Ray export when Lambda gives a
/// daemon address ([`crate::xray`]), as the global subscriber. Call once,
/// first thing in `main`.
pub fn init(service: &ServiceInfo) {
    let subscriber = tracing_subscriber::registry()
        .with(JsonLayer::new(service, Stdout).with_filter(filter_from_env()))
        .with(crate::xray::layer(env::var(env::AWS_XRAY_DAEMON_ADDRESS).as_deref()));
    // A second call (tests that share a process) keeps the first subscriber.
    let _ = subscriber.try_init();
}

/// The level filter: `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging
/// controls, `FATAL` read as `error`), else `RUST_LOG` directives, else `info`.
pub fn filter_from_env() -> EnvFilter {
    let directives = match env::var(env::AWS_LAMBDA_LOG_LEVEL) {
        Some(level) if level.eq_ignore_ascii_case("fatal") => String::from("error"),
        Some(level) => level.to_lowercase(),
        None => env::var(env::RUST_LOG).unwrap_or_else(|| String::from("info")),
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Keys that Powertools places first, in its order.
const ORDERED_KEYS: &[&str] = &[
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "correlation_id",
    "xray_trace_id",
];

/// A `tracing` layer that writes one Powertools-shaped JSON line per event.
pub struct JsonLayer<S> {
    service: String,
    function_name: Option<String>,
    function_memory_size: Option<Value>,
    sink: S,
}

impl<S: LineSink> JsonLayer<S> {
    /// A layer for `service`, reading the function's name and memory size from Lambda's variables.
    pub fn new(service: &ServiceInfo, sink: S) -> Self {
        Self {
            service: service.name.to_owned(),
            function_name: env::var(env::AWS_LAMBDA_FUNCTION_NAME),
            function_memory_size: env::var(env::AWS_LAMBDA_FUNCTION_MEMORY_SIZE)
                .map(|m| m.parse::<u64>().map(Value::from).unwrap_or(Value::String(m))),
            sink,
        }
    }
}

/// Fields recorded on a span, stored in its extensions.
struct SpanFields(Map<String, Value>);

/// Collects `tracing` fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    /// Keeps a field, unless it is for the trace only ([`crate::xray::is_trace_field`]).
    fn insert(&mut self, field: &Field, value: Value) {
        if !crate::xray::is_trace_field(field.name()) {
            self.0.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.insert(field, Value::String(value.to_string()));
    }
}

impl<Sub, S> Layer<Sub> for JsonLayer<S>
where
    Sub: Subscriber + for<'a> LookupSpan<'a>,
    S: LineSink,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, Sub>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, Sub>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, Sub>) {
        let meta = event.metadata();
        if meta.target() == crate::xray::CAUSE_TARGET {
            return;
        }
        let mut fields = Map::new();
        fields.insert("level".into(), Value::String(meta.level().to_string()));
        let location = match meta.line() {
            Some(line) => format!("{}:{line}", meta.target()),
            None => meta.target().to_owned(),
        };
        fields.insert("location".into(), Value::String(location));
        fields.insert("timestamp".into(), Value::String(timestamp()));
        fields.insert("service".into(), Value::String(self.service.clone()));
        if let Some(name) = &self.function_name {
            fields.insert("function_name".into(), Value::String(name.clone()));
        }
        if let Some(memory) = &self.function_memory_size {
            fields.insert("function_memory_size".into(), memory.clone());
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                    fields.extend(span_fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));
        self.sink.write_line(&ordered_json(fields));
    }
}

/// Serializes with Powertools' keys first, in its order, then the rest by name.
fn ordered_json(mut fields: Map<String, Value>) -> String {
    let mut out = String::with_capacity(512);
    out.push('{');
    let first = ORDERED_KEYS
        .iter()
        .filter_map(|k| fields.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect::<Vec<_>>();
    for (i, (key, value)) in first.into_iter().chain(fields).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

/// Now, as ISO 8601 UTC with milliseconds (`2026-11-26T22:10:05.123Z`).
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture() -> (Capture, impl Subscriber + Send + Sync) {
        let capture = Capture::default();
        let info = ServiceInfo::new("accounts", "1.0.0");
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(&info, capture.clone()));
        (capture, subscriber)
    }

    #[test]
    fn one_line_per_event_with_powertools_keys_in_order() {
        let (capture, subscriber) = capture();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "invocation",
                function_request_id = "req-1",
                xray_trace_id = "Root=1-abc",
                cold_start = true,
                correlation_id = tracing::field::Empty
            );
            let _guard = span.enter();
            span.record("correlation_id", "corr-1");
            tracing::info!(account = "a-1", "debited");
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        let order: Vec<usize> = [
            "\"level\"",
            "\"message\"",
            "\"timestamp\"",
            "\"service\"",
            "\"cold_start\"",
            "\"function_request_id\"",
            "\"correlation_id\"",
            "\"xray_trace_id\"",
            "\"account\"",
        ]
        .iter()
        .map(|k| line.find(k).unwrap_or_else(|| panic!("{k} missing in {line}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "keys out of order: {line}");
        let json: Value = serde_json::from_str(line).unwrap();
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["message"], "debited");
        assert_eq!(json["service"], "accounts");
        assert_eq!(json["cold_start"], true);
        assert_eq!(json["function_request_id"], "req-1");
        assert_eq!(json["correlation_id"], "corr-1");
        assert_eq!(json["xray_trace_id"], "Root=1-abc");
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn events_outside_an_invocation_have_no_invocation_keys() {
        let (capture, subscriber) = capture();
        tracing::subscriber::with_default(subscriber, || tracing::warn!("init"));
        let json = capture.json();
        assert_eq!(json[0]["level"], "WARN");
        assert!(json[0].get("function_request_id").is_none());
    }

    #[test]
    fn strings_are_escaped() {
        let (capture, subscriber) = capture();
        tracing::subscriber::with_default(subscriber, || tracing::info!(note = "a \"quoted\"\nline", "x"));
        assert_eq!(capture.json()[0]["note"], "a \"quoted\"\nline");
    }
}
