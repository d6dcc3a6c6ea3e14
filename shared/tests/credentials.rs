//! A service's machine-client tokens (`shared::credentials::TokenSource`)
//! against token endpoints that answer as RFC 6749 §5 says: one fetch
//! however many callers ask at once, kept until shortly before expiry,
//! fetched again when forgotten, and every refusal explained without the
//! client's secret. (The real pool's endpoint, moto's, is what the services'
//! and hooks' tests use.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use shared::credentials::{ClientCredentials, TokenError, TokenSource};

const SECRET: &str = "client-secret-never-shown";

/// A token endpoint answering `answer` (status, body) and counting calls;
/// a non-empty `access_token` in the body gets the call's number appended.
async fn endpoint(status: StatusCode, answer: Value) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let router = axum::Router::new().route(
        "/oauth2/token",
        post(move |body: String| {
            let (counted, mut answer) = (counted.clone(), answer.clone());
            async move {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(body.contains("grant_type=client_credentials"), "{body}");
                if let Some(token) = answer
                    .get("access_token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    answer["access_token"] = json!(format!("{token}{n}"));
                }
                // A slow endpoint, so concurrent callers overlap.
                tokio::time::sleep(Duration::from_millis(50)).await;
                (status, axum::Json(answer))
            }
        }),
    );
    let (address, _) = local_aws::serve_router(router).await.unwrap();
    (format!("http://{address}/oauth2/token"), calls)
}

async fn source(url: &str) -> TokenSource {
    let secrets = aws_sdk_secretsmanager::Client::new(&local_aws::sdk_config_at("http://127.0.0.1:9").await);
    let client = shared::secrets::SecretStore::with_value(
        secrets,
        "unused",
        Duration::from_secs(3600),
        shared::secrets::Secret::new(ClientCredentials {
            client_id: String::from("payments"),
            client_secret: SECRET.to_owned(),
        }),
    );
    TokenSource::new(
        url,
        Arc::new(client),
        vec![String::from("accounts/service")],
        reqwest::Client::new(),
    )
}

#[tokio::test]
async fn one_fetch_for_many_callers_kept_until_forgotten_or_near_expiry() {
    let (url, calls) = endpoint(
        StatusCode::OK,
        json!({"access_token": "t", "token_type": "Bearer", "expires_in": 3600}),
    )
    .await;
    let tokens = Arc::new(source(&url).await);
    let asked: Vec<_> = (0..20)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token(Duration::from_secs(5)).await.unwrap() })
        })
        .collect();
    for handle in asked {
        assert_eq!(handle.await.unwrap().expose(), "t1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for twenty callers");
    let refused = tokens.token(Duration::from_secs(5)).await.unwrap();
    tokens.forget(&refused).await;
    let fresh = tokens.token(Duration::from_secs(5)).await.unwrap();
    assert_eq!(fresh.expose(), "t2");
    // A caller forgetting the token it was refused leaves a newer one alone.
    tokens.forget(&refused).await;
    assert_eq!(tokens.token(Duration::from_secs(5)).await.unwrap().expose(), "t2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // An endpoint promising a token forever is kept at most a day.
    let (url, _) = endpoint(
        StatusCode::OK,
        json!({"access_token": "forever", "token_type": "Bearer", "expires_in": u64::MAX}),
    )
    .await;
    assert_eq!(
        source(&url).await.token(Duration::from_secs(5)).await.unwrap().expose(),
        "forever1"
    );

    // A token that expires in a second is renewed after half of it.
    let (url, calls) = endpoint(
        StatusCode::OK,
        json!({"access_token": "short", "token_type": "bearer", "expires_in": 1}),
    )
    .await;
    let tokens = source(&url).await;
    assert_eq!(tokens.token(Duration::from_secs(5)).await.unwrap().expose(), "short1");
    assert_eq!(tokens.token(Duration::from_secs(5)).await.unwrap().expose(), "short1");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(tokens.token(Duration::from_secs(5)).await.unwrap().expose(), "short2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn every_refusal_says_why_without_the_secret() {
    let cases = [
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_client"}),
            "refused client payments (400, invalid_client)",
        ),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_scope", "error_description": "accounts/service is not allowed"}),
            "invalid_scope: accounts/service is not allowed",
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!("oops"),
            "(500, no OAuth error)",
        ),
        (
            StatusCode::OK,
            json!({"access_token": "t", "token_type": "mac"}),
            "a mac token, not a bearer token",
        ),
        (
            StatusCode::OK,
            json!({"token_type": "Bearer"}),
            "missing field `access_token`",
        ),
        (StatusCode::OK, json!({"access_token": ""}), "an empty access_token"),
    ];
    for (status, answer, expected) in cases {
        let (url, _) = endpoint(status, answer.clone()).await;
        let err = source(&url).await.token(Duration::from_secs(5)).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(expected),
            "{answer}: {message:?} should say {expected:?}"
        );
        assert!(!message.contains(SECRET), "{message}");
        assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
    }
    // The secret is never sent in clear beyond this machine.
    for insecure in ["http://example.com/oauth2/token", "ftp://127.0.0.1/token", "not a url"] {
        assert!(
            matches!(
                source(insecure).await.token(Duration::from_secs(5)).await,
                Err(TokenError::Insecure { .. })
            ),
            "{insecure}"
        );
    }
    let unreachable = source("http://127.0.0.1:9/oauth2/token").await;
    assert!(matches!(
        unreachable.token(Duration::from_secs(5)).await,
        Err(TokenError::Unreachable { .. })
    ));
    assert!(matches!(
        unreachable.token(Duration::ZERO).await,
        Err(TokenError::NoTime { .. })
    ));
}
