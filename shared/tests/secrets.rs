//! Secrets against a real Secrets Manager API (moto) for caching and
//! rotation, and against `aws-smithy-mocks` for the faults moto cannot make.

use std::time::Duration;

use aws_sdk_secretsmanager::operation::get_secret_value::{GetSecretValueError, GetSecretValueOutput};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use shared::secrets::{SecretError, SecretStore};

#[derive(Debug, serde::Deserialize)]
struct ApiKey {
    api_key: String,
}

#[tokio::test]
async fn caches_for_the_ttl_then_sees_a_rotation() {
    let sdk = local_aws::test_sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let id = local_aws::unique("secret");
    local_aws::seed::put_secret(&client, &id, r#"{"api_key":"first"}"#)
        .await
        .unwrap();
    let store = SecretStore::<ApiKey>::new(client.clone(), &id, Duration::from_millis(300));
    assert_eq!(store.get().await.unwrap().expose().api_key, "first");
    local_aws::seed::put_secret(&client, &id, r#"{"api_key":"second"}"#)
        .await
        .unwrap();
    assert_eq!(
        store.get().await.unwrap().expose().api_key,
        "first",
        "cached within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.get().await.unwrap().expose().api_key,
        "second",
        "refetched after the TTL"
    );
}

#[tokio::test]
async fn a_missing_secret_is_not_transient() {
    let sdk = local_aws::test_sdk_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let err = shared::secrets::fetch::<ApiKey>(&client, &local_aws::unique("absent"))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Fetch { transient: false, .. }), "{err}");
}

fn value(key: &str) -> GetSecretValueOutput {
    GetSecretValueOutput::builder()
        .secret_string(format!(r#"{{"api_key":"{key}"}}"#))
        .build()
}

fn server_error() -> aws_smithy_runtime_api::http::Response {
    aws_smithy_runtime_api::http::Response::new(
        StatusCode::try_from(500).unwrap(),
        SdkBody::from(r#"{"__type":"InternalServiceError","message":"boom"}"#),
    )
}

#[tokio::test]
async fn serves_the_stale_value_on_a_transient_error_only() {
    let first = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| value("cached"));
    let throttled = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_http_response(server_error);
    let gone = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(|| {
        GetSecretValueError::ResourceNotFoundException(
            aws_sdk_secretsmanager::types::error::ResourceNotFoundException::builder()
                .message("deleted")
                .build(),
        )
    });
    let client = mock_client!(
        aws_sdk_secretsmanager,
        RuleMode::Sequential,
        [&first, &throttled, &gone],
        |c| c.retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
    );
    let store = SecretStore::<ApiKey>::new(client, "svc", Duration::ZERO);
    assert_eq!(store.get().await.unwrap().expose().api_key, "cached");
    assert_eq!(
        store.get().await.unwrap().expose().api_key,
        "cached",
        "5xx: stale value served"
    );
    let err = store.get().await.unwrap_err();
    assert!(
        matches!(err, SecretError::Fetch { transient: false, .. }),
        "not found is not served stale: {err}"
    );
    assert_eq!(first.num_calls() + throttled.num_calls() + gone.num_calls(), 3);
}

#[tokio::test]
async fn a_transient_error_with_nothing_cached_is_an_error() {
    let throttled = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_http_response(server_error);
    let client = mock_client!(aws_sdk_secretsmanager, RuleMode::Sequential, [&throttled], |c| c
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled()));
    let store = SecretStore::<ApiKey>::new(client, "svc", Duration::from_secs(60));
    let err = store.get().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

/// Found in review of issue 18: a refresh that stalls is a transient
/// failure once it outlasts the caller's limit, so the cached value is
/// served in time (and the error, with nothing cached, names the secret).
#[tokio::test]
async fn a_stalled_refresh_serves_the_cached_value_within_the_limit() {
    use local_aws::faults::{Fault, FaultProxy, Rule};
    let proxy = FaultProxy::start(&local_aws::test_endpoint()).await.unwrap();
    proxy
        .set(vec![Rule::always(Fault::Stall(Duration::from_secs(60)))])
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&local_aws::sdk_config_at(proxy.url()).await);
    let cached = shared::secrets::Secret::new(ApiKey {
        api_key: String::from("cached"),
    });
    let store = SecretStore::with_value(client.clone(), "svc-stalled", Duration::ZERO, cached);
    let started = std::time::Instant::now();
    let got = store.get_within(Duration::from_millis(300)).await.unwrap();
    assert_eq!(got.expose().api_key, "cached");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let empty = SecretStore::<ApiKey>::new(client, "svc-stalled", Duration::ZERO);
    let err = empty
        .get_within(Duration::from_millis(300))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("svc-stalled") && err.contains("no answer from Secrets Manager"),
        "{err}"
    );
}
