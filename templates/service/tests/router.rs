//! The router against the local stack (moto, with its user pool): every
//! route, the idempotency contract of `POST`, who may call what, and a
//! clear error naming the field for every bad input.

mod common;

use common::{field, fixture};
use serde_json::json;

fn valid() -> serde_json::Value {
    json!({ "holder": "Ada Lovelace", "currency": "EUR", "limit_minor": 50_000 })
}

#[tokio::test]
async fn health_names_the_service() {
    let f = fixture().await;
    let reply = f.send("GET", "/health", &[], None).await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.body["service"], {{crate_name}}::SERVICE.name);
}

#[tokio::test]
async fn a_created_record_reads_back() {
    let f = fixture().await;
    let created = f.create(&local_aws::unique("k"), valid()).await;
    assert_eq!(created.status, 201, "{}", created.raw);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("/{{project-name}}/{id}")
    );
    assert_eq!(created.body["limit_minor"], 50_000);
    let read = f.send("GET", &format!("/{{project-name}}/{id}"), &[], None).await;
    assert_eq!(read.status, 200, "{}", read.raw);
    assert_eq!(read.body, created.body);
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_response() {
    let f = fixture().await;
    let key = local_aws::unique("k");
    let first = f.create(&key, valid()).await;
    let again = f.create(&key, valid()).await;
    assert_eq!(first.status, 201, "{}", first.raw);
    assert_eq!(again.status, 201, "{}", again.raw);
    assert_eq!(again.raw, first.raw, "one record, the same answer");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = f.create(&key, json!({ "holder": "Someone else", "currency": "EUR", "limit_minor": 1 })).await;
    assert_eq!(other.status, 422, "{}", other.raw);
}

#[tokio::test]
async fn post_without_an_idempotency_key_is_refused() {
    let f = fixture().await;
    let reply = f.send("POST", "/{{project-name}}", &[], Some(valid())).await;
    assert_eq!(reply.status, 400, "{}", reply.raw);
    assert_eq!(field(&reply), "Idempotency-Key");
}

#[tokio::test]
async fn every_bad_field_is_named() {
    let f = fixture().await;
    let cases = [
        (json!({ "holder": " ", "currency": "EUR", "limit_minor": 1 }), "holder"),
        (json!({ "holder": "Ada", "currency": "EURO", "limit_minor": 1 }), "currency"),
        (json!({ "holder": "Ada", "currency": "EUR", "limit_minor": 0 }), "limit_minor"),
        (
            json!({ "holder": "Ada", "currency": "EUR", "limit_minor": 100_000_000_001_u64 }),
            "limit_minor",
        ),
        (json!({ "holder": "Ada", "currency": "EUR", "limit_minor": 1.5 }), "limit_minor"),
        (json!({ "holder": "Ada", "currency": "EUR" }), "limit_minor"),
    ];
    for (body, expected) in cases {
        let reply = f.create(&local_aws::unique("k"), body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.raw);
        assert_eq!(field(&reply), expected, "{body}: {}", reply.raw);
    }
    let malformed = f.send("GET", "/{{project-name}}/not-a-uuid", &[], None).await;
    assert_eq!(malformed.status, 422, "{}", malformed.raw);
    assert_eq!(field(&malformed), "id");
    let missing = f
        .send("GET", &format!("/{{project-name}}/{}", uuid::Uuid::new_v4()), &[], None)
        .await;
    assert_eq!(missing.status, 404, "{}", missing.raw);
}

#[tokio::test]
async fn every_route_but_health_needs_a_credential() {
    let f = fixture().await;
    let gate = shared::auth::Gate::new(f.state.verifier.clone(), &{{crate_name}}::SERVICE);
    let policy = {{crate_name}}::http::routes(f.state.clone(), gate).policy().to_vec();
    assert!(!policy.is_empty());
    for route in &policy {
        assert_ne!(route.access, shared::auth::Access::Public, "{} is open", route.path);
        let path = route.path.replace("{id}", "00000000-0000-4000-8000-000000000001");
        for method in ["GET", "POST"] {
            for credential in [None, Some("Bearer wrong"), Some("Basic dXNlcjpwYXNz")] {
                let mut headers = vec![("idempotency-key", "k")];
                headers.extend(credential.map(|c| ("authorization", c)));
                let mut request = axum::http::Request::builder().method(method).uri(&path);
                for (name, value) in &headers {
                    request = request.header(*name, *value);
                }
                let request = request.body(axum::body::Body::empty()).unwrap();
                let response = tower::ServiceExt::oneshot(f.router.clone(), request).await.unwrap();
                // 405 where the method is not the route's: no handler runs either way.
                assert!(
                    [401, 405].contains(&response.status().as_u16()),
                    "{method} {path} with {credential:?}: {}",
                    response.status()
                );
                if response.status() == 401 {
                    assert!(response.headers().contains_key("www-authenticate"), "{method} {path}");
                }
            }
        }
    }
    let unknown = f.send("GET", "/nowhere", &[], None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.raw);
}

#[tokio::test]
async fn another_customers_record_is_not_found() {
    let f = fixture().await;
    let created = f.create(&local_aws::unique("k"), valid()).await;
    assert_eq!(created.status, 201, "{}", created.raw);
    assert_eq!(created.body["owner"], f.customer.subject.as_str());
    let id = created.body["id"].as_str().unwrap();
    let stranger = f.identity.customer(&f.sdk, "stranger").await.expect("a second customer");
    let bearer = format!("Bearer {}", stranger.access_token);
    let theirs = f
        .send("GET", &format!("/{{project-name}}/{id}"), &[("authorization", &bearer)], None)
        .await;
    let missing = f
        .send(
            "GET",
            &format!("/{{project-name}}/{}", uuid::Uuid::new_v4()),
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.raw);
    // Nothing tells someone else's record from one that does not exist.
    assert_eq!(theirs.body["type"], missing.body["type"]);
    assert_eq!(theirs.body["title"], missing.body["title"]);
    // The same Idempotency-Key from another customer is their own request.
    let key = local_aws::unique("k");
    let mine = f.create(&key, valid()).await;
    let other = f
        .send("POST", "/{{project-name}}", &[("idempotency-key", &key), ("authorization", &bearer)], Some(valid()))
        .await;
    assert_eq!(other.status, 201, "{}", other.raw);
    assert_ne!(other.body["id"], mine.body["id"]);
    assert_eq!(other.body["owner"], stranger.subject.as_str());
}

#[tokio::test]
async fn the_seed_record_is_its_owners() {
    let f = fixture().await;
    let path = "/{{project-name}}/00000000-0000-4000-8000-000000000001";
    // The back office (the hooks' machine client, with every machine scope)
    // acting for the seed's owner.
    let token = f.identity.service_token().await.expect("a service token");
    let service = format!("Bearer {token}");
    let reply = f
        .send(
            "GET",
            path,
            &[("authorization", &service), ("x-on-behalf-of", "seed-customer")],
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.body["holder"], "Seed Holder");
    let not_theirs = f.send("GET", path, &[], None).await;
    assert_eq!(not_theirs.status, 404, "{}", not_theirs.raw);
}
