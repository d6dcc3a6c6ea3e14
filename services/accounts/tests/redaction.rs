//! A canary secret value never appears in any log line, whatever happens.

mod common;

use shared::telemetry::{Capture, JsonLayer};
use tracing_subscriber::layer::SubscriberExt;

const CANARY: &str = "canary-7f3a9c-never-log-me";

#[tokio::test]
async fn the_service_key_never_reaches_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(&accounts::SERVICE, capture.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = common::fixture_with_key(CANARY).await;
    let id = f.account_with("EUR", 100).await;
    let debit = format!("/accounts/{id}/debits");
    f.call(
        "POST",
        &debit,
        Some(r#"{"amount_minor": 5000, "currency": "EUR", "reference": "too-much"}"#),
    )
    .await;
    f.call("POST", &debit, Some(r#"{"amount_minor": "#)).await;
    let wrong = common::Fixture {
        key: format!("{CANARY}-wrong"),
        ..f.clone()
    };
    wrong.call("GET", &format!("/accounts/{id}"), None).await;
    let key = f.state.api_key.get().await.unwrap();
    tracing::info!(secret = ?key, "the secret as a debug field");
    tracing::info!(secret = %key, "the secret as a display field");
    tracing::warn!(state_secret = ?f.state.api_key.get().await, "a result holding the secret");

    let lines = capture.lines();
    assert!(lines.len() >= 8, "expected request and test lines, got {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("[REDACTED]")),
        "the secret fields were logged redacted"
    );
    for line in &lines {
        assert!(!line.contains(CANARY), "canary leaked: {line}");
    }
}
