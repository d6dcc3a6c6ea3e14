//! Building SDK clients and classifying their errors.

use aws_smithy_runtime_api::client::result::SdkError;
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
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let loader = match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => loader.http_client(builder.tls_context(context).build_https()),
        Err(err) => {
            tracing::warn!(error = %err, "compiled-in TLS roots rejected; using the system store");
            loader
        }
    };
    loader.load().await
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
