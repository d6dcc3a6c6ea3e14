//! `POST /payments` with one Idempotency-Key moves money once.

mod common;

use common::{body, stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_with_one_key_make_one_payment() {
    let s = stack().await;
    let (payer, payee) = (s.account(10_000).await, s.account(0).await);
    let request = body(&payer, &payee, 1_234);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            let request = request.clone();
            tokio::spawn(async move { s.pay(Some("one-key"), &request).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut in_flight = 0;
    for call in calls {
        let reply = call.await.unwrap();
        match reply.status {
            201 => created.push(reply.raw),
            409 => {
                assert_eq!(
                    reply.body["type"], "urn:problem:idempotency-in-progress",
                    "{}",
                    reply.raw
                );
                in_flight += 1;
            }
            other => panic!("unexpected {other}: {}", reply.raw),
        }
    }
    assert!(!created.is_empty(), "the first request completed");
    assert!(
        created.iter().all(|raw| raw == &created[0]),
        "every 201 is the same body"
    );
    assert_eq!(created.len() + in_flight, 50);
    assert_eq!(
        (s.balance(&payer).await, s.balance(&payee).await),
        (10_000 - 1_234, 1_234)
    );
    let debits: Vec<_> = s
        .postings(&payer)
        .await
        .into_iter()
        .filter(|p| p.0 == "debit")
        .collect();
    let credits: Vec<_> = s
        .postings(&payee)
        .await
        .into_iter()
        .filter(|p| p.0 == "credit")
        .collect();
    assert_eq!((debits.len(), credits.len()), (1, 1), "one debit, one credit");

    let late = s.pay(Some("one-key"), &request).await;
    assert_eq!(late.status, 201);
    assert_eq!(late.raw, created[0], "a replay is byte-identical");
    assert_eq!(late.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn a_key_reused_with_another_body_or_missing_is_refused() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    assert_eq!(s.pay(Some("k1"), &body(&payer, &payee, 100)).await.status, 201);
    let reused = s.pay(Some("k1"), &body(&payer, &payee, 101)).await;
    assert_eq!(reused.status, 422, "{}", reused.raw);
    assert_eq!(reused.body["errors"][0]["field"], "Idempotency-Key");
    let missing = s.pay(None, &body(&payer, &payee, 100)).await;
    assert_eq!(missing.status, 400, "{}", missing.raw);
    assert_eq!(missing.body["errors"][0]["field"], "Idempotency-Key");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (900, 100));
}

#[tokio::test]
async fn bad_payment_requests_name_the_field_and_move_nothing() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    for (request, field) in [
        (body(&payer, &payer, 5), "to_account"),
        (body(&payer, "nope", 5), "to_account"),
        (body(&payer, &payee, 0), "amount_minor"),
        (body(&payer, &payee, 5).replace("EUR", "EURO"), "currency"),
        (body(&payer, &payee, 5).replace("\"reference\"", "\"memo\""), "memo"),
        (body(&payer, &payee, 5).replace("5,", "-5,"), "amount_minor"),
    ] {
        let reply = s.pay(Some(&format!("bad-{field}-{}", request.len())), &request).await;
        assert_eq!(reply.status, 422, "{request}: {}", reply.raw);
        assert_eq!(reply.body["errors"][0]["field"], field, "{request}: {}", reply.raw);
    }
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (1_000, 0));
}
