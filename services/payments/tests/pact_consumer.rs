//! The contract payments holds accounts to: every call `AccountsClient`
//! makes, with provider states, replayed against a Pact mock server.
//!
//! The pact is written to a scratch folder and compared with the committed
//! `pacts/payments-accounts.json`, so the committed file changes only when
//! the contract does: `cargo xtask pact` rewrites it (`PACT_UPDATE=1`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pact_consumer::builders::InteractionBuilder;
use pact_consumer::prelude::*;
use payments::accounts_client::{AccountsClient, Posting};
use payments::domain::{Outcome, Payment, PaymentRequest};
use serde_json::json;
use shared::secrets::{Secret, SecretStore, ServiceKey};

const ACCOUNT_EXAMPLE: &str = "6f1c3c52-7d2f-4a53-9a55-1d0f6a1b2c3d";
const DEBIT_REFERENCE: &str = "pay-019ac0a3a5e07b2c8a1d5e6f7a8b9c0d-debit";
const CREDIT_REFERENCE: &str = "pay-019ac0a3a5e07b2c8a1d5e6f7a8b9c0d-credit";
const DEBIT_PATTERN: &str = "^pay-[0-9a-f]{32}-debit$";
const CREDIT_PATTERN: &str = "^pay-[0-9a-f]{32}-credit$";

/// The pattern a payment's reference of this kind follows.
fn pattern(reference: &str) -> &'static str {
    if reference.ends_with("-debit") {
        DEBIT_PATTERN
    } else {
        CREDIT_PATTERN
    }
}

fn account_path(action: &str) -> (String, String) {
    (
        format!("/accounts/${{account_id}}/{action}"),
        format!("/accounts/{ACCOUNT_EXAMPLE}/{action}"),
    )
}

fn posting(i: &mut InteractionBuilder, action: &str, amount: u64, reference: &str) {
    let (expression, example) = account_path(action);
    i.request
        .post()
        .path_from_provider_state(expression, example.as_str())
        .header("Authorization", term!("^Bearer .+$", "Bearer test-service-key"))
        .header("Content-Type", "application/json")
        .json_body(json_pattern!({
            "amount_minor": amount,
            "currency": "EUR",
            "reference": term!(pattern(reference), reference),
        }));
}

fn created(i: &mut InteractionBuilder) {
    i.response
        .status(201)
        .header("Content-Type", "application/json")
        .json_body(
            json_pattern!({"transaction": {"id": term!("^[0-9a-f-]{36}$", "019ac0a3-a5e0-7b2c-8a1d-5e6f7a8b9c0d")}}),
        );
}

fn contract() -> PactBuilder {
    let mut pact = PactBuilder::new_v4("payments", "accounts");
    pact.interaction("a debit from an account that holds enough", "", |mut i| {
        i.given_with_params(
            "an account holding a balance",
            &json!({"balance_minor": 1000, "currency": "EUR"}),
        );
        posting(&mut i, "debits", 300, DEBIT_REFERENCE);
        created(&mut i);
        i
    })
    .interaction("a credit to an account", "", |mut i| {
        i.given_with_params(
            "an account holding a balance",
            &json!({"balance_minor": 0, "currency": "EUR"}),
        );
        posting(&mut i, "credits", 300, CREDIT_REFERENCE);
        created(&mut i);
        i
    })
    .interaction("a debit larger than the balance", "", |mut i| {
        i.given_with_params(
            "an account holding a balance",
            &json!({"balance_minor": 100, "currency": "EUR"}),
        );
        posting(&mut i, "debits", 5000, DEBIT_REFERENCE);
        i.response
            .status(422)
            .header("Content-Type", "application/problem+json")
            .json_body(json_pattern!({
                "type": "urn:problem:insufficient-funds",
                "detail": like!("insufficient funds: balance 100, debit 5000"),
            }));
        i
    })
    .interaction("voiding a posted debit", "", |mut i| {
        i.given_with_params(
            "an account with a posted debit",
            &json!({"balance_minor": 1000, "currency": "EUR", "amount_minor": 300, "reference": DEBIT_REFERENCE}),
        );
        void(&mut i, DEBIT_REFERENCE, "reversed");
        i
    })
    .interaction("voiding a reference nothing was posted with", "", |mut i| {
        i.given_with_params(
            "an account holding a balance",
            &json!({"balance_minor": 0, "currency": "EUR"}),
        );
        void(&mut i, CREDIT_REFERENCE, "blocked");
        i
    });
    pact
}

fn void(i: &mut InteractionBuilder, reference: &str, outcome: &str) {
    let (expression, example) = account_path("voids");
    i.request
        .post()
        .path_from_provider_state(expression, example.as_str())
        .header("Authorization", term!("^Bearer .+$", "Bearer test-service-key"))
        .header("Content-Type", "application/json")
        .json_body(json_pattern!({"reference": term!(pattern(reference), reference)}));
    i.response
        .status(200)
        .header("Content-Type", "application/json")
        .json_body(json_pattern!({"outcome": term!("^(reversed|blocked)$", outcome)}));
}

fn client(base: &str) -> AccountsClient {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .build();
    let key = Secret::new(ServiceKey {
        api_key: String::from("test-service-key"),
    });
    let store = SecretStore::with_value(
        aws_sdk_secretsmanager::Client::from_conf(config),
        "unused",
        Duration::from_secs(3600),
        key,
    );
    AccountsClient::new(reqwest::Client::new(), base, Duration::from_secs(5), 1, Arc::new(store))
}

fn payment(amount: u64) -> Payment {
    let request: PaymentRequest = serde_json::from_value(json!({
        "from_account": ACCOUNT_EXAMPLE, "to_account": "0a8e4d3b-1c2f-4e5a-8b7c-9d0e1f2a3b4c",
        "amount_minor": amount, "currency": "EUR", "reference": "contract"
    }))
    .unwrap();
    Payment::new(&request.validate(u64::MAX).unwrap())
}

#[test]
fn payments_calls_to_accounts_match_the_committed_contract() {
    let scratch = std::env::temp_dir().join(format!("pacts-{}", uuid::Uuid::new_v4()));
    let account: uuid::Uuid = ACCOUNT_EXAMPLE.parse().unwrap();
    {
        let mut pact = contract();
        pact.with_output_dir(&scratch);
        let server = pact.start_mock_server(None, None);
        let base = server.url().to_string();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let accounts = client(&base);
            let paid = payment(300);
            let ok = accounts
                .post(Posting::Debit, account, &paid, &paid.debit_reference(), "c")
                .await;
            assert_eq!(ok.outcome, Outcome::Succeeded, "{}", ok.detail);
            assert!(ok.detail.starts_with("transaction "), "{}", ok.detail);
            let credit = accounts
                .post(Posting::Credit, account, &paid, &paid.credit_reference(), "c")
                .await;
            assert_eq!(credit.outcome, Outcome::Succeeded, "{}", credit.detail);
            let large = payment(5000);
            let refused = accounts
                .post(Posting::Debit, account, &large, &large.debit_reference(), "c")
                .await;
            assert_eq!(refused.outcome, Outcome::Refused, "{}", refused.detail);
            assert!(refused.detail.contains("insufficient-funds"), "{}", refused.detail);
            let reversed = accounts.void(account, &paid.debit_reference(), "c").await;
            assert_eq!(reversed.outcome, Outcome::Succeeded, "{}", reversed.detail);
            let blocked = accounts.void(account, &paid.credit_reference(), "c").await;
            assert_eq!(blocked.outcome, Outcome::Succeeded, "{}", blocked.detail);
        });
        // The mock server checks every interaction was hit and writes the pact on drop.
    }
    let written = std::fs::read_to_string(scratch.join("payments-accounts.json")).expect("pact written");
    let committed_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../pacts/payments-accounts.json");
    if std::env::var("PACT_UPDATE").is_ok_and(|v| v == "1") {
        std::fs::write(&committed_path, &written).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    assert!(
        parse(&written).is_some() && parse(&written) == parse(&committed),
        "the contract changed: review it and run `cargo xtask pact` to update pacts/payments-accounts.json\n{written}"
    );
}
