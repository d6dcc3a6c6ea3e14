//! 50 concurrent debits on one account: the exact expected balance, never negative.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_debits_leave_the_exact_balance() {
    let f = common::fixture().await;
    // Room for 40 debits of 25: ten of the fifty must be refused.
    let id = f.account_with("EUR", 1_000).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let fixture = f.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let body = format!(r#"{{"amount_minor": 25, "currency": "EUR", "reference": "c{i}"}}"#);
                fixture
                    .call("POST", &format!("/accounts/{id}/debits"), Some(&body))
                    .await
            })
        })
        .collect();
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            201 => accepted += 1,
            422 => {
                assert_eq!(reply.body["type"], "urn:problem:insufficient-funds", "{}", reply.raw);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.raw),
        }
    }
    assert_eq!((accepted, refused), (40, 10));
    let (balance, transactions) = f.snapshot(&id).await;
    assert_eq!(balance, 0);
    assert_eq!(transactions, 41, "one credit and forty debits");
}
