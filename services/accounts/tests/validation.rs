//! Bad input is refused with a problem+json naming the field, and nothing is written.

use crate::common;

/// `check(method, path, body, status, field)`: the request is refused with
/// `status`, names `field`, and leaves the account's balance and
/// transactions as they were.
async fn check(f: &common::Fixture, id: &str, path: &str, body: &str, status: u16, field: Option<&str>) {
    let before = f.snapshot(id).await;
    let reply = f.call("POST", path, Some(body)).await;
    assert_eq!(reply.status, status, "{path} {body}: {}", reply.raw);
    assert_eq!(reply.headers["content-type"], "application/problem+json", "{body}");
    if let Some(field) = field {
        let named = reply.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == field);
        assert!(named, "{body}: problem does not name {field}: {}", reply.raw);
    }
    assert_eq!(f.snapshot(id).await, before, "{body} changed the store");
}

#[tokio::test]
async fn bad_postings_name_the_field_and_write_nothing() {
    let f = common::fixture().await;
    let id = f.account_with("EUR", 1_000).await;
    let debits = format!("/accounts/{id}/debits");
    let credits = format!("/accounts/{id}/credits");
    let cases: &[(&str, &str, u16, Option<&str>)] = &[
        (
            &debits,
            r#"{"amount_minor": -5, "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &debits,
            r#"{"amount_minor": 18446744073709551616, "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &credits,
            r#"{"amount_minor": 1.5, "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &credits,
            r#"{"amount_minor": "100", "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &credits,
            r#"{"amount_minor": 0, "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &credits,
            r#"{"amount_minor": 100000000001, "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &credits,
            r#"{"currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (
            &credits,
            r#"{"amount_minor": 5, "currency": "USD", "reference": "r1"}"#,
            422,
            Some("currency"),
        ),
        (
            &credits,
            r#"{"amount_minor": 5, "currency": "usd", "reference": "r1"}"#,
            422,
            Some("currency"),
        ),
        (
            &credits,
            r#"{"amount_minor": 5, "currency": "EUR", "reference": "has space"}"#,
            422,
            Some("reference"),
        ),
        (
            &credits,
            r#"{"amount_minor": 5, "currency": "EUR", "reference": "r1", "fee": 1}"#,
            422,
            Some("fee"),
        ),
        (
            &debits,
            r#"{"amount_minor": 1001, "currency": "EUR", "reference": "r1"}"#,
            422,
            Some("amount_minor"),
        ),
        (&debits, r#"{"amount_minor": 5, "currency": "EUR""#, 400, None),
        (&debits, "[]", 422, None),
    ];
    for (path, body, status, field) in cases {
        check(&f, &id, path, body, *status, *field).await;
    }
}

#[tokio::test]
async fn unknown_and_malformed_accounts_are_refused() {
    let f = common::fixture().await;
    let id = f.account_with("GBP", 10).await;
    let ghost = "00000000-0000-4000-8000-000000000000";
    let body = r#"{"amount_minor": 5, "currency": "GBP", "reference": "r2"}"#;
    check(&f, &id, &format!("/accounts/{ghost}/credits"), body, 404, Some("id")).await;
    check(&f, &id, "/accounts/not-a-uuid/credits", body, 422, Some("id")).await;
    let reply = f.call("GET", &format!("/accounts/{ghost}"), None).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn bad_open_requests_name_the_field() {
    let f = common::fixture().await;
    for (body, field) in [
        (r#"{"holder": "Ada", "currency": "EURO"}"#, "currency"),
        (r#"{"holder": "  ", "currency": "EUR"}"#, "holder"),
        (r#"{"holder": "Ada"}"#, "currency"),
        (
            r#"{"holder": "Ada", "currency": "EUR", "balance_minor": 1000000}"#,
            "balance_minor",
        ),
    ] {
        let reply = f.call("POST", "/accounts", Some(body)).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.raw);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}: {}", reply.raw);
    }
}

#[tokio::test]
async fn a_reference_moves_money_once_and_conflicts_when_reused_differently() {
    let f = common::fixture().await;
    let id = f.account_with("EUR", 1_000).await;
    let debit = r#"{"amount_minor": 300, "currency": "EUR", "reference": "pay-1"}"#;
    let first = f.call("POST", &format!("/accounts/{id}/debits"), Some(debit)).await;
    assert_eq!(first.status, 201, "{}", first.raw);
    let again = f.call("POST", &format!("/accounts/{id}/debits"), Some(debit)).await;
    assert_eq!(again.status, 200, "{}", again.raw);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.body["transaction"]["id"], first.body["transaction"]["id"]);
    let different = r#"{"amount_minor": 301, "currency": "EUR", "reference": "pay-1"}"#;
    let conflict = f.call("POST", &format!("/accounts/{id}/debits"), Some(different)).await;
    assert_eq!(conflict.status, 409, "{}", conflict.raw);
    assert_eq!(f.snapshot(&id).await, (700, 2));
}

/// Credits, debits and voids are the back office's: a bad token, the
/// account's owner, and a service of the deployment (payments' client, which
/// acts for customers) are refused, whether or not they name the owner.
#[tokio::test]
async fn debits_take_a_back_office_token_only() {
    let f = common::fixture().await;
    let id = f.account_with("EUR", 50).await;
    let debit = format!("/accounts/{id}/debits");
    let body = r#"{"amount_minor": 5, "currency": "EUR", "reference": "x"}"#;
    let wrong = common::Fixture {
        back_office_token: String::from("wrong"),
        ..f.clone()
    };
    let reply = wrong.call("POST", &debit, Some(body)).await;
    assert_eq!(reply.status, 401, "{}", reply.raw);
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"Bearer error="invalid_token""#),
        "{:?}",
        reply.headers
    );
    let owner_subject = f.customer.subject.clone();
    let as_owner = [("x-on-behalf-of", owner_subject.as_str())];
    for (who, token, headers) in [
        // The account's owner, with every scope a customer can have.
        ("the owner", &f.customer.access_token, &[][..]),
        ("payments for no one", &f.service_token, &[][..]),
        ("payments for the owner", &f.service_token, &as_owner[..]),
    ] {
        for route in ["debits", "credits", "voids"] {
            let reply = f
                .call_with("POST", &format!("/accounts/{id}/{route}"), Some(body), token, headers)
                .await;
            assert_eq!(reply.status, 403, "{who} on {route}: {}", reply.raw);
            assert_eq!(
                reply.headers["www-authenticate"], r#"Bearer error="insufficient_scope", scope="accounts/back-office""#,
                "{who} on {route}"
            );
        }
    }
    assert_eq!(f.snapshot(&id).await, (50, 1));
    let health = wrong.call("GET", "/health", None).await;
    assert_eq!(health.status, 200, "health needs no token");
}

/// The defect: `bearer <key>` (lower case) was refused. RFC 9110 makes the
/// scheme case-insensitive.
#[tokio::test]
async fn the_auth_scheme_is_case_insensitive() {
    use tower::ServiceExt;
    let f = common::fixture().await;
    let id = f.account_with("EUR", 50).await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let request = axum::http::Request::get(format!("/accounts/{id}"))
            .header("authorization", format!("{scheme} {}", f.back_office_token))
            .body(axum::body::Body::empty())
            .unwrap();
        let reply = common::read(f.router.clone().oneshot(request).await.unwrap()).await;
        assert_eq!(reply.status, 200, "{scheme}: {}", reply.raw);
    }
    let basic = axum::http::Request::get(format!("/accounts/{id}"))
        .header("authorization", format!("Basic {}", f.back_office_token))
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = common::read(f.router.clone().oneshot(basic).await.unwrap()).await;
    assert_eq!(reply.status, 401, "another scheme is not a bearer token");
    assert_eq!(reply.headers["content-type"], "application/problem+json");
}

#[tokio::test]
async fn transactions_page_newest_first() {
    let f = common::fixture().await;
    let id = f.account_with("EUR", 100).await;
    for i in 0..4 {
        let body = format!(r#"{{"amount_minor": 1, "currency": "EUR", "reference": "d{i}"}}"#);
        assert_eq!(
            f.call("POST", &format!("/accounts/{id}/debits"), Some(&body))
                .await
                .status,
            201
        );
    }
    let first = f
        .call("GET", &format!("/accounts/{id}/transactions?limit=3"), None)
        .await;
    let refs: Vec<&str> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["d3", "d2", "d1"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = f
        .call(
            "GET",
            &format!("/accounts/{id}/transactions?limit=3&cursor={cursor}"),
            None,
        )
        .await;
    let refs: Vec<&str> = second.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["d0", "seed"]);
    let bad = f
        .call("GET", &format!("/accounts/{id}/transactions?cursor=nope"), None)
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["errors"][0]["field"], "cursor");
    // Found by the attack on issue 15: a bad or unknown parameter is named.
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=-1", "limit"),
        ("limit=99999999999", "limit"),
        ("page=2", "page"),
    ] {
        let bad = f
            .call("GET", &format!("/accounts/{id}/transactions?{query}"), None)
            .await;
        assert_eq!(bad.status, 422, "{query}: {}", bad.raw);
        assert_eq!(bad.body["errors"][0]["field"], field, "{query}: {}", bad.raw);
        assert_eq!(bad.headers["content-type"], "application/problem+json");
    }
}

#[test]
fn the_registry_declares_the_machine_scopes_the_gate_checks_and_no_secret() {
    let services = local_aws::registry::load().unwrap();
    let accounts = services.iter().find(|s| s.name == "accounts").unwrap();
    for scope in [shared::auth::SERVICE_SCOPE, shared::auth::BACK_OFFICE_SCOPE] {
        assert!(
            accounts.spec.scopes.contains_key(scope),
            "{scope}: {:?}",
            accounts.spec.scopes
        );
    }
    assert_eq!(accounts.spec.secret, None, "accounts reads no secret");
    let payments = services.iter().find(|s| s.name == "payments").unwrap();
    assert_eq!(
        local_aws::identity::caller_scopes(payments, &services),
        ["accounts/service"]
    );
}

#[tokio::test]
async fn voiding_reverses_a_posting_once_and_blocks_an_unposted_reference() {
    let f = common::fixture().await;
    let id = f.account_with("EUR", 1_000).await;
    let debit = r#"{"amount_minor": 400, "currency": "EUR", "reference": "pay-9-debit"}"#;
    assert_eq!(
        f.call("POST", &format!("/accounts/{id}/debits"), Some(debit))
            .await
            .status,
        201
    );
    let voids = format!("/accounts/{id}/voids");
    for _ in 0..2 {
        let reply = f.call("POST", &voids, Some(r#"{"reference": "pay-9-debit"}"#)).await;
        assert_eq!(reply.status, 200, "{}", reply.raw);
        assert_eq!(reply.body["outcome"], "reversed");
        assert_eq!(reply.body["reversal"]["direction"], "credit");
        assert_eq!(
            reply.body["balance_minor"], 1_000,
            "reversed once, however often voided"
        );
    }
    let blocked = f.call("POST", &voids, Some(r#"{"reference": "pay-9-credit"}"#)).await;
    assert_eq!(blocked.body["outcome"], "blocked", "{}", blocked.raw);
    let late = f
        .call(
            "POST",
            &format!("/accounts/{id}/credits"),
            Some(r#"{"amount_minor": 400, "currency": "EUR", "reference": "pay-9-credit"}"#),
        )
        .await;
    assert_eq!(
        late.status, 409,
        "a posting arriving after its void never applies: {}",
        late.raw
    );
    assert_eq!(f.snapshot(&id).await, (1_000, 3), "seed credit, debit, reversal");
}
