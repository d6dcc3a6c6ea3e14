//! The router against the local stack (moto): every route, the idempotency
//! contract of `POST`, the service key, and a clear error naming the field
//! for every bad input.

mod common;

use common::{field, fixture};
use serde_json::json;

fn valid() -> serde_json::Value {
    json!({ "owner": "Ada Lovelace", "currency": "EUR", "limit_minor": 50_000 })
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
    let other = f.create(&key, json!({ "owner": "Someone else", "currency": "EUR", "limit_minor": 1 })).await;
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
        (json!({ "owner": " ", "currency": "EUR", "limit_minor": 1 }), "owner"),
        (json!({ "owner": "Ada", "currency": "EURO", "limit_minor": 1 }), "currency"),
        (json!({ "owner": "Ada", "currency": "EUR", "limit_minor": 0 }), "limit_minor"),
        (
            json!({ "owner": "Ada", "currency": "EUR", "limit_minor": 100_000_000_001_u64 }),
            "limit_minor",
        ),
        (json!({ "owner": "Ada", "currency": "EUR", "limit_minor": 1.5 }), "limit_minor"),
        (json!({ "owner": "Ada", "currency": "EUR" }), "limit_minor"),
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
async fn routes_need_the_service_key() {
    let f = fixture().await;
    let reply = f
        .send("GET", "/{{project-name}}/x", &[("authorization", "Bearer wrong")], None)
        .await;
    assert_eq!(reply.status, 401, "{}", reply.raw);
    let unknown = f.send("GET", "/nowhere", &[], None).await;
    assert_eq!(unknown.status, 404, "{}", unknown.raw);
}

#[tokio::test]
async fn the_seed_record_is_there() {
    let f = fixture().await;
    let reply = f
        .send("GET", "/{{project-name}}/00000000-0000-4000-8000-000000000001", &[], None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.raw);
    assert_eq!(reply.body["owner"], "Seed Owner");
}
