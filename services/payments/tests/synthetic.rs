//! The traffic hooks' payments are synthetic (`shared::synthetic`): the
//! payment and its idempotency record are marked and expire, the money
//! moves between the hooks' own test accounts only, and no one else reads
//! them. Checked on the items in the tables.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use accounts::domain::{Direction, NewAccount, Posting, Records};
use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::Body;
use shared::synthetic::{EXPIRATION, MARKER, RETENTION};

use crate::common::{self, Reply, Stack};

/// A test account of the hooks' machine client holding `balance`.
async fn test_account(stack: &Stack, balance: u64) -> String {
    let store = &stack.accounts.store;
    let owner = &stack.identity.machine_client_id;
    let account = store
        .open(NewAccount::parse(owner, Records::Synthetic, "Traffic hook", "EUR").unwrap())
        .await
        .unwrap();
    if balance > 0 {
        let posting = Posting::parse(Direction::Credit, balance, "EUR", "seed", u64::MAX).unwrap();
        store.post(account.id, &posting, Records::Synthetic).await.unwrap();
    }
    account.id.to_string()
}

async fn pay(stack: &Stack, token: &str, key: &str, from: &str, to: &str) -> Reply {
    let body = format!(
        r#"{{"from_account":"{from}","to_account":"{to}","amount_minor":100,"currency":"EUR","reference":"{key}"}}"#
    );
    let mut request = axum::http::Request::post("/payments")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", key)
        .body(Body::from(body))
        .unwrap();
    request
        .extensions_mut()
        .insert(shared::http::Deadline::after(Duration::from_secs(15)));
    stack.send(request).await
}

async fn get(stack: &Stack, token: &str, id: &str) -> Reply {
    stack
        .send(
            axum::http::Request::get(format!("/payments/{id}"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
}

async fn scan(table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(&local_aws::test_sdk_config().await);
    let page = client
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert!(page.last_evaluated_key.is_none(), "a test table of one page");
    page.items().to_vec()
}

fn assert_synthetic(item: &HashMap<String, AttributeValue>) {
    assert_eq!(item.get(MARKER), Some(&AttributeValue::Bool(true)), "{item:?}");
    let expires = local_aws::tables::epoch_seconds(item, EXPIRATION)
        .unwrap_or_else(|| panic!("no numeric {EXPIRATION}: {item:?}"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    // A payment's item expires a week out; an idempotency record when its
    // key does (a day), sooner than the payment it replays.
    assert!(
        (now + 3600..=now + RETENTION.as_secs() + 5).contains(&expires),
        "{EXPIRATION} {expires}: {item:?}"
    );
}

#[tokio::test]
async fn the_hooks_payments_are_marked_and_move_money_between_their_own_accounts_only() {
    let stack = common::stack().await;
    let hooks = stack.identity.machine_token().await.expect("the hooks' customer token");
    let (payer, payee) = (test_account(&stack, 1000).await, test_account(&stack, 0).await);
    let customers = stack.account(1000).await;

    let paid = pay(&stack, &hooks, "hook-pay-1", &payer, &payee).await;
    assert_eq!(paid.status, 201, "{}", paid.raw);
    assert_eq!(paid.body["status"], "completed", "{}", paid.raw);
    let payment = paid.body["id"].as_str().unwrap().to_owned();
    assert_eq!((stack.balance(&payer).await, stack.balance(&payee).await), (900, 100));

    // To a customer's account, or from one to a test account: the payee
    // does not exist, and nothing moves.
    let crossing = pay(&stack, &hooks, "hook-pay-2", &payer, &customers).await;
    let from_customer = pay(
        &stack,
        &stack.customer.access_token,
        "customer-pay-1",
        &customers,
        &payee,
    )
    .await;
    for refused in [&crossing, &from_customer] {
        let settled = if refused.status == 201 || refused.status == 202 {
            stack.settle(refused.body["id"].as_str().unwrap(), 10).await
        } else {
            refused.body.clone()
        };
        assert!(
            settled["status"] == "failed" || refused.status == 422,
            "{}",
            refused.raw
        );
    }
    assert_eq!(stack.balance(&payer).await, 900);
    assert_eq!(stack.balance(&payee).await, 100);
    assert_eq!(stack.balance(&customers).await, 1000);

    // The hooks read their payment; no customer, and not the back office
    // acting for no one, does.
    assert_eq!(get(&stack, &hooks, &payment).await.status, 200);
    assert_eq!(get(&stack, &stack.customer.access_token, &payment).await.status, 404);
    let back_office = stack.identity.service_token().await.unwrap();
    assert_eq!(get(&stack, &back_office, &payment).await.status, 404);

    // In the tables: the hooks' payments and their idempotency records are
    // marked and expire; the customer's are not.
    let config = &stack.payments_state.config;
    let payments = scan(&config.table_name).await;
    let owner = |item: &HashMap<String, AttributeValue>| {
        item.get("payment")
            .and_then(|p| p.as_m().ok())
            .and_then(|p| p.get("owner"))
            .and_then(|o| o.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(payments.len(), 3, "{payments:#?}");
    for item in &payments {
        if owner(item) == stack.identity.machine_client_id {
            assert_synthetic(item);
        } else {
            assert!(!item.contains_key(MARKER) && !item.contains_key(EXPIRATION), "{item:?}");
        }
    }
    let records = scan(&config.idempotency_table).await;
    assert_eq!(records.len(), 3, "{records:#?}");
    let hooks_records: Vec<_> = records
        .iter()
        .filter(|r| {
            r.get("id")
                .and_then(|id| id.as_s().ok())
                .is_some_and(|id| id.contains(&stack.identity.machine_client_id))
        })
        .collect();
    assert_eq!(hooks_records.len(), 2, "{records:#?}");
    hooks_records.into_iter().for_each(assert_synthetic);
    let marked = records.iter().filter(|r| r.contains_key(MARKER)).count();
    assert_eq!(
        marked, 2,
        "the customer's idempotency record is not marked: {records:#?}"
    );
    stack.assert_ledger_sound().await;
}
