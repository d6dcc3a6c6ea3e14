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
    assert_eq!(
        made.headers["location"].to_str().unwrap(),
        format!("/accounts/{payer}/transfers/t-1")
    );
    let again = transfer(&f, &payer, &payee, 300, "t-1").await;
    assert_eq!(again.status, 200, "{}", again.raw);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(again.body["transfer"], made.body["transfer"], "the first transfer");
    let conflict = transfer(&f, &payer, &payee, 301, "t-1").await;
    assert_eq!(conflict.status, 409, "{}", conflict.raw);
    assert_eq!(conflict.body["type"], "urn:problem:reference-conflict");
    assert_eq!(balances(&f, &[&payer, &payee]).await, [700, 300]);
    let read = f.call("GET", &format!("/accounts/{payer}/transfers/t-1"), None).await;
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
/// back while the payee kept it. A leg of a transfer is never voided alone:
/// the payer's is refused, and the payee's is not theirs to name (the
/// reference is the payer's), so a void there blocks the payee's own
/// reference and reverses nothing.
#[tokio::test]
async fn a_leg_of_a_transfer_cannot_be_voided() {
    let f = common::fixture().await;
    let (payer, payee) = (f.account_with("EUR", 1_000).await, f.account_with("EUR", 0).await);
    assert_eq!(transfer(&f, &payer, &payee, 400, "pay-1").await.status, 201);
    let void = |account: String| {
        let f = f.clone();
        async move {
            f.call(
                "POST",
                &format!("/accounts/{account}/voids"),
                Some(r#"{"reference":"pay-1"}"#),
            )
            .await
        }
    };
    let refused = void(payer.clone()).await;
    assert_eq!(refused.status, 409, "{}", refused.raw);
    assert_eq!(refused.body["type"], "urn:problem:transfer-leg");
    let blocked = void(payee.clone()).await;
    assert_eq!(blocked.status, 200, "{}", blocked.raw);
    assert_eq!(blocked.body["outcome"], "blocked", "{}", blocked.raw);
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
    let bad_path = f
        .call("GET", &format!("/accounts/{payer}/transfers/has%20space"), None)
        .await;
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

/// As the payments service acting for `customer`.
async fn call_as(f: &Fixture, customer: &str, method: &str, path: &str, body: Option<&str>) -> common::Reply {
    f.call_with(method, path, body, &f.service_token, &[("x-on-behalf-of", customer)])
        .await
}

/// An account `customer` opened, credited with `balance` by the back office.
async fn account_of(f: &Fixture, customer: &str, currency: &str, balance: u64) -> String {
    let body = json!({"holder": "T", "currency": currency}).to_string();
    let opened = call_as(f, customer, "POST", "/accounts", Some(&body)).await;
    assert_eq!(opened.status, 201, "{}", opened.raw);
    let id = opened.body["id"].as_str().unwrap().to_owned();
    if balance > 0 {
        let body = json!({"amount_minor": balance, "currency": currency, "reference": "seed"}).to_string();
        let credited = f
            .call_with(
                "POST",
                &format!("/accounts/{id}/credits"),
                Some(&body),
                &f.back_office_token,
                &[],
            )
            .await;
        assert_eq!(credited.status, 201, "{}", credited.raw);
    }
    id
}

fn movement(from: &str, to: &str, amount: u64, reference: &str) -> String {
    json!({"from_account": from, "to_account": to, "amount_minor": amount, "currency": "EUR", "reference": reference})
        .to_string()
}

/// Found by the attack on ownership: references were one namespace for
/// everyone, so a stranger could squat a customer's guessable reference by
/// paying them a cent under it, or by cancelling it out of their own
/// account. A reference is the payer's: nothing a stranger does takes it.
#[tokio::test]
async fn a_stranger_cannot_take_or_block_a_customers_reference() {
    let f = common::fixture().await;
    let (victim, stranger) = ("victim-f3", "stranger-f3");
    let (mine, savings) = (
        account_of(&f, victim, "EUR", 1_000).await,
        account_of(&f, victim, "EUR", 0).await,
    );
    let theirs = account_of(&f, stranger, "EUR", 100).await;
    let paid = call_as(
        &f,
        stranger,
        "POST",
        "/transfers",
        Some(&movement(&theirs, &mine, 1, "rent-dec")),
    )
    .await;
    assert_eq!(paid.status, 201, "{}", paid.raw);
    let cancelled = call_as(
        &f,
        stranger,
        "POST",
        "/transfers/cancellations",
        Some(&movement(&theirs, &mine, 5, "invoice-7")),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.raw);
    assert_eq!(cancelled.body["state"], "cancelled");
    let impersonated = call_as(
        &f,
        stranger,
        "POST",
        "/transfers/cancellations",
        Some(&movement(&mine, &savings, 5, "invoice-8")),
    )
    .await;
    assert_eq!(impersonated.status, 422, "{}", impersonated.raw);
    assert_eq!(
        impersonated.body["errors"][0]["field"], "from_account",
        "{}",
        impersonated.raw
    );
    for reference in ["rent-dec", "invoice-7", "invoice-8"] {
        let made = call_as(
            &f,
            victim,
            "POST",
            "/transfers",
            Some(&movement(&mine, &savings, 300, reference)),
        )
        .await;
        assert_eq!(made.status, 201, "{reference}: {}", made.raw);
        assert_eq!(made.body["transfer"]["state"], "applied", "{reference}: {}", made.raw);
    }
    assert_eq!(balances(&f, &[&mine, &savings, &theirs]).await, [101, 900, 99]);
    // The stranger's transfer is read by its payer and its payee; the
    // victim's own is nobody else's business.
    let path = format!("/accounts/{theirs}/transfers/rent-dec");
    for customer in [victim, stranger] {
        let read = call_as(&f, customer, "GET", &path, None).await;
        assert_eq!(read.status, 200, "{customer}: {}", read.raw);
        assert_eq!(read.body["amount_minor"], 1, "{}", read.raw);
    }
    let hidden = call_as(
        &f,
        stranger,
        "GET",
        &format!("/accounts/{mine}/transfers/rent-dec"),
        None,
    )
    .await;
    let missing = call_as(
        &f,
        stranger,
        "GET",
        &format!("/accounts/{savings}/transfers/rent-dec"),
        None,
    )
    .await;
    assert_eq!((hidden.status, &hidden.body), (404, &missing.body), "{}", hidden.raw);
    assert_sound(&f).await;
}

/// Two payers may each use one reference, even for the same payee: each
/// transfer is its payer's, replays as its own, and is read at its payer.
#[tokio::test]
async fn two_payers_may_use_one_reference_for_one_payee() {
    let f = common::fixture().await;
    let (a, b) = (
        account_of(&f, "payer-a", "EUR", 100).await,
        account_of(&f, "payer-b", "EUR", 100).await,
    );
    let shop = account_of(&f, "shop", "EUR", 0).await;
    for (customer, from, amount) in [("payer-a", &a, 10), ("payer-b", &b, 20)] {
        let body = movement(from, &shop, amount, "order-1");
        let made = call_as(&f, customer, "POST", "/transfers", Some(&body)).await;
        assert_eq!(made.status, 201, "{customer}: {}", made.raw);
        let again = call_as(&f, customer, "POST", "/transfers", Some(&body)).await;
        assert_eq!(again.status, 200, "{customer}: {}", again.raw);
        assert_eq!(
            again.body["transfer"], made.body["transfer"],
            "{customer}'s own transfer"
        );
        let read = call_as(&f, "shop", "GET", &format!("/accounts/{from}/transfers/order-1"), None).await;
        assert_eq!(read.body["amount_minor"], amount, "{}", read.raw);
    }
    let other_body = call_as(
        &f,
        "payer-b",
        "POST",
        "/transfers",
        Some(&movement(&b, &shop, 10, "order-1")),
    )
    .await;
    assert_eq!(other_body.status, 409, "{}", other_body.raw);
    assert_eq!(other_body.body["type"], "urn:problem:reference-conflict");
    assert_eq!(balances(&f, &[&a, &b, &shop]).await, [90, 80, 30]);
    assert_sound(&f).await;
}

/// Moves the transfer record of `reference` from its key to the key every
/// transfer had before references were the payer's, and claims the
/// reference on the payee as that code did: the table as an upgrade finds it.
async fn as_written_before(f: &Fixture, payer: &str, payee: &str, reference: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let client = aws_sdk_dynamodb::Client::new(&local_aws::test_sdk_config().await);
    let table = &f.state.config.table_name;
    let s = |value: String| AttributeValue::S(value);
    let key = [
        ("pk", s(format!("ACCOUNT#{payer}"))),
        ("sk", s(format!("TRANSFER#{reference}"))),
    ];
    let deleted = key
        .into_iter()
        .fold(client.delete_item(), |delete, (name, value)| delete.key(name, value))
        .table_name(table)
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    let mut item = deleted.attributes.expect("the transfer was recorded under its payer");
    item.insert(String::from("pk"), s(format!("TRANSFER#{reference}")));
    item.insert(String::from("sk"), s(String::from("TRANSFER")));
    let applied = item["state"] == s(String::from("applied"));
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    if applied {
        let legs = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :tx)")
            .expression_attribute_values(":pk", s(format!("ACCOUNT#{payee}")))
            .expression_attribute_values(":tx", s(String::from("TX#")))
            .send()
            .await
            .unwrap();
        let mut credit = legs
            .items()
            .iter()
            .find(|leg| leg.get("reference") == Some(&s(reference.to_owned())))
            .expect("the credit leg")
            .clone();
        credit.insert(String::from("sk"), s(format!("REF#{reference}")));
        client
            .put_item()
            .table_name(table)
            .set_item(Some(credit))
            .send()
            .await
            .unwrap();
    }
}

/// Transfers written before references were the payer's, found by an
/// upgrade: one that applied replays (a payment in flight across the
/// upgrade hears that its money moved), one that was cancelled never
/// applies, and their references stay their payer's.
#[tokio::test]
async fn transfers_written_before_references_were_the_payers_still_hold() {
    let f = common::fixture().await;
    let customer = f.customer.subject.clone();
    let (payer, payee) = (
        account_of(&f, &customer, "EUR", 1_000).await,
        account_of(&f, "payee-legacy", "EUR", 0).await,
    );
    let applied = movement(&payer, &payee, 300, "legacy-applied");
    let cancelled = movement(&payer, &payee, 200, "legacy-cancelled");
    assert_eq!(
        call_as(&f, &customer, "POST", "/transfers", Some(&applied))
            .await
            .status,
        201
    );
    assert_eq!(
        call_as(&f, &customer, "POST", "/transfers/cancellations", Some(&cancelled))
            .await
            .status,
        200
    );
    as_written_before(&f, &payer, &payee, "legacy-applied").await;
    as_written_before(&f, &payer, &payee, "legacy-cancelled").await;

    let replayed = call_as(&f, &customer, "POST", "/transfers", Some(&applied)).await;
    assert_eq!(replayed.status, 200, "{}", replayed.raw);
    assert_eq!(replayed.body["replayed"], true, "{}", replayed.raw);
    let cancel = call_as(&f, &customer, "POST", "/transfers/cancellations", Some(&applied)).await;
    assert_eq!(
        (cancel.status, &cancel.body["state"]),
        (200, &json!("applied")),
        "{}",
        cancel.raw
    );
    let never = call_as(&f, &customer, "POST", "/transfers", Some(&cancelled)).await;
    assert_eq!(never.status, 409, "{}", never.raw);
    assert_eq!(never.body["type"], "urn:problem:transfer-cancelled", "{}", never.raw);
    let again = call_as(&f, &customer, "POST", "/transfers/cancellations", Some(&cancelled)).await;
    assert_eq!(
        (again.status, &again.body["state"]),
        (200, &json!("cancelled")),
        "{}",
        again.raw
    );
    let read = call_as(
        &f,
        &customer,
        "GET",
        &format!("/accounts/{payer}/transfers/legacy-applied"),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.raw);
    // Found by the attack on this change: a legacy record stays its payer's.
    // Another payer may use the reference, and so may the payee, whose
    // account the old layout claimed it on when it was credited.
    let other = account_of(&f, "other-legacy", "EUR", 50).await;
    let theirs = call_as(
        &f,
        "other-legacy",
        "POST",
        "/transfers",
        Some(&movement(&other, &payee, 5, "legacy-applied")),
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.raw);
    let payees = call_as(
        &f,
        "payee-legacy",
        "POST",
        "/transfers",
        Some(&movement(&payee, &other, 1, "legacy-applied")),
    )
    .await;
    assert_eq!(payees.status, 201, "{}", payees.raw);
    assert_eq!(balances(&f, &[&payer, &payee, &other]).await, [700, 304, 46]);
    assert_sound(&f).await;
}

/// Found by the attack on ownership (F4): paying another customer's account
/// told the payer its currency, or that its balance was near the largest.
/// Why it cannot receive is the payee's business: one refusal says only
/// that, the same for either reason; the customer's own accounts still say
/// which.
#[tokio::test]
async fn why_another_customers_account_cannot_receive_is_theirs() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let f = common::fixture().await;
    let payer = account_of(&f, "payer-f4", "EUR", 1_000).await;
    let dollars = account_of(&f, "payee-f4", "USD", 0).await;
    let full = account_of(&f, "payee-f4", "EUR", 0).await;
    let own_dollars = account_of(&f, "payer-f4", "USD", 0).await;
    // A balance one minor unit short of the largest (no posting could put
    // it there: the audit is not asked about this table).
    let client = aws_sdk_dynamodb::Client::new(&local_aws::test_sdk_config().await);
    client
        .update_item()
        .table_name(&f.state.config.table_name)
        .key("pk", AttributeValue::S(format!("ACCOUNT#{full}")))
        .key("sk", AttributeValue::S(String::from("ACCOUNT")))
        .update_expression("SET balance = :b")
        .expression_attribute_values(
            ":b",
            AttributeValue::N((accounts::domain::MAX_BALANCE_MINOR - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
    let mut refusals = Vec::new();
    for (to, reference) in [(&dollars, "f4-currency"), (&full, "f4-limit")] {
        let refused = call_as(
            &f,
            "payer-f4",
            "POST",
            "/transfers",
            Some(&movement(&payer, to, 300, reference)),
        )
        .await;
        assert_eq!(refused.status, 422, "{}", refused.raw);
        assert_eq!(
            refused.body["type"], "urn:problem:payee-cannot-receive",
            "{}",
            refused.raw
        );
        assert_eq!(refused.body["errors"][0]["field"], "to_account", "{}", refused.raw);
        assert!(
            !refused.raw.contains("USD"),
            "the payee's currency leaked: {}",
            refused.raw
        );
        refusals.push(refused.body);
    }
    assert_eq!(refusals[0], refusals[1], "the two reasons look alike");
    // Found by the attack: the payee's currency was judged before the
    // payer's funds, so an empty account of one's own probed any account's
    // currency for free. A payer who cannot pay learns nothing of the payee.
    let empty = account_of(&f, "payer-f4", "USD", 0).await;
    let euros = account_of(&f, "payee-f4", "EUR", 0).await;
    for (to, reference) in [(&dollars, "f4-probe-usd"), (&euros, "f4-probe-eur")] {
        let body = json!({"from_account": empty, "to_account": to, "amount_minor": 1, "currency": "USD", "reference": reference});
        let probe = call_as(&f, "payer-f4", "POST", "/transfers", Some(&body.to_string())).await;
        assert_eq!(
            probe.body["type"], "urn:problem:insufficient-funds",
            "{reference}: {}",
            probe.raw
        );
    }
    let own = call_as(
        &f,
        "payer-f4",
        "POST",
        "/transfers",
        Some(&movement(&payer, &own_dollars, 300, "f4-own")),
    )
    .await;
    assert_eq!(own.body["type"], "urn:problem:currency-mismatch", "{}", own.raw);
    assert_eq!(own.body["errors"][0]["field"], "to_account", "{}", own.raw);
    assert_eq!(balances(&f, &[&payer, &dollars]).await, [1_000, 0]);
}

/// What the version before references were the payer's sends for a
/// transfer: both balance updates, the transfer record under the one
/// global key, and the reference claimed on the payer and on the payee,
/// each only if free (its legs' transaction items change no condition and
/// are left out). Whether DynamoDB took it.
async fn transfer_as_the_version_before(f: &Fixture, from: &str, to: &str, amount: u64, reference: &str) -> bool {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
    let client = aws_sdk_dynamodb::Client::new(&local_aws::test_sdk_config().await);
    let table = f.state.config.table_name.as_str();
    let s = |value: String| AttributeValue::S(value);
    let amount = AttributeValue::N(amount.to_string());
    let balance = |account: &str, expression: &str, condition: &str| {
        let update = Update::builder()
            .table_name(table)
            .key("pk", s(format!("ACCOUNT#{account}")))
            .key("sk", s(String::from("ACCOUNT")))
            .update_expression(expression)
            .condition_expression(condition)
            .expression_attribute_values(":amount", amount.clone())
            .build()
            .unwrap();
        TransactWriteItem::builder().update(update).build()
    };
    let claim = |pk: String, sk: String| {
        let put = Put::builder()
            .table_name(table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("reference", s(reference.to_owned()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .unwrap();
        TransactWriteItem::builder().put(put).build()
    };
    client
        .transact_write_items()
        .transact_items(balance(from, "SET balance = balance - :amount", "balance >= :amount"))
        .transact_items(balance(to, "SET balance = balance + :amount", "attribute_exists(pk)"))
        .transact_items(claim(format!("TRANSFER#{reference}"), String::from("TRANSFER")))
        .transact_items(claim(format!("ACCOUNT#{from}"), format!("REF#{reference}")))
        .transact_items(claim(format!("ACCOUNT#{to}"), format!("REF#{reference}")))
        .send()
        .await
        .is_ok()
}

/// Found by the attack on this change: during a traffic shift (and after a
/// rollback) the version before this one serves requests beside it. A
/// cancellation claims its reference on the payer, which that version's
/// transfer needs free, so a reference this version cancelled is never
/// applied by the other. (The other way round, a transfer this version
/// applied is unknown to that version: the runbook's "Upgrading across
/// the payer-keyed transfers" says how to deploy this release.)
#[tokio::test]
async fn a_reference_cancelled_here_is_never_applied_by_the_version_before() {
    let f = common::fixture().await;
    let customer = f.customer.subject.clone();
    let (payer, payee) = (
        account_of(&f, &customer, "EUR", 1_000).await,
        account_of(&f, "payee-before", "EUR", 0).await,
    );
    let cancelled = call_as(
        &f,
        &customer,
        "POST",
        "/transfers/cancellations",
        Some(&movement(&payer, &payee, 300, "mixed-1")),
    )
    .await;
    assert_eq!(cancelled.body["state"], "cancelled", "{}", cancelled.raw);
    assert!(!transfer_as_the_version_before(&f, &payer, &payee, 300, "mixed-1").await);
    assert_eq!(balances(&f, &[&payer, &payee]).await, [1_000, 0]);
    // The claim is a cancellation's: the back office's void of it reverses
    // nothing, and a transfer under it is still the cancelled one.
    let void = f
        .call_with(
            "POST",
            &format!("/accounts/{payer}/voids"),
            Some(r#"{"reference":"mixed-1"}"#),
            &f.back_office_token,
            &[],
        )
        .await;
    assert_eq!(
        (void.status, &void.body["outcome"]),
        (200, &json!("blocked")),
        "{}",
        void.raw
    );
    let again = call_as(
        &f,
        &customer,
        "POST",
        "/transfers",
        Some(&movement(&payer, &payee, 300, "mixed-1")),
    )
    .await;
    assert_eq!(again.body["type"], "urn:problem:transfer-cancelled", "{}", again.raw);
    assert_eq!(balances(&f, &[&payer, &payee]).await, [1_000, 0]);
    assert_sound(&f).await;
}
