//! The contract payments holds accounts to: every call `AccountsClient`
//! makes (a transfer, a cancellation) and every answer it reads, with
//! provider states, replayed against a Pact mock server.
//!
//! The pact is written to a scratch folder and compared with the committed
//! `pacts/payments-accounts.json`, so the committed file changes only when
//! the contract does: `cargo xtask pact` rewrites it (`PACT_UPDATE=1`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pact_consumer::builders::{HttpPartBuilder, InteractionBuilder};
use pact_consumer::prelude::*;
use pact_models::expression_parser::DataType;
use pact_models::generators::Generator;
use payments::accounts_client::{AccountsClient, CallContext, Ledger, Ownership};
use payments::domain::{AccountId, NewPayment, Outcome, Payment, PaymentId, Refusal};
use serde_json::json;

const PAYER_EXAMPLE: &str = "6f1c3c52-7d2f-4a53-9a55-1d0f6a1b2c3d";
const PAYEE_EXAMPLE: &str = "0a8e4d3b-1c2f-4e5a-8b7c-9d0e1f2a3b4c";
/// An account of someone else's.
const STRANGERS_EXAMPLE: &str = "5d2e7f10-3a4b-4c5d-8e9f-a0b1c2d3e4f5";
/// The payments whose transfer references the examples carry: one per
/// interaction (by amount), as every payment has its own reference.
const PAYMENT_EXAMPLE: u128 = 0x019a_c0a3_a5e0_7b2c_8a1d_5e6f_7a8b_0000;
/// The customer payments acts for: the provider state's payer belongs to them.
const CUSTOMER: &str = "pact-customer";
/// Another customer, whose account a payee may be.
const SOMEONE_ELSE: &str = "pact-payee";
/// Payments' own access token (its machine client's, scope
/// `accounts/service`); the provider's verification sends a real one.
const BEARER_EXAMPLE: &str = "Bearer payments-machine-client-access-token";
const UUID: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

fn reference(amount: u64) -> String {
    payment(amount).transfer_reference()
}

/// A transfer (or cancellation) request whose parties come from the
/// provider state: the verifier puts the ids the state created in the body.
fn transfer_request(i: &mut InteractionBuilder, path: &str, amount: u64) {
    i.request
        .post()
        .path(path)
        .header("Authorization", term!("^Bearer .+$", BEARER_EXAMPLE))
        .header("X-On-Behalf-Of", term!("^.+$", CUSTOMER))
        .header("Content-Type", "application/json")
        .json_body(json_pattern!({
            "from_account": term!(UUID, PAYER_EXAMPLE),
            "to_account": term!(UUID, PAYEE_EXAMPLE),
            "amount_minor": amount,
            "currency": "EUR",
            "reference": term!("^pay-[0-9a-f]{32}$", reference(amount)),
        }))
        .body_generator(
            "$.from_account",
            Generator::ProviderStateGenerator(String::from("from_account"), Some(DataType::STRING)),
        )
        .body_generator(
            "$.to_account",
            Generator::ProviderStateGenerator(String::from("to_account"), Some(DataType::STRING)),
        );
}

/// `GET /accounts/{from_account}` (the example `account`) for the customer payments acts for.
fn read_account(i: &mut InteractionBuilder, account: &str) {
    i.request
        .get()
        .path_from_provider_state("/accounts/${from_account}", format!("/accounts/{account}"))
        .header("Authorization", term!("^Bearer .+$", BEARER_EXAMPLE))
        .header("X-On-Behalf-Of", term!("^.+$", CUSTOMER));
}

fn refused(i: &mut InteractionBuilder, status: u16, kind: &str, field: &str) {
    i.response
        .status(status)
        .header("Content-Type", "application/problem+json")
        .json_body(json_pattern!({
            "type": format!("urn:problem:{kind}"),
            "errors": [{"field": field}],
        }));
}

/// A payer of the customer's and a payee of `payee_customer`'s.
fn two_accounts(i: &mut InteractionBuilder, payer_balance: u64, payee_currency: &str, payee_customer: &str) {
    i.given_with_params(
        "two accounts",
        &json!({"payer_balance_minor": payer_balance, "currency": "EUR", "payee_currency": payee_currency, "customer": CUSTOMER, "payee_customer": payee_customer}),
    );
}

fn contract() -> PactBuilder {
    let mut pact = PactBuilder::new_v4("payments", "accounts");
    pact.interaction("a transfer the payer can make", "", |mut i| {
        two_accounts(&mut i, 1000, "EUR", SOMEONE_ELSE);
        transfer_request(&mut i, "/transfers", 300);
        i.response
            .status(201)
            .header("Content-Type", "application/json")
            .json_body(json_pattern!({"transfer": {"state": "applied"}}));
        i
    })
    .interaction("a transfer larger than the payer's balance", "", |mut i| {
        two_accounts(&mut i, 100, "EUR", SOMEONE_ELSE);
        transfer_request(&mut i, "/transfers", 5000);
        refused(&mut i, 422, "insufficient-funds", "amount_minor");
        i
    })
    .interaction("a transfer to an account that does not exist", "", |mut i| {
        i.given_with_params(
            "a payer and an unknown payee",
            &json!({"payer_balance_minor": 1000, "currency": "EUR", "customer": CUSTOMER}),
        );
        transfer_request(&mut i, "/transfers", 301);
        refused(&mut i, 422, "unknown-account", "to_account");
        i
    })
    .interaction("a transfer to the customer's own account in another currency", "", |mut i| {
        two_accounts(&mut i, 1000, "USD", CUSTOMER);
        transfer_request(&mut i, "/transfers", 302);
        refused(&mut i, 422, "currency-mismatch", "to_account");
        i
    })
    .interaction("a transfer to another customer's account in another currency", "", |mut i| {
        two_accounts(&mut i, 1000, "USD", SOMEONE_ELSE);
        transfer_request(&mut i, "/transfers", 305);
        refused(&mut i, 422, "payee-cannot-receive", "to_account");
        i
    })
    .interaction("cancelling a transfer that never applied", "", |mut i| {
        two_accounts(&mut i, 1000, "EUR", SOMEONE_ELSE);
        transfer_request(&mut i, "/transfers/cancellations", 304);
        i.response
            .status(200)
            .header("Content-Type", "application/json")
            .json_body(json_pattern!({"state": "cancelled"}));
        i
    })
    .interaction("reading the customer's own account", "", |mut i| {
        two_accounts(&mut i, 1000, "EUR", SOMEONE_ELSE);
        read_account(&mut i, PAYER_EXAMPLE);
        i.response
            .status(200)
            .header("Content-Type", "application/json")
            .json_body(json_pattern!({"id": term!(UUID, PAYER_EXAMPLE)}));
        i
    })
    .interaction("reading another customer's account", "", |mut i| {
        i.given_with_params(
            "two accounts",
            &json!({"payer_balance_minor": 1000, "currency": "EUR", "payee_currency": "EUR", "customer": "someone-else"}),
        );
        read_account(&mut i, STRANGERS_EXAMPLE);
        i.response
            .status(404)
            .header("Content-Type", "application/problem+json");
        i
    })
    .interaction("cancelling a transfer that applied", "", |mut i| {
        i.given_with_params(
            "two accounts with a transfer between them",
            &json!({"payer_balance_minor": 1000, "currency": "EUR", "amount_minor": 303, "reference": reference(303), "customer": CUSTOMER}),
        );
        transfer_request(&mut i, "/transfers/cancellations", 303);
        i.response
            .status(200)
            .header("Content-Type", "application/json")
            .json_body(json_pattern!({"state": "applied"}));
        i
    });
    pact
}

/// The client payments runs, with its machine client of a user pool on the
/// local stack (the mock server takes any bearer token; the verification
/// against the real accounts checks a real one).
async fn client(base: &str) -> AccountsClient {
    let sdk = local_aws::test_sdk_config().await;
    let deployment = shared::naming::Deployment::new(local_aws::unique("pact"), "test");
    let services = local_aws::registry::load().expect("registry");
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .expect("user pool");
    let client = &identity.service_clients["payments"];
    let tokens = local_aws::identity::token_source(
        &sdk,
        &identity.token_url,
        &client.client_id,
        &client.client_secret,
        vec![shared::auth::service_scope("accounts")],
    );
    AccountsClient::new(reqwest::Client::new(), base, Duration::from_secs(5), Arc::new(tokens))
}

fn payment(amount: u64) -> Payment {
    let request = NewPayment {
        from_account: AccountId(PAYER_EXAMPLE.parse().unwrap()),
        to_account: AccountId(PAYEE_EXAMPLE.parse().unwrap()),
        amount_minor: amount,
        currency: shared::money::Currency::parse("EUR").unwrap(),
        reference: String::from("contract"),
    };
    let at = time::macros::datetime!(2026-12-01 08:00 UTC);
    Payment::new(
        PaymentId(uuid::Uuid::from_u128(PAYMENT_EXAMPLE + u128::from(amount))),
        CUSTOMER,
        &request,
        at,
    )
}

#[test]
fn payments_calls_to_accounts_match_the_committed_contract() {
    let scratch = std::env::temp_dir().join(format!("pacts-{}", uuid::Uuid::new_v4()));
    {
        let mut pact = contract();
        pact.with_output_dir(&scratch);
        let server = pact.start_mock_server(None, None);
        let base = server.url().to_string();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let accounts = client(&base).await;
            let call = CallContext {
                budget: Duration::from_secs(5),
                correlation: "contract",
            };
            assert_eq!(accounts.transfer(&payment(300), call).await, Outcome::Transferred);
            assert_eq!(
                accounts.transfer(&payment(5000), call).await,
                Outcome::Refused(Refusal::InsufficientFunds)
            );
            assert_eq!(
                accounts.transfer(&payment(301), call).await,
                Outcome::Refused(Refusal::UnknownPayee)
            );
            assert_eq!(
                accounts.transfer(&payment(302), call).await,
                Outcome::Refused(Refusal::PayeeCurrency)
            );
            assert_eq!(
                accounts.transfer(&payment(305), call).await,
                Outcome::Refused(Refusal::PayeeCannotReceive)
            );
            assert_eq!(accounts.cancel(&payment(304), call).await, Outcome::Cancelled);
            let account = |id: &str| AccountId(id.parse().unwrap());
            assert_eq!(
                accounts.owns(CUSTOMER, account(PAYER_EXAMPLE), call).await,
                Ownership::Owned
            );
            assert_eq!(
                accounts.owns(CUSTOMER, account(STRANGERS_EXAMPLE), call).await,
                Ownership::NotOwned
            );
            assert_eq!(accounts.cancel(&payment(303), call).await, Outcome::Transferred);
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
