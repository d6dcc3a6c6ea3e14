//! Accounts failing at each point of a payment: no money is created or
//! lost, and the payment ends failed with the reason.

mod common;

use std::time::Duration;

use common::{Fault, Faults, body, instance_id, stack};

/// Pays 300 from a payer holding 1000 under `faults`, then checks that the
/// sum of both balances is unchanged, each account is back where it was, and
/// the payment failed with a reason containing `reason`.
async fn check(faults: Faults, status: u16, reason: &str) -> (common::Stack, String, String, String) {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(faults);
    let reply = s.pay(Some("fault"), &body(&payer, &payee, 300)).await;
    assert_eq!(reply.status, status, "{}", reply.raw);
    let id = instance_id(&reply);
    s.set(Faults::default());
    // A slow call payments gave up on still lands later: wait it out.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        (s.balance(&payer).await, s.balance(&payee).await),
        (1_000, 0),
        "no money created or lost"
    );
    let payment = s.payment(&id).await;
    assert_eq!(payment["status"], "failed", "{payment}");
    let why = payment["failure_reason"].as_str().unwrap();
    assert!(why.contains(reason), "{why}");
    (s, payer, payee, id)
}

#[tokio::test]
async fn accounts_unavailable_for_the_debit() {
    check(
        Faults {
            debits: Fault::Unavailable,
            ..Faults::default()
        },
        503,
        "debit outcome unknown",
    )
    .await;
}

#[tokio::test]
async fn accounts_too_slow_for_the_debit_which_lands_after_payments_gave_up() {
    let (s, payer, _, _) = check(
        Faults {
            debits: Fault::Slow(Duration::from_millis(500)),
            ..Faults::default()
        },
        503,
        "did not answer in time",
    )
    .await;
    let debits = s.postings(&payer).await.into_iter().filter(|p| p.0 == "debit").count();
    assert_eq!(
        debits, 0,
        "the late debits were refused: their reference was voided first"
    );
}

#[tokio::test]
async fn accounts_failing_between_debit_and_credit() {
    let (s, payer, payee, _) = check(
        Faults {
            credits: Fault::Unavailable,
            ..Faults::default()
        },
        503,
        "credit outcome unknown",
    )
    .await;
    let kinds: Vec<String> = s.postings(&payer).await.into_iter().map(|p| p.0).collect();
    assert_eq!(
        kinds,
        ["credit", "debit", "credit"],
        "seed, the debit, and its reversal"
    );
    assert!(s.postings(&payee).await.is_empty());
}

#[tokio::test]
async fn accounts_too_slow_for_the_credit() {
    check(
        Faults {
            credits: Fault::Slow(Duration::from_millis(500)),
            ..Faults::default()
        },
        503,
        "credit outcome unknown",
    )
    .await;
}

#[tokio::test]
async fn a_credit_refused_by_accounts_is_compensated() {
    let s = stack().await;
    let payer = s.account(1_000).await;
    let dollars = s.account_in("USD", 0).await;
    let reply = s.pay(Some("usd"), &body(&payer, &dollars, 300)).await;
    assert_eq!(reply.status, 422, "{}", reply.raw);
    assert_eq!((s.balance(&payer).await, s.balance(&dollars).await), (1_000, 0));
    let payment = s.payment(&instance_id(&reply)).await;
    assert!(
        payment["failure_reason"]
            .as_str()
            .unwrap()
            .starts_with("credit refused"),
        "{payment}"
    );
}

#[tokio::test]
async fn an_overdraft_is_refused_without_moving_money() {
    let s = stack().await;
    let (payer, payee) = (s.account(100).await, s.account(0).await);
    let reply = s.pay(Some("over"), &body(&payer, &payee, 300)).await;
    assert_eq!(reply.status, 422, "{}", reply.raw);
    assert!(
        reply.body["detail"].as_str().unwrap().contains("insufficient funds"),
        "{}",
        reply.raw
    );
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (100, 0));
}

#[tokio::test]
async fn compensation_that_cannot_finish_is_resumed_later() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults {
        credits: Fault::Unavailable,
        voids: Fault::Unavailable,
        ..Faults::default()
    });
    let reply = s.pay(Some("stuck"), &body(&payer, &payee, 300)).await;
    assert_eq!(reply.status, 503, "{}", reply.raw);
    assert_eq!(reply.body["type"], "urn:problem:payment-compensating");
    let id = instance_id(&reply);
    assert_eq!(s.payment(&id).await["status"], "compensating");
    assert_eq!(s.balance(&payer).await, 700, "debited, not yet moved back");
    s.set(Faults::default());
    let resumed = s
        .send(
            axum::http::Request::post(format!("/payments/{id}/resume"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(resumed.status, 503, "ends failed after compensation: {}", resumed.raw);
    assert_eq!(s.payment(&id).await["status"], "failed");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (1_000, 0));
}

#[tokio::test]
async fn a_payment_interrupted_after_its_debit_resumes_to_completion() {
    use payments::domain::{Action, Outcome, Payment, PaymentRequest, Status};
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    let request: PaymentRequest = serde_json::from_str(&body(&payer, &payee, 250)).unwrap();
    let mut payment = Payment::new(&request.validate(u64::MAX).unwrap());
    // The crash: the debit went through and was recorded, the credit never ran.
    let debit = accounts::domain::Posting::parse(
        accounts::domain::Direction::Debit,
        250,
        "EUR",
        &payment.debit_reference(),
        u64::MAX,
    )
    .unwrap();
    s.accounts
        .store
        .post(accounts::domain::AccountId::parse(&payer).unwrap(), &debit)
        .await
        .unwrap();
    payment.record(Action::Debit, Outcome::Succeeded, "debited", Status::Debited);
    s.payments_state.store.save(&payment, None).await.unwrap();
    let resumed = s
        .send(
            axum::http::Request::post(format!("/payments/{}/resume", payment.id))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.raw);
    assert_eq!(resumed.body["status"], "completed");
    assert_eq!(
        (s.balance(&payer).await, s.balance(&payee).await),
        (750, 250),
        "moved exactly once"
    );
    let again = s
        .send(
            axum::http::Request::post(format!("/payments/{}/resume", payment.id))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.status, 200, "resuming a finished payment changes nothing");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (750, 250));
}
