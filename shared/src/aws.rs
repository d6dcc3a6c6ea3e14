//! Building SDK clients and classifying their errors.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Loads the SDK configuration once for all clients.
///
/// Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT_URL_SSM`, …), so the same binary talks to AWS or to a local
/// stand-in without a code path of its own.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
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
