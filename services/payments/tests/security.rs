//! Every route of payments with every bad credential (see accounts'
//! `tests/security.rs` for the list), and a customer paying out of another
//! customer's account: refused, and nothing written — no posting in the
//! ledger, no payment in the store, nothing kept against the key.

use crate::common;

use std::sync::Arc;

use local_aws::oidc::{Issuer, Key, claims, machine_claims, sign, token};
use serde_json::json;
use shared::auth::Access;
use tower::ServiceExt;

#[tokio::test]
async fn every_route_refuses_every_bad_credential_and_a_stranger_moves_nothing() {
    let s = common::stack().await;
    let issuer = Issuer::start().await.unwrap();
    let verifier = Arc::new(shared::auth::Verifier::load(issuer.settings(), reqwest::Client::new()).await);
    let mut state = s.payments_state.clone();
    state.verifier = verifier.clone();
    let app = payments::app(state.clone());
    let policy = payments::http::routes(state, shared::auth::Gate::new(verifier, &payments::SERVICE))
        .policy()
        .to_vec();
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    let victim = s.customer.subject.clone();
    // The victim's own payment, for the read.
    let mine = s.pay(Some("mine"), &common::body(&payer, &payee, 100)).await;
    assert_eq!(mine.status, 201, "{}", mine.raw);
    let payment = common::payment_id(&mine);

    let pay = json!({"from_account": payer, "to_account": payee, "amount_minor": 500, "currency": "EUR", "reference": "steal"})
        .to_string();
    let calls = [
        ("/payments", "POST", String::from("/payments"), Some(pay.clone())),
        ("/payments/{id}", "GET", format!("/payments/{payment}"), None),
    ];
    let mut declared: Vec<&str> = policy.iter().map(|p| p.path).collect();
    declared.sort_unstable();
    assert_eq!(
        declared,
        ["/payments", "/payments/{id}"],
        "every route has a policy and is tried here"
    );

    let scopes = ["payments/read", "payments/write", "accounts/read", "accounts/write"];
    let mut expired = claims(&victim, &scopes);
    expired["exp"] = json!(local_aws::oidc::now() - 300);
    let mut other_audience = claims(&victim, &scopes);
    other_audience["client_id"] = json!("someone-elses-app");
    let mut other_issuer = claims(&victim, &scopes);
    other_issuer["iss"] = json!("https://evil.example/pool");
    let bad = [
        ("no credential", None),
        ("garbage", Some(String::from("garbage"))),
        (
            "a stranger's key",
            Some(sign(Key::Stranger, "signing", &claims(&victim, &scopes))),
        ),
        ("expired", Some(sign(Key::Signing, "signing", &expired))),
        ("another audience", Some(sign(Key::Signing, "signing", &other_audience))),
        ("another issuer", Some(sign(Key::Signing, "signing", &other_issuer))),
    ];
    let send = |method: &str, path: &str, body: Option<&String>, credential: Option<&str>, key: &str| {
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("idempotency-key", key);
        if let Some(credential) = credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        let request = request
            .body(axum::body::Body::from(body.cloned().unwrap_or_default()))
            .unwrap();
        let app = app.clone();
        async move { common::read(app.oneshot(request).await.unwrap()).await }
    };
    for route in &policy {
        assert!(matches!(route.access, Access::Scope(_)), "{route:?}");
        let (_, method, path, body) = calls.iter().find(|c| c.0 == route.path).unwrap();
        for (i, (name, credential)) in bad.iter().enumerate() {
            let reply = send(method, path, body.as_ref(), credential.as_deref(), &format!("bad-{i}")).await;
            assert_eq!(reply.status, 401, "{method} {path} with {name}: {}", reply.raw);
            assert_eq!(reply.headers["content-type"], "application/problem+json");
        }
        let no_scope = send(
            method,
            path,
            body.as_ref(),
            Some(&token(&victim, &["accounts/read"])),
            "no-scope",
        )
        .await;
        assert_eq!(no_scope.status, 403, "{path} without its scope: {}", no_scope.raw);
    }

    // A customer cannot act for another: X-On-Behalf-Of is for services.
    let impersonation = axum::http::Request::builder()
        .method("POST")
        .uri("/payments")
        .header("content-type", "application/json")
        .header("idempotency-key", "impersonate")
        .header("authorization", format!("Bearer {}", token("attacker-sub", &scopes)))
        .header("x-on-behalf-of", victim.as_str())
        .body(axum::body::Body::from(pay.clone()))
        .unwrap();
    let impersonated = common::read(app.clone().oneshot(impersonation).await.unwrap()).await;
    assert_eq!(impersonated.status, 403, "{}", impersonated.raw);
    assert!(
        impersonated.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("payments/service"),
        "{:?}",
        impersonated.headers
    );

    // Another customer: cannot read the victim's payment, cannot pay out of
    // the victim's account, and leaves nothing behind.
    let attacker = token("attacker-sub", &scopes);
    let read = send("GET", &format!("/payments/{payment}"), None, Some(&attacker), "read").await;
    assert_eq!(read.status, 404, "{}", read.raw);
    let stolen = send("POST", "/payments", Some(&pay), Some(&attacker), "steal").await;
    assert_eq!(stolen.status, 422, "{}", stolen.raw);
    assert_eq!(
        stolen.body["type"], "urn:problem:unknown-payer",
        "as if it did not exist"
    );
    assert_eq!(stolen.body["errors"][0]["field"], "from_account");
    assert!(stolen.body.get("instance").is_none(), "no payment was recorded");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (900, 100));
    assert_eq!(
        s.postings(&payer).await.len(),
        2,
        "the seed and the victim's own payment"
    );
    // The key was refused before any work, so the attacker holds nothing under it.
    let again = send("POST", "/payments", Some(&pay), Some(&attacker), "steal").await;
    assert!(!again.headers.contains_key("idempotent-replayed"), "{}", again.raw);

    // A service of the deployment acts for the customer it names: for no
    // one it reads nothing and pays nothing (that is the back office's),
    // and the back office reads any payment but makes none for no one.
    let service = sign(Key::Signing, "signing", &machine_claims(&["payments/service"]));
    let read = send("GET", &format!("/payments/{payment}"), None, Some(&service), "svc-read").await;
    assert_eq!(read.status, 403, "{}", read.raw);
    assert_eq!(
        read.headers["www-authenticate"],
        r#"Bearer error="insufficient_scope", scope="payments/back-office""#
    );
    let paid = send("POST", "/payments", Some(&pay), Some(&service), "svc-pay").await;
    assert_eq!(paid.status, 403, "{}", paid.raw);
    let back_office = sign(Key::Signing, "signing", &machine_claims(&["payments/back-office"]));
    let read = send(
        "GET",
        &format!("/payments/{payment}"),
        None,
        Some(&back_office),
        "bo-read",
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.raw);
    let paid = send("POST", "/payments", Some(&pay), Some(&back_office), "bo-pay").await;
    assert_eq!(paid.status, 403, "{}", paid.raw);
    assert_eq!(paid.body["type"], "urn:problem:no-customer", "{}", paid.raw);
    s.assert_ledger_sound().await;
}
