//! `POST /payments` with one Idempotency-Key makes one payment, as payment
//! APIs define it: the key binds to its first request until that request's
//! result is final; what was refused before any work is not kept.

use crate::common;

use std::time::Duration;

use common::{Fault, Faults, body, payment_id, stack};

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
    assert_eq!(s.postings(&payer).await.len(), 2, "the seed and one debit");
    assert_eq!(s.postings(&payee).await.len(), 1, "one credit");

    let late = s.pay(Some("one-key"), &request).await;
    assert_eq!(late.status, 201);
    assert_eq!(late.raw, created[0], "a replay is byte-identical");
    assert_eq!(late.headers["idempotent-replayed"], "true");
    s.assert_ledger_sound().await;
}

/// The defect: a retry with the same key after a 503 started a second
/// payment. Now every retry while the payment is not final is the same
/// payment (202 with its Location), and the final answer once it is.
#[tokio::test]
async fn retries_while_a_payment_is_not_final_continue_the_same_payment() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults::all(Fault::Slow(Duration::from_secs(5))));
    let request = body(&payer, &payee, 100);
    let mut ids = Vec::new();
    // Each attempt's budget is long enough to claim the key, check the payer
    // and record the payment on a loaded machine (at 700 ms, CI's moto once
    // took longer, and the attempt rightly answered 503 before any work),
    // and far shorter than the stalled transfer.
    for _ in 0..5 {
        let reply = s.pay_within(Some("retry-key"), &request, Duration::from_secs(2)).await;
        assert_eq!(reply.status, 202, "{}", reply.raw);
        assert!(reply.headers.contains_key("retry-after"));
        ids.push(payment_id(&reply));
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "one payment: {ids:?}");
    s.set(Faults::default());
    // The retries ran past give_up_after_seconds (2 s here) while the first
    // transfer was still in flight: whether the cancel or the transfer
    // reached the ledger first decides the outcome. Either way it is this
    // payment's final answer, and the money moved exactly as it says.
    let done = s.pay(Some("retry-key"), &request).await;
    assert_eq!(payment_id(&done), ids[0]);
    let expected = match done.status {
        201 => (900, 100),
        422 => {
            assert_eq!(done.body["type"], "urn:problem:accounts-unavailable", "{}", done.raw);
            (1_000, 0)
        }
        other => panic!("not a final answer: {other} {}", done.raw),
    };
    // Once the stalled calls have landed, nothing more moves.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), expected);
    let other = s.pay(Some("retry-key"), &body(&payer, &payee, 101)).await;
    assert_eq!(other.status, 422, "{}", other.raw);
    assert_eq!(other.body["type"], "urn:problem:idempotency-key-reused");
    s.assert_ledger_sound().await;
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

/// The defect: a request refused by validation was stored against its key,
/// so the corrected retry got 422. Refusals before any work keep nothing.
#[tokio::test]
async fn a_request_refused_before_any_work_leaves_the_key_free() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    let refused: [(String, u16, &str); 5] = [
        (body(&payer, &payee, 0), 422, "urn:problem:invalid-field"),
        (body(&payer, &payer, 5), 422, "urn:problem:invalid-field"),
        (
            format!("{}GARBAGE", body(&payer, &payee, 5)),
            400,
            "urn:problem:malformed-json",
        ),
        (
            body(&payer, &payee, 5).replace("\"reference\"", "\"memo\""),
            422,
            "urn:problem:invalid-field",
        ),
        (String::from("{"), 400, "urn:problem:malformed-json"),
    ];
    for (request, status, kind) in refused {
        let reply = s.pay(Some("fix-me"), &request).await;
        assert_eq!(reply.status, status, "{request}: {}", reply.raw);
        assert_eq!(reply.body["type"], kind, "{request}: {}", reply.raw);
    }
    let fixed = s.pay(Some("fix-me"), &body(&payer, &payee, 5)).await;
    assert_eq!(
        fixed.status, 201,
        "the corrected request may use the key: {}",
        fixed.raw
    );
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (995, 5));
}

/// The defect: `{…}GARBAGE` was accepted and moved money.
#[tokio::test]
async fn trailing_data_after_the_json_body_is_refused() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    for (i, tail) in ["GARBAGE", " {}", "\n[]", "}"].into_iter().enumerate() {
        let reply = s
            .pay(
                Some(&format!("tail-{i}")),
                &format!("{}{tail}", body(&payer, &payee, 5)),
            )
            .await;
        assert_eq!(reply.status, 400, "{tail:?}: {}", reply.raw);
        assert_eq!(reply.body["type"], "urn:problem:malformed-json", "{tail:?}");
    }
    let spaced = s.pay(Some("spaced"), &format!("{} \n", body(&payer, &payee, 5))).await;
    assert_eq!(spaced.status, 201, "trailing whitespace is JSON: {}", spaced.raw);
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (995, 5));
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
        (body(&payer, &payee, 5).replace("5,", "5.5,"), "amount_minor"),
    ] {
        let reply = s.pay(Some(&format!("bad-{field}-{}", request.len())), &request).await;
        assert_eq!(reply.status, 422, "{request}: {}", reply.raw);
        assert_eq!(reply.body["errors"][0]["field"], field, "{request}: {}", reply.raw);
    }
    let bad_id = s
        .send(
            axum::http::Request::get("/payments/not-a-uuid")
                .header("authorization", format!("Bearer {}", s.customer.access_token))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(bad_id.status, 422, "{}", bad_id.raw);
    assert_eq!(bad_id.headers["content-type"], "application/problem+json");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (1_000, 0));
}
