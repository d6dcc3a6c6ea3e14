//! Accounts failing at each point of a payment: no money is created, lost
//! or stranded, every payment ends final, and nothing internal reaches the
//! client.

use crate::common;

use std::time::Duration;

use common::{Fault, Faults, body, payment_id, stack};

/// No response or stored payment names a host, a URL or a library.
fn assert_quiet(text: &str) {
    for leak in ["127.0.0.1", "http://", "https://", "reqwest", "hyper", "error sending"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

/// The defect: a payment to an account that does not exist debited the
/// payer for good, and each retry stranded another debit.
#[tokio::test]
async fn a_payment_to_an_unknown_account_moves_nothing_however_often_it_is_sent() {
    let s = stack().await;
    let payer = s.account(1_000).await;
    let nobody = "00000000-0000-4000-8000-00000000dead";
    for attempt in 0..3 {
        let reply = s.pay(Some("to-nobody"), &body(&payer, nobody, 300)).await;
        assert_eq!(reply.status, 422, "{}", reply.raw);
        assert_eq!(reply.body["type"], "urn:problem:unknown-payee", "{}", reply.raw);
        assert_eq!(reply.body["errors"][0]["field"], "to_account");
        assert_eq!(reply.headers.contains_key("idempotent-replayed"), attempt > 0);
        assert_quiet(&reply.raw);
    }
    for (key, to) in [("fresh-1", nobody), ("fresh-2", nobody)] {
        assert_eq!(s.pay(Some(key), &body(&payer, to, 300)).await.status, 422);
    }
    assert_eq!(s.balance(&payer).await, 1_000, "nothing taken");
    assert_eq!(s.postings(&payer).await.len(), 1, "only the seed");
    s.assert_ledger_sound().await;
}

#[tokio::test]
async fn a_payee_in_another_currency_or_an_overdraft_moves_nothing() {
    let s = stack().await;
    let payer = s.account(1_000).await;
    let dollars = s.account_in("USD", 0).await;
    let euros = s.account(0).await;
    let usd = s.pay(Some("usd"), &body(&payer, &dollars, 300)).await;
    assert_eq!(usd.status, 422, "{}", usd.raw);
    assert_eq!(usd.body["type"], "urn:problem:currency-mismatch");
    assert_eq!(usd.body["errors"][0]["field"], "to_account");
    let over = s.pay(Some("over"), &body(&payer, &euros, 5_000)).await;
    assert_eq!(over.status, 422, "{}", over.raw);
    assert_eq!(over.body["type"], "urn:problem:insufficient-funds");
    let failed = s.payment(&payment_id(&over)).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure"]["code"], "refused");
    assert_eq!(failed["failure"]["reason"], "insufficient_funds");
    assert_eq!(
        (
            s.balance(&payer).await,
            s.balance(&dollars).await,
            s.balance(&euros).await
        ),
        (1_000, 0, 0)
    );
    s.assert_ledger_sound().await;
}

/// Accounts down for a while, then back: the payment is answered 202 (not
/// 503), keeps its key, and the sweeper completes it once. The budget
/// leaves the runner's reserve for moto's writes on a loaded machine (they
/// took over 300 ms in a full test run, and a 900 ms budget ran out), and
/// ends before the fixture's policy gives up (2 s).
#[tokio::test]
async fn accounts_down_then_back_the_sweeper_completes_the_payment_once() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults::all(Fault::Unavailable));
    let reply = s
        .pay_within(Some("later"), &body(&payer, &payee, 300), Duration::from_millis(1_600))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["last_cause"]["cause"], "server_error");
    assert_quiet(&reply.raw);
    let id = payment_id(&reply);
    assert_eq!(s.balance(&payer).await, 1_000);
    s.set(Faults::default());
    let done = s.settle(&id, 10).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (700, 300));
    let retry = s.pay(Some("later"), &body(&payer, &payee, 300)).await;
    assert_eq!(retry.status, 201, "the key's final answer: {}", retry.raw);
    assert_eq!(payment_id(&retry), id, "the same payment");
    assert_eq!(
        (s.balance(&payer).await, s.balance(&payee).await),
        (700, 300),
        "moved once"
    );
    s.assert_ledger_sound().await;
}

/// A transfer slower than payments waits still lands; the retry of the same
/// reference finds it applied, so the payment completes and nothing moves
/// twice. The transfer outlasts the whole budget, which leaves room for
/// moto's writes on a loaded machine.
#[tokio::test]
async fn a_transfer_that_lands_after_payments_gave_up_on_the_call_completes_once() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults {
        transfers: Fault::Slow(Duration::from_millis(2_500)),
        ..Faults::default()
    });
    let reply = s
        .pay_within(Some("slow"), &body(&payer, &payee, 250), Duration::from_millis(1_500))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    assert_eq!(reply.body["last_cause"]["cause"], "timeout", "{}", reply.raw);
    s.set(Faults::default());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let done = s.settle(&payment_id(&reply), 10).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (750, 250));
    s.assert_ledger_sound().await;
}

/// Accounts never answers within the give-up time: the sweeper cancels the
/// transfer's reference, the payment fails with nothing moved, and a
/// transfer still on its way can never apply.
#[tokio::test]
async fn a_payment_accounts_never_answers_is_cancelled_and_nothing_moves() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults {
        transfers: Fault::Unavailable,
        ..Faults::default()
    });
    let reply = s
        .pay_within(Some("never"), &body(&payer, &payee, 300), Duration::from_millis(600))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.raw);
    let id = payment_id(&reply);
    // Past give_up_after_seconds (2 s in these tests).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let done = s.settle(&id, 10).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["failure"]["code"], "abandoned", "{done}");
    assert_eq!(done["failure"]["cause"]["cause"], "server_error", "{done}");
    assert_quiet(&done.to_string());
    s.set(Faults::default());
    let answer = s.pay(Some("never"), &body(&payer, &payee, 300)).await;
    assert_eq!(answer.status, 422, "{}", answer.raw);
    assert_eq!(answer.body["type"], "urn:problem:accounts-unavailable");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (1_000, 0));
    s.assert_ledger_sound().await;
}

/// Cancels that cannot be made either keep the payment `cancelling` (not
/// final, counted by the sweeper) until accounts answers.
#[tokio::test]
async fn a_cancel_that_cannot_be_made_is_retried_until_it_is() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults::all(Fault::Unavailable));
    let reply = s
        .pay_within(Some("stuck"), &body(&payer, &payee, 300), Duration::from_millis(500))
        .await;
    let id = payment_id(&reply);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let swept = s.sweep(Duration::from_secs(1)).await;
    assert_eq!(swept.open, 1, "{swept:?}");
    assert_eq!(s.payment(&id).await["status"], "cancelling");
    s.set(Faults::default());
    let done = s.settle(&id, 10).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(s.sweep(Duration::from_secs(1)).await.open, 0, "nothing left open");
    assert_eq!((s.balance(&payer).await, s.balance(&payee).await), (1_000, 0));
    s.assert_ledger_sound().await;
}

/// The defect: a 5 s stall of accounts gave 25 s responses. Every call now
/// takes its budget from the invocation, so the answer comes in time.
#[tokio::test]
async fn a_stalled_accounts_never_keeps_a_request_past_its_deadline() {
    let s = stack().await;
    let (payer, payee) = (s.account(1_000).await, s.account(0).await);
    s.set(Faults::all(Fault::Slow(Duration::from_secs(30))));
    let payment = body(&payer, &payee, 100);
    let request = s.pay_within(Some("stall"), &payment, Duration::from_millis(1_800));
    // If payments outlived its invocation, this would give up first.
    let reply = tokio::time::timeout(Duration::from_secs(4), request)
        .await
        .expect("answered before the invocation's deadline");
    assert_eq!(reply.status, 202, "{}", reply.raw);
    s.set(Faults::default());
    let done = s.settle(&payment_id(&reply), 10).await;
    assert!(done["status"] == "completed" || done["status"] == "failed", "{done}");
    s.assert_ledger_sound().await;
}
