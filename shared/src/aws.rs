//! Building SDK clients and classifying their errors.

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The roots AWS endpoints chain to: Amazon Root CA 1–4 and Starfield
/// Services Root CA G2 (Amazon Trust Services), as PEM.
pub const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// Loads the SDK configuration once for all clients.
///
/// Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_SSM`, …), so the same binary talks to AWS or to a local
/// stand-in without a code path of its own.
///
/// TLS trusts only Amazon Trust Services' roots, compiled in, instead of the
/// operating system's store: every AWS endpoint chains to them, and reading
/// and parsing the system store was the largest part of init measured in
/// `cargo xtask bench cold-start` (docs/benchmarks.md).
///
/// Two more things the default loader does at init are skipped because they
/// only cost time (measured with `cargo xtask bench cold-start`):
/// - building a throw-away TLS connector for every client created
///   ([`LazyConnector`]): the one connector is built on the first request and
///   shared by every client;
/// - building the whole default credentials chain (with its own STS client
///   for web identity) when the credentials are in the environment, as they
///   always are on Lambda: the chain would pick them first anyway.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => {
            let client = LazyConnector(builder.tls_context(context).build_https());
            loader = loader.http_client(SharedHttpClient::new(client));
        }
        Err(err) => tracing::warn!(error = %err, "compiled-in TLS roots rejected; using the system store"),
    }
    if crate::env::var(crate::env::AWS_ACCESS_KEY_ID).is_some()
        && crate::env::var(crate::env::AWS_SECRET_ACCESS_KEY).is_some()
    {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
}

/// The SDK's HTTPS client without its eager connector build.
///
/// The SDK's client builds a complete TLS connector (crypto provider, root
/// store parsed from PEM) in `validate_base_client_config`, once per SDK
/// client constructed, and drops it: it is there to load the operating
/// system's roots at init. With compiled-in roots there is nothing to load
/// early, so this wrapper forwards everything else and leaves validation to
/// the trait's default; the connector is built once, on the first request,
/// and cached by the inner client per timeout settings as before.
#[derive(Debug)]
pub struct LazyConnector(pub SharedHttpClient);

impl HttpClient for LazyConnector {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Error codes AWS services use for throttling and internal faults.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalServiceError",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// A client of `$service` from `sdk` with [`crate::xray::SdkTracing`]: every
/// call an X-Ray subsegment. Use this (or add the interceptor) for every client.
macro_rules! traced_client {
    ($(#[$doc:meta])* $name:ident, $service:ident) => {
        $(#[$doc])*
        pub fn $name(sdk: &aws_config::SdkConfig) -> $service::Client {
            let config = $service::config::Builder::from(sdk)
                .interceptor(crate::xray::SdkTracing)
                .build();
            $service::Client::from_conf(config)
        }
    };
}

traced_client!(
    /// A DynamoDB client whose calls are X-Ray subsegments.
    dynamodb,
    aws_sdk_dynamodb
);
traced_client!(
    /// An SSM client whose calls are X-Ray subsegments.
    ssm,
    aws_sdk_ssm
);
traced_client!(
    /// A Secrets Manager client whose calls are X-Ray subsegments.
    secrets_manager,
    aws_sdk_secretsmanager
);

/// Whether an SDK error is worth waiting out: timeouts, connection failures,
/// unparseable responses, throttling and 5xx. Not-found, access denied and
/// validation errors are not.
pub fn is_transient<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool
where
    R: HasStatus,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            service.raw().status_code() >= 500
                || service.err().code().is_some_and(|code| TRANSIENT_CODES.contains(&code))
        }
        _ => false,
    }
}

/// The HTTP status of a raw response, so [`is_transient`] works for any client.
pub trait HasStatus {
    /// The response's status code.
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}
