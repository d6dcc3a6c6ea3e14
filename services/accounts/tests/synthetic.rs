//! The traffic hooks' test data is synthetic (`shared::synthetic`): what the
//! hooks' machine client opens as a customer, and what the back office does
//! for it, is marked and expires; money never moves between it and a
//! customer's accounts; the back office acting for no one never touches
//! it; the ledger's audit of customers' money leaves it out. Checked on the
//! items in the table, not only on the answers.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use shared::synthetic::{EXPIRATION, MARKER, RETENTION};

use crate::common::{self, Fixture, Reply};

/// The hooks as a customer, and as the back office acting for themselves.
struct Hooks {
    customer: String,
    back_office: String,
    subject: String,
}

async fn hooks(f: &Fixture) -> Hooks {
    Hooks {
        customer: f.identity.machine_token().await.expect("the hooks' customer token"),
        back_office: f.back_office_token.clone(),
        subject: f.identity.machine_client_id.clone(),
    }
}

impl Hooks {
    async fn open(&self, f: &Fixture) -> String {
        let opened = f
            .call_with(
                "POST",
                "/accounts",
                Some(r#"{"holder":"Traffic hook","currency":"EUR"}"#),
                &self.customer,
                &[],
            )
            .await;
        assert_eq!(opened.status, 201, "{}", opened.raw);
        assert_eq!(opened.body["owner"], self.subject.as_str(), "{}", opened.raw);
        opened.body["id"].as_str().unwrap().to_owned()
    }

    async fn credit(&self, f: &Fixture, account: &str, amount: u64) -> Reply {
        let body = format!(
            r#"{{"amount_minor":{amount},"currency":"EUR","reference":"{}"}}"#,
            uuid::Uuid::new_v4()
        );
        f.call_with(
            "POST",
            &format!("/accounts/{account}/credits"),
            Some(&body),
            &self.back_office,
            &[("x-on-behalf-of", &self.subject)],
        )
        .await
    }

    async fn transfer(&self, f: &Fixture, from: &str, to: &str, amount: u64) -> Reply {
        f.call_with(
            "POST",
            "/transfers",
            Some(&transfer(from, to, amount)),
            &self.customer,
            &[],
        )
        .await
    }
}

fn transfer(from: &str, to: &str, amount: u64) -> String {
    format!(
        r#"{{"from_account":"{from}","to_account":"{to}","amount_minor":{amount},"currency":"EUR","reference":"{}"}}"#,
        uuid::Uuid::new_v4()
    )
}

/// Every item of the table, whatever it is.
async fn items(f: &Fixture) -> Vec<HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(&local_aws::test_sdk_config().await);
    let mut all = Vec::new();
    let mut start = None;
    for _ in 0..100 {
        let page = client
            .scan()
            .table_name(&f.state.config.table_name)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        all.extend(page.items().iter().cloned());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return all,
        }
    }
    panic!("the test table has more than 100 pages");
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// Whether an item belongs to `account`: its own, its postings and
/// references, and the transfers to or from it.
fn of(item: &HashMap<String, AttributeValue>, account: &str) -> bool {
    text(item, "pk") == format!("ACCOUNT#{account}")
        || text(item, "from_account") == account
        || text(item, "to_account") == account
}

fn assert_synthetic(item: &HashMap<String, AttributeValue>) {
    assert_eq!(item.get(MARKER), Some(&AttributeValue::Bool(true)), "{item:?}");
    let expires = local_aws::tables::epoch_seconds(item, EXPIRATION)
        .unwrap_or_else(|| panic!("no numeric {EXPIRATION}: {item:?}"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let week = RETENTION.as_secs();
    assert!(
        (now + week - 600..=now + week + 5).contains(&expires),
        "{EXPIRATION} {expires} is not a week from now ({now}): {item:?}"
    );
}

fn assert_customers(item: &HashMap<String, AttributeValue>) {
    assert!(
        !item.contains_key(MARKER) && !item.contains_key(EXPIRATION),
        "a customer's item is marked or expires: {item:?}"
    );
}

async fn balance(f: &Fixture, id: &str) -> u64 {
    f.state
        .store
        .get(accounts::domain::AccountId::parse(id).unwrap())
        .await
        .unwrap()
        .balance_minor
}

#[tokio::test]
async fn the_hooks_test_accounts_are_marked_expire_and_stay_apart_from_customers() {
    let f = common::fixture().await;
    let hooks = hooks(&f).await;
    let (test, other_test) = (hooks.open(&f).await, hooks.open(&f).await);
    let credited = hooks.credit(&f, &test, 1000).await;
    assert_eq!(credited.status, 201, "{}", credited.raw);
    let moved = hooks.transfer(&f, &test, &other_test, 100).await;
    assert_eq!(moved.status, 201, "{}", moved.raw);
    let customers = f.account_with("EUR", 1000).await;

    // Money never crosses: to a customer's account from a test account, or
    // the other way, is a transfer to an account that does not exist.
    for (payer, payee, as_whom) in [
        (&test, &customers, hooks.customer.as_str()),
        (&customers, &test, f.customer.access_token.as_str()),
    ] {
        let refused = f
            .call_with("POST", "/transfers", Some(&transfer(payer, payee, 50)), as_whom, &[])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.raw);
        assert_eq!(refused.body["errors"][0]["field"], "to_account", "{}", refused.raw);
    }
    // The back office acting for no one works on customers' accounts only.
    let no_one = |method: &'static str, path: String, body: Option<String>| {
        let f = f.clone();
        let token = hooks.back_office.clone();
        async move { f.call_with(method, &path, body.as_deref(), &token, &[]).await }
    };
    let posting = r#"{"amount_minor":5,"currency":"EUR","reference":"no-one-1"}"#;
    for (method, path, body) in [
        ("GET", format!("/accounts/{test}"), None),
        ("GET", format!("/accounts/{test}/transactions"), None),
        ("POST", format!("/accounts/{test}/credits"), Some(posting.to_owned())),
        ("POST", format!("/accounts/{test}/debits"), Some(posting.to_owned())),
        (
            "POST",
            format!("/accounts/{test}/voids"),
            Some(String::from(r#"{"reference":"no-one-1"}"#)),
        ),
    ] {
        let answer = no_one(method, path.clone(), body).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.raw);
    }
    let read = no_one("GET", format!("/accounts/{customers}"), None).await;
    assert_eq!(read.status, 200, "{}", read.raw);
    // …nor may a customer's own token, whoever names them.
    let theirs = f
        .call_with("GET", &format!("/accounts/{test}"), None, &f.customer.access_token, &[])
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.raw);
    assert_eq!((balance(&f, &test).await, balance(&f, &other_test).await), (900, 100));
    assert_eq!(balance(&f, &customers).await, 1000);

    // In the table: every item of a test account is marked and expires a
    // week out; no item of the customer's is.
    let items = items(&f).await;
    let test_items: Vec<_> = items.iter().filter(|i| of(i, &test) || of(i, &other_test)).collect();
    // Two accounts, the credit (transaction and reference), the transfer
    // record, both legs and the reference claimed on the payer.
    assert_eq!(test_items.len(), 8, "{test_items:#?}");
    test_items.into_iter().for_each(assert_synthetic);
    let customer_items: Vec<_> = items.iter().filter(|i| of(i, &customers)).collect();
    assert_eq!(customer_items.len(), 3, "{customer_items:#?}");
    customer_items.into_iter().for_each(assert_customers);

    // The audit of customers' money leaves the synthetic items out.
    let snapshot = f.state.store.snapshot().await.unwrap();
    let ids: Vec<String> = snapshot.accounts.iter().map(|a| a.id.to_string()).collect();
    assert!(
        ids.contains(&customers) && !ids.contains(&test) && !ids.contains(&other_test),
        "{ids:?}"
    );
    let audit = accounts::ledger::audit(&snapshot);
    assert!(audit.is_sound(), "{:#?}", audit.violations);
}

/// The back office acting for a customer reaches that customer's accounts
/// only, never the hooks' test accounts.
#[tokio::test]
async fn the_back_office_naming_a_customer_never_reaches_the_hooks_accounts() {
    let f = common::fixture().await;
    let hooks = hooks(&f).await;
    let test = hooks.open(&f).await;
    // The back office acting for the customer sees their accounts only.
    let answer = f.call("GET", &format!("/accounts/{test}"), None).await;
    assert_eq!(answer.status, 404, "{}", answer.raw);
    let credit = f
        .call(
            "POST",
            &format!("/accounts/{test}/credits"),
            Some(r#"{"amount_minor":5,"currency":"EUR","reference":"cross-1"}"#),
        )
        .await;
    assert_eq!(credit.status, 404, "{}", credit.raw);
    assert_eq!(balance(&f, &test).await, 0);
}

/// Found by the attack: a synthetic cancellation under a reference a
/// customer later uses must neither block that customer nor tell them what
/// became of it: a reference is the payer's, so the customer's transfer
/// applies, and the hooks' transfer stays invisible to them.
#[tokio::test]
async fn a_reference_claimed_by_the_hooks_is_not_the_customers() {
    let f = common::fixture().await;
    let hooks = hooks(&f).await;
    let test = hooks.open(&f).await;
    let customers = f.account_with("EUR", 1000).await;
    let reference = format!("squat-{}", uuid::Uuid::new_v4());
    let body = |from: &str, to: &str| {
        format!(
            r#"{{"from_account":"{from}","to_account":"{to}","amount_minor":50,"currency":"EUR","reference":"{reference}"}}"#
        )
    };
    let cancelled = f
        .call_with(
            "POST",
            "/transfers/cancellations",
            Some(&body(&test, &customers)),
            &hooks.customer,
            &[],
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.raw);
    let other = f.account_with("EUR", 0).await;
    let applied = f
        .call_with(
            "POST",
            "/transfers",
            Some(&body(&customers, &other)),
            &f.customer.access_token,
            &[],
        )
        .await;
    assert_eq!(applied.status, 201, "{}", applied.raw);
    assert_eq!(applied.body["transfer"]["state"], "applied", "{}", applied.raw);
    let read = f
        .call_with(
            "GET",
            &format!("/accounts/{test}/transfers/{reference}"),
            None,
            &f.customer.access_token,
            &[],
        )
        .await;
    assert_eq!(read.status, 404, "{}", read.raw);
    assert_eq!(balance(&f, &customers).await, 950);
    assert_eq!(balance(&f, &other).await, 50);
}

/// Found by the attack: the hooks' records written before records were
/// told apart (unmarked, owned by the hooks' client) must still replay: a
/// payment in flight when this version shipped retries its transfer, which
/// had applied, and must hear that it did — not that no money moved.
#[tokio::test]
async fn a_transfer_that_applied_replays_for_its_payer_whatever_its_records() {
    use accounts::domain::{Direction, NewAccount, NewTransfer, Posting, Records, Scope};
    let f = common::fixture().await;
    let hooks = hooks(&f).await;
    let store = &f.state.store;
    let unmarked = |_: ()| async {
        store
            .open(NewAccount::parse(&hooks.subject, Records::Customers, "Old hook", "EUR").unwrap())
            .await
            .unwrap()
            .id
    };
    let (payer, payee) = (unmarked(()).await, unmarked(()).await);
    let funding = Posting::parse(Direction::Credit, 1000, "EUR", "old-funding", u64::MAX).unwrap();
    store.post(payer, &funding, Records::Customers).await.unwrap();
    let reference = format!("pay-{}", uuid::Uuid::new_v4());
    let (from, to) = (payer.to_string(), payee.to_string());
    let new = NewTransfer::parse(&from, &to, 300, "EUR", &reference, u64::MAX).unwrap();
    let before = Scope {
        owner: Some(&hooks.subject),
        records: Records::Customers,
    };
    store.transfer(&new, before).await.unwrap();
    let body = format!(
        r#"{{"from_account":"{from}","to_account":"{to}","amount_minor":300,"currency":"EUR","reference":"{reference}"}}"#
    );
    let replayed = f
        .call_with("POST", "/transfers", Some(&body), &hooks.customer, &[])
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.raw);
    assert_eq!(replayed.body["replayed"], true, "{}", replayed.raw);
    let cancelled = f
        .call_with("POST", "/transfers/cancellations", Some(&body), &hooks.customer, &[])
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.raw);
    assert_eq!(cancelled.body["state"], "applied", "{}", cancelled.raw);
    assert_eq!((balance(&f, &from).await, balance(&f, &to).await), (700, 300));
}
