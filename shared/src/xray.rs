//! AWS X-Ray: `tracing` spans become subsegments of the Lambda facade
//! segment, sent as segment documents over UDP to the daemon Lambda runs
//! (`AWS_XRAY_DAEMON_ADDRESS`).
//!
//! Built on OpenTelemetry: `tracing-opentelemetry` turns spans into OTel
//! spans, `opentelemetry-aws` translates them into X-Ray documents and sends
//! each one datagram per span, from the thread that closes the span, through
//! a non-blocking socket — no network round trip on the response path and
//! nothing left to flush when the invocation returns. Without a daemon
//! address (local runs) no layer is installed and every function here does
//! nothing; without the `xray` cargo feature none of it is compiled.
//!
//! What becomes what:
//! - the parent is the facade segment named by the invocation's trace header
//!   ([`adopt`], from `Context::xray_trace_id`, never `_X_AMZN_TRACE_ID`, so
//!   it holds in lambda_runtime's concurrent mode);
//! - span fields in the trace namespaces ([`is_trace_field`]: `otel.*`,
//!   `annotation.*`, `http.*`, `url.*`, `rpc.*`, `aws.*`, `peer.*`) go to X-Ray only,
//!   never into log lines; `annotation.<key>` fields become X-Ray annotations;
//! - `otel.status_code = "error"` with `http.response.status_code` marks a
//!   subsegment error (4xx), throttle (429) or fault (5xx); an `error!` event
//!   with an `error` field inside it becomes the cause;
//! - every AWS SDK call is a subsegment in namespace `aws` ([`SdkTracing`])
//!   and carries its own id downstream in `X-Amzn-Trace-Id`; outgoing HTTP
//!   calls do the same with [`header`].

use tracing::Span;

/// The header that carries trace context between services.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// The target of the events that carry a failure's cause to the trace only ([`cause`]).
pub const CAUSE_TARGET: &str = "shared::xray::cause";

/// Whether spans are exported (a daemon address was given and the `xray`
/// feature is on): without that, nothing here does any work.
pub fn active() -> bool {
    #[cfg(feature = "xray")]
    return enabled::active();
    #[cfg(not(feature = "xray"))]
    false
}

/// Crates whose spans and events stay out of the trace: the runtime's own
/// per-invocation span has no parent, the SDK's and HTTP stack's internals
/// are covered by [`SdkTracing`]'s one subsegment per call, and the exporter
/// must not trace itself.
const UNTRACED: &[&str] = &[
    "opentelemetry",
    "lambda_runtime",
    "lambda_http",
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "hyper",
    "h2",
    "reqwest",
    "tower",
    "rustls",
];

/// Whether a span field belongs to the trace only (kept out of log lines).
pub fn is_trace_field(name: &str) -> bool {
    ["otel.", "annotation.", "http.", "url.", "rpc.", "aws.", "peer."]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The UDP address in `AWS_XRAY_DAEMON_ADDRESS`: `host:port`, or the
/// `tcp:host:port udp:host:port` form; `None` when unset or unparsable.
pub fn daemon_address(value: Option<&str>) -> Option<std::net::SocketAddr> {
    let value = value?.trim();
    let udp = value
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(value);
    udp.parse().ok()
}

#[cfg(feature = "xray")]
mod enabled {
    use std::sync::OnceLock;

    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::{
        BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef,
    };
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry::{Array, StringValue, Value};
    use opentelemetry_aws::trace::XrayIdGenerator;
    use opentelemetry_aws::trace::xray_propagator::{span_context_from_str, span_context_to_string};
    use opentelemetry_aws::xray_exporter::XrayExporter;
    use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    use tracing::Span;
    use tracing::field::Empty;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::registry::LookupSpan;

    use super::{TRACE_HEADER, UNTRACED};

    /// Kept for the life of the process: dropping the provider stops exporting.
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// Whether a layer exports: without one, nothing here does any work.
    pub fn active() -> bool {
        PROVIDER.get().is_some()
    }

    /// The exporting layer, or `None` without a usable daemon address.
    pub fn layer<S>(daemon: Option<&str>) -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let address = super::daemon_address(daemon)?;
        let client = XrayDaemonClient::new(address)
            .inspect_err(|err| eprintln!("x-ray: cannot open a socket to the daemon at {address}: {err}"))
            .ok()?;
        let provider = PROVIDER.get_or_init(|| {
            SdkTracerProvider::builder()
                .with_id_generator(XrayIdGenerator::default())
                // Only subsegments of a segment Lambda (or a traced caller)
                // started, and only when that one is sampled: a span with no
                // parent (an SDK call at init) is never recorded or sent.
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
                .with_simple_exporter(XrayExporter::new(client))
                .build()
        });
        // Its own filter, apart from the log level: `AWS_LAMBDA_LOG_LEVEL=warn`
        // quiets the log, not the trace.
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("shared"))
            .with_threads(false)
            .with_location(false)
            .with_filter(filter_fn(|meta| {
                let target = meta.target();
                *meta.level() <= tracing::Level::INFO
                    && !UNTRACED.iter().any(|crate_name| target.starts_with(crate_name))
            }));
        Some(Box::new(layer))
    }

    pub fn adopt(span: &Span, trace_header: Option<&str>) {
        if !active() {
            return;
        }
        if let Some(context) = trace_header.and_then(parent_of) {
            // Fails only when no layer is installed or the span already started: nothing to trace then.
            let _ = span.set_parent(context);
        }
    }

    fn parent_of(header: &str) -> Option<opentelemetry::Context> {
        let remote = span_context_from_str(header)?;
        Some(opentelemetry::Context::new().with_remote_span_context(remote))
    }

    pub fn header(span: &Span) -> Option<String> {
        if !active() {
            return None;
        }
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context
            .is_valid()
            .then(|| span_context_to_string(&span_context))
            .flatten()
    }

    /// The subsegment of one SDK operation, kept in the operation's config bag.
    #[derive(Debug)]
    struct Subsegment(Span);

    impl Storable for Subsegment {
        type Storer = StoreReplace<Self>;
    }

    impl Intercept for super::SdkTracing {
        fn name(&self) -> &'static str {
            "XRaySubsegments"
        }

        // Not `read_before_execution`: client-level interceptors see that
        // before the operation's configuration (its `Metadata`) is applied.
        fn read_before_serialization(
            &self,
            _context: &BeforeSerializationInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            if !active() {
                return Ok(());
            }
            let (service, operation) = cfg
                .load::<Metadata>()
                .map_or(("aws", "unknown"), |m| (m.service(), m.name()));
            let span = tracing::info_span!(
                target: "shared::xray",
                "aws",
                otel.name = service,
                otel.kind = "client",
                otel.status_code = Empty,
                rpc.system = "aws-api",
                rpc.service = service,
                rpc.method = operation,
                aws.service = service,
                aws.operation = operation,
                aws.region = Empty,
                aws.request_id = Empty,
                annotation.function_name = Empty,
                http.response.status_code = Empty,
            );
            if let Some(region) = cfg.load::<aws_config::Region>() {
                span.record("aws.region", region.as_ref());
            }
            cfg.interceptor_state().store_put(Subsegment(span));
            Ok(())
        }

        fn modify_before_signing(
            &self,
            context: &mut BeforeTransmitInterceptorContextMut<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(Subsegment(span)) = cfg.load::<Subsegment>() else {
                return Ok(());
            };
            let request = context.request_mut();
            let tables = request.body().bytes().map(super::dynamodb_tables).unwrap_or_default();
            if !tables.is_empty() {
                let names: Vec<StringValue> = tables.into_iter().map(StringValue::from).collect();
                span.set_attribute("aws.dynamodb.table_names", Value::Array(Array::String(names)));
            }
            if let Some(function) = super::lambda_function(request.uri()) {
                span.record("annotation.function_name", function);
            }
            if let Some(value) = header(span) {
                request.headers_mut().insert(TRACE_HEADER, value);
            }
            Ok(())
        }

        fn read_after_execution(
            &self,
            context: &FinalizerInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(Subsegment(span)) = cfg.load::<Subsegment>() else {
                return Ok(());
            };
            if let Some(response) = context.response() {
                span.record("http.response.status_code", response.status().as_u16());
                // awsJson and REST-JSON services answer `x-amzn-RequestId`, S3 `x-amz-request-id`.
                if let Some(id) = ["x-amzn-requestid", "x-amz-request-id"]
                    .into_iter()
                    .find_map(|name| response.headers().get(name))
                {
                    span.record("aws.request_id", id);
                }
            }
            // The trace only: whoever made the call decides whether its
            // failure is worth a log line (a refused conditional write is not).
            if let Some(Err(err)) = context.output_or_error() {
                super::cause(span, err);
            }
            // Replacing the stored span drops it, which ends (and sends) the subsegment.
            cfg.interceptor_state().store_put(Subsegment(Span::none()));
            Ok(())
        }
    }
}

/// Records every AWS SDK operation as an X-Ray subsegment (namespace `aws`:
/// service, operation, region, request id, DynamoDB table names, status,
/// error; a Lambda
/// Invoke's function name as the `function_name` annotation, which
/// opentelemetry-aws has no `aws` field for) and sends its id downstream in `X-Amzn-Trace-Id`. Every
/// client made by [`crate::aws`] has it; add it to others with
/// `config::Builder::interceptor`. Without the `xray` feature it does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SdkTracing;

#[cfg(not(feature = "xray"))]
impl aws_smithy_runtime_api::client::interceptors::Intercept for SdkTracing {
    fn name(&self) -> &'static str {
        "XRaySubsegments"
    }
}

/// Installs nothing when the feature is off.
#[cfg(not(feature = "xray"))]
pub fn layer<S>(_daemon: Option<&str>) -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber,
{
    None
}

/// The exporting `tracing` layer for the daemon at `daemon` (the value of
/// `AWS_XRAY_DAEMON_ADDRESS`), or `None` without a usable address.
#[cfg(feature = "xray")]
pub fn layer<S>(daemon: Option<&str>) -> Option<Box<dyn tracing_subscriber::Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    enabled::layer(daemon)
}

/// Makes `span` (not yet entered) a child of the segment the trace header
/// names (`Root=…;Parent=…;Sampled=…`): the Lambda facade, or the caller's
/// subsegment for a request that came over HTTP.
pub fn adopt(span: &Span, trace_header: Option<&str>) {
    #[cfg(feature = "xray")]
    enabled::adopt(span, trace_header);
    #[cfg(not(feature = "xray"))]
    let _ = (span, trace_header);
}

/// The `X-Amzn-Trace-Id` value naming `span` as parent, for an outgoing call
/// made inside it; `None` when nothing is traced.
pub fn header(span: &Span) -> Option<String> {
    #[cfg(feature = "xray")]
    return enabled::header(span);
    #[cfg(not(feature = "xray"))]
    {
        let _ = span;
        None
    }
}

/// A span for an outgoing HTTP call to `peer`, a subsegment in namespace
/// `remote`; send [`header`] of it with the request and record
/// `http.response.status_code` (and `otel.status_code = "error"` on failure)
/// on it. Create it inside the span the call belongs to.
pub fn outgoing(peer: &str, method: &str, url: &str) -> Span {
    if !active() {
        return Span::none();
    }
    tracing::info_span!(
        target: "shared::xray",
        "outgoing",
        otel.name = peer,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        peer.service = peer,
        http.request.method = method,
        url.full = url,
        http.response.status_code = tracing::field::Empty,
    )
}

/// Marks `span` as failed in the trace with `cause` as its cause (an X-Ray
/// error with a 4xx status recorded on the span, a fault otherwise), writing
/// nothing to the log: the event carrying the cause has target
/// [`CAUSE_TARGET`], which [`crate::telemetry::JsonLayer`] leaves out.
pub fn cause(span: &Span, cause: &dyn std::fmt::Display) {
    if !active() {
        return;
    }
    span.record("otel.status_code", "error");
    // No message: tracing-opentelemetry turns only unnamed events with an
    // `error` field into the `exception` event X-Ray reads the cause from.
    tracing::error!(target: CAUSE_TARGET, parent: span, error = %cause);
}

/// Marks the call `span` stands for as failed with `cause` ([`cause`]), and
/// logs a warning with `cause` as its `error` field. The warning belongs to
/// the current span (the invocation's ids), not to `span`, which is
/// `Span::none()` when nothing is traced.
pub fn fail(span: &Span, cause: &dyn std::fmt::Display) {
    self::cause(span, cause);
    tracing::warn!(error = %cause, "call failed");
}

/// The DynamoDB tables a JSON request body names (`TableName`, and every
/// `TableName` inside `TransactItems`), in order, without repeats.
pub fn dynamodb_tables(body: &[u8]) -> Vec<String> {
    fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(name) if key == "TableName" => {
                            if !out.contains(name) {
                                out.push(name.clone());
                            }
                        }
                        other => collect(other, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        collect(&value, &mut out);
    }
    out
}

/// The function a Lambda Invoke URI names (`/2015-03-31/functions/{name}/invocations`).
pub fn lambda_function(uri: &str) -> Option<&str> {
    let path = uri.split('?').next()?;
    let rest = path.split("/functions/").nth(1)?;
    let name = rest.strip_suffix("/invocations")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::{daemon_address, dynamodb_tables, is_trace_field, lambda_function};

    #[test]
    fn the_daemon_address_takes_both_forms() {
        assert_eq!(
            daemon_address(Some("169.254.79.129:2000")),
            "169.254.79.129:2000".parse().ok()
        );
        assert_eq!(
            daemon_address(Some("tcp:127.0.0.1:2000 udp:127.0.0.1:2001")),
            "127.0.0.1:2001".parse().ok()
        );
        assert_eq!(daemon_address(None), None);
        assert_eq!(daemon_address(Some("not an address")), None);
    }

    #[test]
    fn table_names_come_from_plain_and_transactional_requests() {
        assert_eq!(dynamodb_tables(br#"{"TableName":"a","Key":{}}"#), ["a"]);
        let transact = br#"{"TransactItems":[{"Put":{"TableName":"a"}},{"Update":{"TableName":"b"}},{"ConditionCheck":{"TableName":"a"}}]}"#;
        assert_eq!(dynamodb_tables(transact), ["a", "b"]);
        assert!(dynamodb_tables(b"not json").is_empty());
    }

    #[test]
    fn lambda_function_names_come_from_the_invoke_path() {
        assert_eq!(
            lambda_function("/2015-03-31/functions/accounts/invocations?Qualifier=7"),
            Some("accounts")
        );
        assert_eq!(
            lambda_function("https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/payments/invocations"),
            Some("payments")
        );
        assert_eq!(lambda_function("/"), None);
    }

    #[test]
    fn trace_fields_stay_out_of_logs() {
        assert!(is_trace_field("otel.name") && is_trace_field("annotation.route") && is_trace_field("aws.operation"));
        assert!(!is_trace_field("function_request_id") && !is_trace_field("cold_start"));
    }
}
