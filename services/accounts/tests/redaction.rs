//! No credential appears in any log line, whatever happens: neither a
//! valid token, nor a refused one, nor a machine client's secret.

use crate::common;

use shared::telemetry::{Capture, JsonLayer};
use tracing_subscriber::layer::SubscriberExt;

const CANARY: &str = "canary-7f3a9c-never-log-me";

#[tokio::test]
async fn credentials_never_reach_the_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(&accounts::SERVICE, capture.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let f = common::fixture().await;
    let id = f.account_with("EUR", 100).await;
    let debit = format!("/accounts/{id}/debits");
    f.call(
        "POST",
        &debit,
        Some(r#"{"amount_minor": 5000, "currency": "EUR", "reference": "too-much"}"#),
    )
    .await;
    f.call("POST", &debit, Some(r#"{"amount_minor": "#)).await;
    // Refused tokens: not a JWT, and a JWT-shaped one that does not verify.
    for refused in [CANARY.to_owned(), format!("{CANARY}.{CANARY}.{CANARY}")] {
        let wrong = common::Fixture {
            back_office_token: refused,
            ..f.clone()
        };
        let reply = wrong.call("GET", &format!("/accounts/{id}"), None).await;
        assert_eq!(reply.status, 401, "{}", reply.raw);
        assert!(
            !reply.raw.contains(CANARY),
            "the refusal echoes the token: {}",
            reply.raw
        );
    }
    let client = shared::secrets::Secret::new(shared::credentials::ClientCredentials {
        client_id: String::from("client"),
        client_secret: CANARY.to_owned(),
    });
    tracing::info!(secret = ?client, "the secret as a debug field");
    tracing::info!(secret = %client, "the secret as a display field");

    let lines = capture.lines();
    assert!(lines.len() >= 8, "expected request and test lines, got {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("[REDACTED]")),
        "the secret fields were logged redacted"
    );
    for line in &lines {
        assert!(!line.contains(CANARY), "canary leaked: {line}");
        assert!(!line.contains(&f.service_token), "a token leaked: {line}");
        assert!(!line.contains(&f.back_office_token), "a token leaked: {line}");
        assert!(!line.contains(&f.customer.access_token), "a token leaked: {line}");
    }
}
