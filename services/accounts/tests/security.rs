//! Every route of accounts, with every credential a stranger or a careless
//! client might send: no token, garbage, a forged signature, `alg: none`,
//! an expired token, one for another audience, one from another issuer, a
//! valid one without the route's scope, another customer's, a forged
//! service token, a customer acting for someone else, a service acting for
//! no one or on a back-office route, the back office acting for another. Each gets the status
//! its route promises, and nothing is written: the test reads the store
//! before and after.
//!
//! Tokens come from an issuer under the test's control (`local_aws::oidc`),
//! so that expired and foreign tokens can be made at all.

use crate::common;

use std::sync::Arc;

use local_aws::oidc::{Issuer, Key, claims, machine_claims, sign, token};
use serde_json::{Value, json};
use shared::auth::Access;

/// How a route is called in this test: method, concrete path, body.
struct Call {
    method: &'static str,
    path: String,
    body: Option<String>,
}

#[tokio::test]
async fn every_route_refuses_every_bad_credential_and_writes_nothing() {
    let f = common::fixture().await;
    let issuer = Issuer::start().await.unwrap();
    let verifier = Arc::new(shared::auth::Verifier::load(issuer.settings(), reqwest::Client::new()).await);
    let mut state = f.state.clone();
    state.verifier = verifier.clone();
    let app = accounts::app(state.clone());
    let policy = accounts::http::routes(state, shared::auth::Gate::new(verifier, &accounts::SERVICE))
        .policy()
        .to_vec();

    // The victim's account (funded, with a transfer out) and the attacker's.
    let victim = "victim-sub";
    let open = |owner: &str, currency: &str| {
        let (f, owner, currency) = (f.clone(), owner.to_owned(), currency.to_owned());
        async move {
            let body = json!({"holder": "x", "currency": currency}).to_string();
            let reply = f
                .call_with(
                    "POST",
                    "/accounts",
                    Some(&body),
                    &f.service_token,
                    &[("x-on-behalf-of", &owner)],
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.raw);
            reply.body["id"].as_str().unwrap().to_owned()
        }
    };
    let (account, elsewhere, attacker_account) = (
        open(victim, "EUR").await,
        open(victim, "EUR").await,
        open("attacker-sub", "EUR").await,
    );
    let credit = json!({"amount_minor": 1000, "currency": "EUR", "reference": "fund"}).to_string();
    assert_eq!(
        f.call_with(
            "POST",
            &format!("/accounts/{account}/credits"),
            Some(&credit),
            &f.back_office_token,
            &[]
        )
        .await
        .status,
        201
    );
    let moved = json!({"from_account": account, "to_account": elsewhere, "amount_minor": 100, "currency": "EUR", "reference": "t-1"}).to_string();
    assert_eq!(
        f.call_with(
            "POST",
            "/transfers",
            Some(&moved),
            &f.service_token,
            &[("x-on-behalf-of", victim)]
        )
        .await
        .status,
        201
    );
    let before = f.state.store.snapshot().await.unwrap();

    let steal = json!({"from_account": account, "to_account": attacker_account, "amount_minor": 500, "currency": "EUR", "reference": "steal"}).to_string();
    let posting = json!({"amount_minor": 1, "currency": "EUR", "reference": "p"}).to_string();
    let calls: Vec<(&str, Call)> = vec![
        (
            "/accounts",
            Call {
                method: "POST",
                path: String::from("/accounts"),
                body: Some(json!({"holder": "x", "currency": "EUR"}).to_string()),
            },
        ),
        (
            "/accounts/{id}",
            Call {
                method: "GET",
                path: format!("/accounts/{account}"),
                body: None,
            },
        ),
        (
            "/accounts/{id}/transactions",
            Call {
                method: "GET",
                path: format!("/accounts/{account}/transactions"),
                body: None,
            },
        ),
        (
            "/transfers",
            Call {
                method: "POST",
                path: String::from("/transfers"),
                body: Some(steal.clone()),
            },
        ),
        (
            "/transfers/cancellations",
            Call {
                method: "POST",
                path: String::from("/transfers/cancellations"),
                body: Some(moved.clone()),
            },
        ),
        (
            "/accounts/{id}/transfers/{reference}",
            Call {
                method: "GET",
                path: format!("/accounts/{account}/transfers/t-1"),
                body: None,
            },
        ),
        (
            "/accounts/{id}/credits",
            Call {
                method: "POST",
                path: format!("/accounts/{account}/credits"),
                body: Some(posting.clone()),
            },
        ),
        (
            "/accounts/{id}/debits",
            Call {
                method: "POST",
                path: format!("/accounts/{account}/debits"),
                body: Some(posting.clone()),
            },
        ),
        (
            "/accounts/{id}/voids",
            Call {
                method: "POST",
                path: format!("/accounts/{account}/voids"),
                body: Some(json!({"reference": "fund"}).to_string()),
            },
        ),
    ];
    let mut covered: Vec<&str> = calls.iter().map(|(p, _)| *p).collect();
    let mut declared: Vec<&str> = policy.iter().map(|p| p.path).collect();
    covered.sort_unstable();
    declared.sort_unstable();
    assert_eq!(covered, declared, "every route has a policy and is tried here");

    let all_scopes = ["accounts/read", "accounts/write", "payments/read", "payments/write"];
    let mut expired = claims(victim, &all_scopes);
    expired["exp"] = json!(local_aws::oidc::now() - 300);
    let mut other_audience = claims(victim, &all_scopes);
    other_audience["client_id"] = json!("someone-elses-app");
    let mut other_issuer = claims(victim, &all_scopes);
    other_issuer["iss"] = json!("https://evil.example/pool");
    let good = token(victim, &all_scopes);
    let [head, _, signature] = good.split('.').collect::<Vec<_>>()[..] else {
        unreachable!()
    };
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let forged = format!("{head}.{}.{signature}", b64(&claims("attacker-sub", &all_scopes)));
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(victim, &all_scopes))
    );
    let bad: Vec<(&str, Option<String>)> = vec![
        ("no credential", None),
        ("garbage", Some(String::from("garbage"))),
        ("a forged payload", Some(forged)),
        ("alg none", Some(none)),
        (
            "a stranger's key",
            Some(sign(Key::Stranger, "signing", &claims(victim, &all_scopes))),
        ),
        ("expired", Some(sign(Key::Signing, "signing", &expired))),
        ("another audience", Some(sign(Key::Signing, "signing", &other_audience))),
        ("another issuer", Some(sign(Key::Signing, "signing", &other_issuer))),
        (
            "a service token signed by a stranger",
            Some(sign(
                Key::Stranger,
                "signing",
                &claims("attacker-client", &["accounts/service"]),
            )),
        ),
    ];

    let send_as = |call: &Call, credential: Option<&str>, on_behalf_of: Option<&str>| {
        let app = app.clone();
        let mut request = axum::http::Request::builder().method(call.method).uri(&call.path);
        if let Some(customer) = on_behalf_of {
            request = request.header("x-on-behalf-of", customer);
        }
        if let Some(credential) = credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        if call.body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(axum::body::Body::from(call.body.clone().unwrap_or_default()))
            .unwrap();
        async move {
            use tower::ServiceExt;
            common::read(app.oneshot(request).await.unwrap()).await
        }
    };
    let send = |call: &Call, credential: Option<&str>| send_as(call, credential, None);
    for route in &policy {
        let (_, call) = calls.iter().find(|(p, _)| *p == route.path).unwrap();
        for (name, credential) in &bad {
            let reply = send(call, credential.as_deref()).await;
            assert_eq!(
                reply.status, 401,
                "{} {} with {name}: {}",
                call.method, route.path, reply.raw
            );
            assert_eq!(reply.headers["content-type"], "application/problem+json");
            if let Some(credential) = credential {
                assert!(!reply.raw.contains(credential.as_str()), "the token is never echoed");
            }
        }
        let no_scope = send(call, Some(&token(victim, &["payments/read"]))).await;
        let attacker = send(call, Some(&token("attacker-sub", &all_scopes))).await;
        // A customer naming someone else is refused: acting for a customer
        // takes the service scope.
        let impersonating = send_as(call, Some(&token("attacker-sub", &all_scopes)), Some(victim)).await;
        assert_eq!(
            impersonating.status, 403,
            "{} as a customer acting for another: {}",
            route.path, impersonating.raw
        );
        assert!(
            impersonating.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"scope="accounts/service""#),
            "{:?}",
            impersonating.headers
        );
        match route.access {
            Access::Scope(_) => {
                assert_eq!(
                    no_scope.status, 403,
                    "{} without its scope: {}",
                    route.path, no_scope.raw
                );
                assert!(
                    no_scope.headers["www-authenticate"]
                        .to_str()
                        .unwrap()
                        .contains("insufficient_scope")
                );
                let expected = match route.path {
                    "/accounts" => 201,
                    "/transfers" | "/transfers/cancellations" => 422,
                    _ => 404,
                };
                assert_eq!(
                    attacker.status, expected,
                    "another customer on {}: {}",
                    route.path, attacker.raw
                );
                if expected == 422 {
                    assert_eq!(
                        attacker.body["errors"][0]["field"], "from_account",
                        "as if it did not exist"
                    );
                }
            }
            Access::BackOffice => {
                assert_eq!(no_scope.status, 403, "{}: {}", route.path, no_scope.raw);
                assert_eq!(
                    attacker.status, 403,
                    "a customer on a back-office route {}: {}",
                    route.path, attacker.raw
                );
                assert_eq!(
                    attacker.headers["www-authenticate"],
                    r#"Bearer error="insufficient_scope", scope="accounts/back-office""#
                );
            }
            Access::Public => panic!("{} is public", route.path),
        }
    }
    // Found by the attack on issue 15: a service of the deployment
    // (`accounts/service`, what payments holds) acts for the customer it
    // names and no one else. It uses no back-office route, for anyone, and
    // names no one on the customers' routes: acting for no one takes the
    // back-office scope.
    let service = sign(Key::Signing, "signing", &machine_claims(&["accounts/service"]));
    for route in &policy {
        let (_, call) = calls.iter().find(|(p, _)| *p == route.path).unwrap();
        let for_no_one = send(call, Some(&service)).await;
        assert_eq!(for_no_one.status, 403, "{} for no one: {}", route.path, for_no_one.raw);
        assert_eq!(
            for_no_one.headers["www-authenticate"],
            r#"Bearer error="insufficient_scope", scope="accounts/back-office""#,
            "{}",
            route.path
        );
        if route.access == Access::BackOffice {
            let for_the_victim = send_as(call, Some(&service), Some(victim)).await;
            assert_eq!(
                for_the_victim.status, 403,
                "{} by a service for the owner: {}",
                route.path, for_the_victim.raw
            );
        }
    }
    // The back office acting for the attacker (a valid back-office token,
    // `X-On-Behalf-Of: attacker`) cannot credit, debit or void the victim's
    // account: it answers as one that does not exist, and the snapshot
    // below shows nothing moved.
    let back_office = sign(Key::Signing, "signing", &machine_claims(&["accounts/back-office"]));
    for path in [
        "/accounts/{id}/credits",
        "/accounts/{id}/debits",
        "/accounts/{id}/voids",
    ] {
        let (_, call) = calls.iter().find(|(p, _)| *p == path).unwrap();
        let reply = send_as(call, Some(&back_office), Some("attacker-sub")).await;
        assert_eq!(reply.status, 404, "{path} for another customer: {}", reply.raw);
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
    // Found by the attack on issue 15: the back office acting for no one
    // moves no money between accounts: a transfer and its cancellation are
    // a customer's, named.
    for path in ["/transfers", "/transfers/cancellations"] {
        let (_, call) = calls.iter().find(|(p, _)| *p == path).unwrap();
        let reply = send(call, Some(&back_office)).await;
        assert_eq!(reply.status, 403, "{path} for no one: {}", reply.raw);
        assert_eq!(reply.body["type"], "urn:problem:no-customer", "{}", reply.raw);
    }
    // The victim's own token does what the attacker's could not.
    let own = send(&calls[1].1, Some(&token(victim, &all_scopes))).await;
    assert_eq!(own.status, 200, "{}", own.raw);

    // Nothing of the victim's moved or changed; the only writes were the
    // attacker's own new accounts.
    let after = f.state.store.snapshot().await.unwrap();
    assert_eq!(after.transactions, before.transactions);
    assert_eq!(after.transfers, before.transfers);
    let victims = |s: &accounts::ledger::Snapshot| -> Vec<accounts::domain::Account> {
        s.accounts.iter().filter(|a| a.owner == victim).cloned().collect()
    };
    assert_eq!(victims(&after), victims(&before));
}

/// Found by the attack on issue 15. A service naming a customer it cannot
/// name (`X-On-Behalf-Of` empty, with a space or a tab, too long, or sent
/// twice) is refused 400: it must never read as acting for no one, which
/// may touch every account. And someone else's cancelled transfer is not
/// described to whoever sends its reference.
#[tokio::test]
async fn a_bad_on_behalf_of_is_refused_and_a_reference_tells_a_stranger_nothing() {
    let f = common::fixture().await;
    let victim = f.account_with("EUR", 1_000).await;
    let elsewhere = f.account_with("EUR", 0).await;
    let before = f.state.store.snapshot().await.unwrap();
    let long = "m".repeat(300);
    let steal = json!({"from_account": victim, "to_account": elsewhere, "amount_minor": 500, "currency": "EUR", "reference": "bad-obo"}).to_string();
    let bad: [&[(&str, &str)]; 5] = [
        &[("x-on-behalf-of", "")],
        &[("x-on-behalf-of", "mallory evil")],
        &[("x-on-behalf-of", "mallory\tevil")],
        &[("x-on-behalf-of", &long)],
        &[
            ("x-on-behalf-of", f.customer.subject.as_str()),
            ("x-on-behalf-of", "someone-else"),
        ],
    ];
    for headers in bad {
        let read = f
            .call_with("GET", &format!("/accounts/{victim}"), None, &f.service_token, headers)
            .await;
        assert_eq!(read.status, 400, "{headers:?}: {}", read.raw);
        assert_eq!(read.body["errors"][0]["field"], "X-On-Behalf-Of", "{}", read.raw);
        assert!(!read.raw.contains(&victim), "{}", read.raw);
        let moved = f
            .call_with("POST", "/transfers", Some(&steal), &f.service_token, headers)
            .await;
        assert_eq!(moved.status, 400, "{headers:?}: {}", moved.raw);
    }
    let after = f.state.store.snapshot().await.unwrap();
    assert_eq!(after.transactions, before.transactions, "nothing moved");

    // The customer cancels a transfer under their reference; a stranger
    // (another owner, through the same service) sends that reference with
    // their own accounts: a reference is the payer's, so theirs is a
    // cancellation of their own, and says nothing of the customer's.
    let cancel = json!({"from_account": victim, "to_account": elsewhere, "amount_minor": 777, "currency": "EUR", "reference": "invoice-17"}).to_string();
    let cancelled = f.call("POST", "/transfers/cancellations", Some(&cancel)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.raw);
    let stranger = "stranger-sub";
    let open = json!({"holder": "s", "currency": "EUR"}).to_string();
    let as_stranger = [("x-on-behalf-of", stranger)];
    let mine = f
        .call_with("POST", "/accounts", Some(&open), &f.service_token, &as_stranger)
        .await;
    let theirs = f
        .call_with("POST", "/accounts", Some(&open), &f.service_token, &as_stranger)
        .await;
    let (mine, theirs) = (mine.body["id"].as_str().unwrap(), theirs.body["id"].as_str().unwrap());
    let probe = json!({"from_account": mine, "to_account": theirs, "amount_minor": 1, "currency": "EUR", "reference": "invoice-17"}).to_string();
    let answer = f
        .call_with(
            "POST",
            "/transfers/cancellations",
            Some(&probe),
            &f.service_token,
            &as_stranger,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["state"], "cancelled", "{}", answer.raw);
    assert_eq!(answer.body["from_account"], mine, "{}", answer.raw);
    for secret in [victim.as_str(), elsewhere.as_str(), "777"] {
        assert!(!answer.raw.contains(secret), "{secret} leaked: {}", answer.raw);
    }
    // The customer's own request still reads its cancellation back.
    let again = f.call("POST", "/transfers/cancellations", Some(&cancel)).await;
    assert_eq!(again.status, 200, "{}", again.raw);
    assert_eq!(again.body["state"], "cancelled");
}
