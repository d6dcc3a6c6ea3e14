//! Transfers against DynamoDB (moto): both legs or neither, whatever the
//! caller sends, and the ledger audit after each test proves it.

use crate::common;

use common::Fixture;
use serde_json::{Value, json};

async fn transfer(f: &Fixture, from: &str, to: &str, amount: u64, reference: &str) -> common::Reply {
    let body = json!({"from_account": from, "to_account": to, "amount_minor": amount, "currency": "EUR", "reference": reference});
    f.call("POST", "/transfers", Some(&body.to_string())).await
}

async fn balances(f: &Fixture, ids: &[&str]) -> Vec<u64> {
    let mut out = Vec::new();
    for id in ids {
        out.push(f.snapshot(id).await.0);
    }
    out
}

/// The whole table satisfies every ledger invariant.
async fn assert_sound(f: &Fixture) {
    let snapshot = f.state.store.snapshot().await.unwrap();
    let audit = accounts::ledger::audit(&snapshot);
    assert!(audit.is_sound(), "{:#?}", audit.violations);
}

#[tokio::test]
async fn a_transfer_moves_both_legs_once_and_replays() {
    let f = common::fixture().await;
    let (payer, payee) = (f.account_with("EUR", 1_000).await, f.account_with("EUR", 0).await);
    let made = transfer(&f, &payer, &payee, 300, "t-1").await;
    assert_eq!(made.status, 201, "{}", made.raw);
    assert_eq!(made.body["transfer"]["state"], "applied");
    assert_eq!(made.headers["location"], "/transfers/t-1");
    let again = transfer(&f, &payer, &payee, 300, "t-1").await;
    assert_eq!(again.status, 200, "{}", again.raw);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.body["transfer"], made.body["transfer"], "the first transfer");
    let conflict = transfer(&f, &payer, &payee, 301, "t-1").await;
    assert_eq!(conflict.status, 409, "{}", conflict.raw);
    assert_eq!(conflict.body["type"], "urn:problem:reference-conflict");
    assert_eq!(balances(&f, &[&payer, &payee]).await, [700, 300]);
    let read = f.call("GET", "/transfers/t-1", None).await;
    assert_eq!(read.status, 200, "{}", read.raw);
    assert_eq!(read.body["amount_minor"], 300);
    let legs = f.call("GET", &format!("/accounts/{payee}/transactions"), None).await;
    assert_eq!(legs.body["items"][0]["kind"], "transfer", "{}", legs.raw);
    assert_eq!(legs.body["items"][0]["transfer"], "t-1");
    assert_sound(&f).await;
}

/// The defect: a payee that does not exist took the payer's money. Now the
/// transfer is refused whole, naming the payee, and nothing moves.
#[tokio::test]
async fn a_payee_that_cannot_receive_moves_nothing() {
    let f = common::fixture().await;
    let payer = f.account_with("EUR", 1_000).await;
    let dollars = f.account_with("USD", 0).await;
    let nobody = "00000000-0000-4000-8000-000000000000";
    for (to, kind, field) in [
        (nobody, "urn:problem:unknown-account", "to_account"),
        (dollars.as_str(), "urn:problem:currency-mismatch", "to_account"),
    ] {
        let refused = transfer(&f, &payer, to, 300, &format!("t-{to}")).await;
        assert_eq!(refused.status, 422, "{}", refused.raw);
        assert_eq!(refused.body["type"], kind, "{}", refused.raw);
        assert_eq!(refused.body["errors"][0]["field"], field, "{}", refused.raw);
    }
    let from_nobody = transfer(&f, nobody, &payer, 1, "t-from-nobody").await;
    assert_eq!(
        from_nobody.body["errors"][0]["field"], "from_account",
        "{}",
        from_nobody.raw
    );
    let over = transfer(&f, &payer, &dollars, 5_000, "t-over").await;
    assert_eq!(over.status, 422, "{}", over.raw);
    assert_eq!(f.snapshot(&payer).await, (1_000, 1), "only the seed credit");
    assert_eq!(f.snapshot(&dollars).await, (0, 0));
    assert_sound(&f).await;
}

#[tokio::test]
async fn a_cancelled_reference_never_applies_and_an_applied_one_cannot_be_cancelled() {
    let f = common::fixture().await;
    let (payer, payee) = (f.account_with("EUR", 1_000).await, f.account_with("EUR", 0).await);
    let body = |reference: &str| {
        json!({"from_account": payer, "to_account": payee, "amount_minor": 100, "currency": "EUR", "reference": reference})
            .to_string()
    };
    let cancelled = f.call("POST", "/transfers/cancellations", Some(&body("late"))).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.raw);
    assert_eq!(cancelled.body["state"], "cancelled");
    let late = transfer(&f, &payer, &payee, 100, "late").await;
    assert_eq!(late.status, 409, "{}", late.raw);
    assert_eq!(late.body["type"], "urn:problem:transfer-cancelled");
    let again = f.call("POST", "/transfers/cancellations", Some(&body("late"))).await;
    assert_eq!(again.body["state"], "cancelled", "a cancel repeats");

    assert_eq!(transfer(&f, &payer, &payee, 100, "early").await.status, 201);
    let too_late = f.call("POST", "/transfers/cancellations", Some(&body("early"))).await;
    assert_eq!(too_late.status, 200, "{}", too_late.raw);
    assert_eq!(
        too_late.body["state"], "applied",
        "the cancel reports that it had applied"
    );
    assert_eq!(balances(&f, &[&payer, &payee]).await, [900, 100]);
    assert_sound(&f).await;
}

/// The defect: voiding a completed payment's debit gave the payer the money
/// back while the payee kept it. A leg of a transfer is never voided alone.
#[tokio::test]
async fn a_leg_of_a_transfer_cannot_be_voided() {
    let f = common::fixture().await;
    let (payer, payee) = (f.account_with("EUR", 1_000).await, f.account_with("EUR", 0).await);
    assert_eq!(transfer(&f, &payer, &payee, 400, "pay-1").await.status, 201);
    for account in [&payer, &payee] {
        let void = f
            .call(
                "POST",
                &format!("/accounts/{account}/voids"),
                Some(r#"{"reference":"pay-1"}"#),
            )
            .await;
        assert_eq!(void.status, 409, "{}", void.raw);
        assert_eq!(void.body["type"], "urn:problem:transfer-leg");
    }
    // An external debit with the transfer's reference is a different posting.
    let reuse = f
        .call(
            "POST",
            &format!("/accounts/{payer}/debits"),
            Some(r#"{"amount_minor":400,"currency":"EUR","reference":"pay-1"}"#),
        )
        .await;
    assert_eq!(reuse.status, 409, "{}", reuse.raw);
    assert_eq!(balances(&f, &[&payer, &payee]).await, [600, 400]);
    assert_sound(&f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_out_of_one_account_never_overdraw_it() {
    let f = common::fixture().await;
    let payer = f.account_with("EUR", 1_000).await;
    let payees = [f.account_with("EUR", 0).await, f.account_with("EUR", 0).await];
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let (f, payer, payee) = (f.clone(), payer.clone(), payees[i % 2].clone());
            tokio::spawn(async move { transfer(&f, &payer, &payee, 70, &format!("c-{i}")).await })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            201 => made += 1,
            422 => assert_eq!(reply.body["type"], "urn:problem:insufficient-funds", "{}", reply.raw),
            other => panic!("unexpected {other}: {}", reply.raw),
        }
    }
    assert_eq!(made, 14, "1000 / 70 = 14 transfers fit");
    let all = balances(&f, &[&payer, &payees[0], &payees[1]]).await;
    assert_eq!(all[0], 1_000 - 14 * 70);
    assert_eq!(all.iter().sum::<u64>(), 1_000, "no money made or lost");
    assert_sound(&f).await;
}

#[tokio::test]
async fn bad_transfers_name_the_field_and_are_problems() {
    let f = common::fixture().await;
    let payer = f.account_with("EUR", 10).await;
    let cases: [(Value, &str); 5] = [
        (
            json!({"from_account": payer, "to_account": payer, "amount_minor": 1, "currency": "EUR", "reference": "r"}),
            "to_account",
        ),
        (
            json!({"from_account": "x", "to_account": payer, "amount_minor": 1, "currency": "EUR", "reference": "r"}),
            "from_account",
        ),
        (
            json!({"from_account": payer, "to_account": payer, "amount_minor": 0, "currency": "EUR", "reference": "r"}),
            "to_account",
        ),
        (
            json!({"from_account": payer, "to_account": "00000000-0000-4000-8000-000000000001", "amount_minor": 0, "currency": "EUR", "reference": "r"}),
            "amount_minor",
        ),
        (
            json!({"from_account": payer, "to_account": "00000000-0000-4000-8000-000000000001", "amount_minor": 1, "currency": "EUR", "reference": "r r"}),
            "reference",
        ),
    ];
    for (body, field) in cases {
        let reply = f.call("POST", "/transfers", Some(&body.to_string())).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.raw);
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}: {}", reply.raw);
    }
    let bad_path = f.call("GET", "/transfers/has%20space", None).await;
    assert_eq!(bad_path.status, 422, "{}", bad_path.raw);
    assert_eq!(bad_path.headers["content-type"], "application/problem+json");
    assert_eq!(f.snapshot(&payer).await, (10, 1));
    assert_sound(&f).await;
}

/// Found by the attack on this change: reversals were posted as
/// `void-<reference>`, a name callers may use, so a caller's own posting
/// was taken for the reversal and a void "succeeded" without moving money.
#[tokio::test]
async fn a_callers_posting_is_never_taken_for_a_reversal() {
    let f = common::fixture().await;
    let id = f.account_with("EUR", 0).await;
    let post = |kind: &str, amount: u64, reference: &str| {
        let body = json!({"amount_minor": amount, "currency": "EUR", "reference": reference}).to_string();
        let (f, path) = (f.clone(), format!("/accounts/{id}/{kind}"));
        async move { f.call("POST", &path, Some(&body)).await }
    };
    let void = |reference: &str| {
        let body = json!({"reference": reference}).to_string();
        let (f, path) = (f.clone(), format!("/accounts/{id}/voids"));
        async move { f.call("POST", &path, Some(&body)).await }
    };
    assert_eq!(post("credits", 100, "c1").await.status, 201);
    assert_eq!(post("debits", 100, "void-c1").await.status, 201, "a caller's payout");
    let refused = void("c1").await;
    assert_eq!(
        refused.status, 422,
        "the deposit is spent; it cannot be reversed: {}",
        refused.raw
    );
    assert_eq!(refused.body["type"], "urn:problem:insufficient-funds");
    assert_eq!(f.snapshot(&id).await.0, 0);

    assert_eq!(post("credits", 100, "c2").await.status, 201);
    assert_eq!(post("debits", 30, "d1").await.status, 201);
    assert_eq!(post("credits", 30, "void-d1").await.status, 201, "a caller's refund");
    let reversed = void("d1").await;
    assert_eq!(reversed.status, 200, "{}", reversed.raw);
    assert_eq!(reversed.body["outcome"], "reversed");
    assert_eq!(reversed.body["reversal"]["reference"], "void#d1");
    assert_eq!(
        f.snapshot(&id).await.0,
        130,
        "the debit came back, beside the caller's refund"
    );
    assert_eq!(
        void("d1").await.body["reversal"],
        reversed.body["reversal"],
        "a void repeats"
    );
    assert_sound(&f).await;
}
