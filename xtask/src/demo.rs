//! `cargo xtask demo`: the newcomer's first run. Starts the local stack and
//! every service, drives them end to end over HTTP as customers signed in to
//! the local user pool (and as a service of the deployment, with a machine
//! client's service-scoped token, for the external credits), prints what
//! happened, and exits non-zero if anything did not behave.

use std::process::ExitCode;

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Logs, Stack};

/// Start everything, drive each service end to end, print a report, stop.
#[derive(clap::Args)]
pub struct Args {}

/// Collects the outcome of each step.
struct Report {
    passed: usize,
    failed: usize,
}

impl Report {
    fn step(&mut self, name: &str, outcome: Result<String, String>) {
        match outcome {
            Ok(detail) => {
                self.passed += 1;
                println!("  ok    {name}: {detail}");
            }
            Err(detail) => {
                self.failed += 1;
                println!("  FAIL  {name}: {detail}");
            }
        }
    }
}

/// One HTTP call and its parsed answer.
struct Answer {
    status: StatusCode,
    body: Value,
    raw: String,
    content_type: String,
    replayed: bool,
}

/// Calls to one service with one bearer credential (a customer's access
/// token, or a service-scoped machine token).
struct Client {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        auth: bool,
    ) -> Result<Answer, String> {
        self.call_with(method, path, body, auth, None).await
    }

    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        auth: bool,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if auth {
            request = request.bearer_auth(&self.bearer);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let raw = response.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&raw).unwrap_or_else(|_| Value::String(raw.clone()));
        Ok(Answer {
            status,
            body,
            raw,
            content_type,
            replayed,
        })
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Result<Answer, String> {
        let text = body.map(|b| b.to_string());
        let answer = self.call(method, path, text.as_deref(), true).await?;
        if answer.status != status {
            return Err(format!("expected {status}, got {} {}", answer.status, answer.body));
        }
        Ok(answer)
    }
}

/// A request refused for its credential: 401 with what was wrong.
fn unauthorized(answer: &Answer) -> Result<String, String> {
    if answer.status != StatusCode::UNAUTHORIZED {
        return Err(format!("expected 401, got {} {}", answer.status, answer.raw));
    }
    Ok(format!("401: {}", answer.body["detail"].as_str().unwrap_or_default()))
}

/// A refused request must be problem+json naming `field`.
fn names_field(answer: &Answer, status: StatusCode, field: &str) -> Result<String, String> {
    if answer.status != status {
        return Err(format!("expected {status}, got {} {}", answer.status, answer.body));
    }
    if !answer.content_type.starts_with("application/problem+json") {
        return Err(format!(
            "expected application/problem+json, got {}",
            answer.content_type
        ));
    }
    let named = answer.body["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["field"] == field));
    if !named {
        return Err(format!("problem does not name {field}: {}", answer.body));
    }
    Ok(format!(
        "{} naming `{field}`: {}",
        answer.status,
        answer.body["detail"].as_str().unwrap_or_default()
    ))
}

pub async fn run(_: Args) -> anyhow::Result<ExitCode> {
    println!("Starting the local AWS stack and every service…");
    let stack = Stack::up(Logs::Quiet).await?;
    let mut report = Report { passed: 0, failed: 0 };
    let mut result = accounts(&stack, &mut report).await;
    if result.is_ok() {
        result = payments(&stack, &mut report).await;
    }
    if result.is_ok() {
        result = every_service(&stack, &mut report).await;
    }
    if result.is_ok() {
        println!("\nblue/green deployments, rehearsed (cargo xtask rehearse)");
        match crate::rehearse::standard(&stack).await {
            Ok(passed) => report.step(
                "rehearsals",
                if passed {
                    Ok(String::from(
                        "the good release shipped; the one answering 500 was stopped before any customer saw it; the one the hooks passed was rolled back by its 5xx alarm",
                    ))
                } else {
                    Err(String::from("a rehearsal did not end as expected (see above)"))
                },
            ),
            Err(err) => result = Err(err),
        }
    }
    stack.down().await;
    result?;
    println!("\n{} passed, {} failed", report.passed, report.failed);
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every registered service, including ones made with `cargo xtask
/// new-service` that nothing above drives: it answers `GET /health` with its
/// name and version.
async fn every_service(stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    println!("\nevery service");
    for running in &stack.services {
        let name = &running.service.name;
        let client = Client {
            http: reqwest::Client::new(),
            base: running.url.clone(),
            bearer: String::new(),
        };
        let outcome = match client.call(reqwest::Method::GET, "/health", None, false).await {
            Ok(answer) if answer.status == StatusCode::OK && answer.body["service"] == name.as_str() => Ok(format!(
                "{name} {} at {}",
                answer.body["version"].as_str().unwrap_or_default(),
                client.base
            )),
            Ok(answer) => Err(format!("{} {}", answer.status, answer.raw)),
            Err(e) => Err(e),
        };
        report.step(&format!("{name} answers GET /health"), outcome);
    }
    Ok(())
}

fn euros(minor: &Value) -> String {
    let minor = minor.as_u64().unwrap_or_default();
    format!("{}.{:02} EUR", minor / 100, minor % 100)
}

/// A customer of the local user pool, signed in.
async fn sign_up(stack: &Stack, username: &str) -> anyhow::Result<local_aws::identity::Customer> {
    stack
        .identity
        .customer(&stack.sdk_config().await, username)
        .await
        .with_context(|| format!("signing {username} up in the local user pool"))
}

async fn accounts(stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    use reqwest::Method;
    let ada = sign_up(stack, "ada").await?;
    let client = client_for(stack, "accounts", &ada.access_token)?;
    let service = client_for(stack, "accounts", &stack.service_token().await?)?;
    println!(
        "\naccounts at {}, as customer ada (subject {})",
        client.base, ada.subject
    );

    let health = client.expect(Method::GET, "/health", None, StatusCode::OK).await;
    report.step(
        "health",
        health.map(|a| format!("{} {}", a.body["service"], a.body["version"])),
    );

    let opened = client
        .expect(
            Method::POST,
            "/accounts",
            Some(json!({"holder": "Ada Lovelace", "currency": "EUR"})),
            StatusCode::CREATED,
        )
        .await;
    let id = match &opened {
        Ok(a) => a.body["id"].as_str().unwrap_or_default().to_owned(),
        Err(_) => String::new(),
    };
    report.step(
        "open an account",
        opened.map(|a| {
            format!(
                "{} held by {}, owned by ada, balance {}",
                a.body["id"],
                a.body["holder"],
                euros(&a.body["balance_minor"])
            )
        }),
    );
    if id.is_empty() {
        return Ok(());
    }
    let path = format!("/accounts/{id}");

    let credit = service
        .expect(
            Method::POST,
            &format!("{path}/credits"),
            Some(json!({"amount_minor": 10_000, "currency": "EUR", "reference": "demo-salary"})),
            StatusCode::CREATED,
        )
        .await;
    report.step(
        "credit 100.00 EUR (an external credit: a service-scoped token)",
        credit.and_then(|a| balance_is(&a, 10_000)),
    );

    let debit = json!({"amount_minor": 2_550, "currency": "EUR", "reference": "demo-rent"});
    let first = service
        .expect(
            Method::POST,
            &format!("{path}/debits"),
            Some(debit.clone()),
            StatusCode::CREATED,
        )
        .await;
    report.step("debit 25.50 EUR", first.and_then(|a| balance_is(&a, 7_450)));

    let replay = service
        .expect(Method::POST, &format!("{path}/debits"), Some(debit), StatusCode::OK)
        .await;
    report.step(
        "replay the same debit (same reference)",
        replay.and_then(|a| {
            if a.body["replayed"] != true {
                return Err(format!("not marked as a replay: {}", a.body));
            }
            balance_is(&a, 7_450).map(|d| format!("charged nothing, {d}"))
        }),
    );

    let overdraft = service
        .call(
            Method::POST,
            &format!("{path}/debits"),
            Some(r#"{"amount_minor": 1000000, "currency": "EUR", "reference": "demo-overdraft"}"#),
            true,
        )
        .await;
    report.step(
        "overdraft refused",
        overdraft.and_then(|a| names_field(&a, StatusCode::UNPROCESSABLE_ENTITY, "amount_minor")),
    );

    let bad_inputs: [(&str, &Client, String, &str, StatusCode, &str); 6] = [
        (
            "negative amount",
            &service,
            format!("{path}/debits"),
            r#"{"amount_minor": -5, "currency": "EUR", "reference": "demo-neg"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_minor",
        ),
        (
            "fractional amount",
            &service,
            format!("{path}/credits"),
            r#"{"amount_minor": 10.5, "currency": "EUR", "reference": "demo-frac"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_minor",
        ),
        (
            "wrong currency",
            &service,
            format!("{path}/credits"),
            r#"{"amount_minor": 100, "currency": "USD", "reference": "demo-usd"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency",
        ),
        (
            "unknown field",
            &client,
            String::from("/accounts"),
            r#"{"holder": "Eve", "currency": "EUR", "admin": true}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "admin",
        ),
        (
            "not a currency",
            &client,
            String::from("/accounts"),
            r#"{"holder": "Eve", "currency": "EURO"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency",
        ),
        (
            "unknown account",
            &service,
            format!("/accounts/{}/debits", "00000000-0000-4000-8000-000000000000"),
            r#"{"amount_minor": 1, "currency": "EUR", "reference": "demo-ghost"}"#,
            StatusCode::NOT_FOUND,
            "id",
        ),
    ];
    for (name, caller, path, body, status, field) in bad_inputs {
        let answer = caller.call(Method::POST, &path, Some(body), true).await;
        report.step(
            &format!("bad input rejected: {name}"),
            answer.and_then(|a| names_field(&a, status, field)),
        );
    }
    let malformed = client
        .call(Method::POST, "/accounts", Some("{\"holder\": "), true)
        .await;
    report.step(
        "bad input rejected: malformed JSON",
        malformed.and_then(|a| {
            (a.status == StatusCode::BAD_REQUEST)
                .then(|| format!("{} {}", a.status, a.body["title"]))
                .ok_or_else(|| format!("expected 400, got {} {}", a.status, a.body))
        }),
    );
    let anonymous = client.call(Method::GET, &path, None, false).await;
    report.step("no credential refused", anonymous.and_then(|a| unauthorized(&a)));
    let eve = sign_up(stack, "eve").await?;
    let stranger = client_for(stack, "accounts", &eve.access_token)?;
    let theirs = stranger.call(Method::GET, &path, None, true).await;
    report.step(
        "another customer cannot see ada's account",
        theirs.and_then(|a| {
            (a.status == StatusCode::NOT_FOUND)
                .then(|| String::from("404 for eve, exactly as an account that does not exist"))
                .ok_or_else(|| format!("expected 404, got {} {}", a.status, a.raw))
        }),
    );
    let forged = client_for(stack, "accounts", &forged_token(&ada.access_token))?;
    let forged = forged.call(Method::GET, &path, None, true).await;
    report.step(
        "a token with a forged signature refused",
        forged.and_then(|a| unauthorized(&a)),
    );

    let after = client.expect(Method::GET, &path, None, StatusCode::OK).await;
    report.step(
        "balance unchanged by refused requests",
        after.and_then(|a| balance_is(&a, 7_450)),
    );
    let listed = client
        .expect(Method::GET, &format!("{path}/transactions"), None, StatusCode::OK)
        .await;
    report.step(
        "transactions listed newest first",
        listed.and_then(|a| {
            let directions: Vec<&str> = a.body["items"]
                .as_array()
                .map(|items| items.iter().filter_map(|t| t["direction"].as_str()).collect())
                .unwrap_or_default();
            if directions == ["debit", "credit"] {
                Ok(format!("{directions:?}"))
            } else {
                Err(format!("expected [debit, credit], got {directions:?}"))
            }
        }),
    );
    Ok(())
}

fn balance_is(answer: &Answer, expected: u64) -> Result<String, String> {
    let balance = &answer.body["balance_minor"];
    if balance.as_u64() == Some(expected) {
        Ok(format!("balance {}", euros(balance)))
    } else {
        Err(format!("expected balance {expected}, got {}", answer.body))
    }
}

/// `token` with its signature's last characters changed: the claims a
/// customer could edit, signed by no one.
fn forged_token(token: &str) -> String {
    let mut forged = token.trim_end_matches(|c: char| c != '.').to_owned();
    let signature = &token[forged.len()..];
    let flipped: String = signature
        .chars()
        .rev()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    forged.push_str(&flipped);
    forged
}

/// Calls to service `name` with `bearer`.
fn client_for(stack: &Stack, name: &str, bearer: &str) -> anyhow::Result<Client> {
    let running = stack
        .services
        .iter()
        .find(|r| r.service.name == name)
        .with_context(|| format!("the {name} service is not registered"))?;
    Ok(Client {
        http: reqwest::Client::new(),
        base: running.url.clone(),
        bearer: bearer.to_owned(),
    })
}

async fn payments(stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    use reqwest::Method;
    let (grace, alan) = (sign_up(stack, "grace").await?, sign_up(stack, "alan").await?);
    let accounts = client_for(stack, "accounts", &grace.access_token)?;
    let alans_accounts = client_for(stack, "accounts", &alan.access_token)?;
    let service = client_for(stack, "accounts", &stack.service_token().await?)?;
    let payments = client_for(stack, "payments", &grace.access_token)?;
    let alans_payments = client_for(stack, "payments", &alan.access_token)?;
    println!(
        "\npayments at {}, as customers grace (the payer) and alan (the payee)",
        payments.base
    );
    let mut ids = Vec::new();
    for (holder, customer) in [("Grace Hopper", &accounts), ("Alan Turing", &alans_accounts)] {
        let opened = customer
            .expect(
                Method::POST,
                "/accounts",
                Some(json!({"holder": holder, "currency": "EUR"})),
                StatusCode::CREATED,
            )
            .await;
        match opened {
            Ok(a) => ids.push(a.body["id"].as_str().unwrap_or_default().to_owned()),
            Err(e) => {
                report.step("open the payer and payee accounts", Err(e));
                return Ok(());
            }
        }
    }
    let (payer, payee) = (ids[0].clone(), ids[1].clone());
    let funded = service
        .expect(
            Method::POST,
            &format!("/accounts/{payer}/credits"),
            Some(json!({"amount_minor": 5_000, "currency": "EUR", "reference": "demo-topup"})),
            StatusCode::CREATED,
        )
        .await;
    report.step(
        "fund the payer with 50.00 EUR",
        funded.and_then(|a| balance_is(&a, 5_000)),
    );

    let balances = || async {
        let mut out = Vec::new();
        for (id, owner) in [(&payer, &accounts), (&payee, &alans_accounts)] {
            let answer = owner
                .expect(Method::GET, &format!("/accounts/{id}"), None, StatusCode::OK)
                .await?;
            out.push(answer.body["balance_minor"].as_u64().unwrap_or_default());
        }
        Ok::<_, String>(out)
    };
    let body = json!({"from_account": payer, "to_account": payee, "amount_minor": 2_000, "currency": "EUR", "reference": "demo invoice 17"}).to_string();
    let first = payments
        .call_with(Method::POST, "/payments", Some(&body), true, Some("demo-key-1"))
        .await;
    let first_raw = first.as_ref().map(|a| a.raw.clone()).unwrap_or_default();
    report.step(
        "pay 20.00 EUR",
        first.and_then(|a| {
            if a.status != StatusCode::CREATED || a.body["status"] != "completed" {
                return Err(format!("expected 201 completed, got {} {}", a.status, a.raw));
            }
            Ok(format!(
                "payment {} completed: one transfer, both legs in one ledger transaction",
                a.body["id"]
            ))
        }),
    );
    let replay = payments
        .call_with(Method::POST, "/payments", Some(&body), true, Some("demo-key-1"))
        .await;
    let after_replay = balances().await;
    report.step(
        "replay the payment (same Idempotency-Key)",
        replay.and_then(|a| {
            if !a.replayed || a.raw != first_raw {
                return Err(format!(
                    "expected the stored response replayed byte for byte, got {} {}",
                    a.status, a.raw
                ));
            }
            match after_replay {
                Ok(b) if b == [3_000, 2_000] => Ok(String::from(
                    "same response, marked Idempotent-Replayed; charged once: payer 30.00, payee 20.00",
                )),
                other => Err(format!("balances after replay: {other:?}")),
            }
        }),
    );
    let overdraft = json!({"from_account": payer, "to_account": payee, "amount_minor": 100_000, "currency": "EUR", "reference": "demo too much"}).to_string();
    let refused = payments
        .call_with(Method::POST, "/payments", Some(&overdraft), true, Some("demo-key-2"))
        .await;
    let after_refusal = balances().await;
    report.step(
        "overdraft payment refused",
        refused.and_then(|a| {
            if a.status != StatusCode::UNPROCESSABLE_ENTITY || !a.content_type.starts_with("application/problem+json") {
                return Err(format!("expected a 422 problem, got {} {}", a.status, a.raw));
            }
            match after_refusal {
                Ok(b) if b == [3_000, 2_000] => Ok(format!("422: {}", a.body["detail"].as_str().unwrap_or_default())),
                other => Err(format!("balances changed: {other:?}")),
            }
        }),
    );
    let theft = json!({"from_account": payer, "to_account": payee, "amount_minor": 1_000, "currency": "EUR", "reference": "demo not mine"}).to_string();
    let stolen = alans_payments
        .call_with(Method::POST, "/payments", Some(&theft), true, Some("demo-key-theft"))
        .await;
    let after_theft = balances().await;
    report.step(
        "alan paying out of grace's account is refused",
        stolen.and_then(|a| {
            let named = names_field(&a, StatusCode::UNPROCESSABLE_ENTITY, "from_account")?;
            match after_theft {
                Ok(b) if b == [3_000, 2_000] => Ok(format!("{named}; nothing moved")),
                other => Err(format!("balances changed: {other:?}")),
            }
        }),
    );
    let anonymous = payments
        .call_with(Method::POST, "/payments", Some(&theft), false, Some("demo-key-anon"))
        .await;
    report.step(
        "a payment with no credential refused",
        anonymous.and_then(|a| unauthorized(&a)),
    );
    let missing_key = payments.call(Method::POST, "/payments", Some(&body), true).await;
    report.step(
        "payment without Idempotency-Key refused",
        missing_key.and_then(|a| names_field(&a, StatusCode::BAD_REQUEST, "Idempotency-Key")),
    );
    let nowhere = json!({"from_account": payer, "to_account": "00000000-0000-4000-8000-000000000000", "amount_minor": 500, "currency": "EUR", "reference": "demo to nobody"}).to_string();
    let to_nobody = payments
        .call_with(Method::POST, "/payments", Some(&nowhere), true, Some("demo-key-3"))
        .await;
    let after_nobody = balances().await;
    report.step(
        "payment to an account that does not exist moves nothing",
        to_nobody.and_then(|a| {
            let named = names_field(&a, StatusCode::UNPROCESSABLE_ENTITY, "to_account")?;
            match after_nobody {
                Ok(b) if b == [3_000, 2_000] => Ok(format!("{named}; the payer keeps 30.00")),
                other => Err(format!("balances changed: {other:?}")),
            }
        }),
    );
    let payment_id = first_raw_id(&first_raw);
    let leg = service
        .call(
            Method::POST,
            &format!("/accounts/{payer}/voids"),
            Some(&json!({"reference": format!("pay-{}", payment_id.replace('-', ""))}).to_string()),
            true,
        )
        .await;
    let after_void = balances().await;
    report.step(
        "voiding one leg of the completed payment is refused",
        leg.and_then(|a| {
            if a.status != StatusCode::CONFLICT || a.body["type"] != "urn:problem:transfer-leg" {
                return Err(format!("expected 409 transfer-leg, got {} {}", a.status, a.raw));
            }
            match after_void {
                Ok(b) if b == [3_000, 2_000] => Ok(String::from("409: a leg of a transfer is never reversed alone")),
                other => Err(format!("balances changed: {other:?}")),
            }
        }),
    );
    let audit = ledger_audit(stack).await;
    report.step(
        "ledger audit: every invariant holds",
        audit.map_err(|e| format!("{e:#}")).and_then(|audit| {
            if audit.is_sound() {
                Ok(format!(
                    "{} accounts, {} postings, {} transfers; the total {} is what external credits brought in",
                    audit.accounts,
                    audit.transactions,
                    audit.transfers_applied,
                    euros(&Value::from(u64::try_from(audit.balances_minor).unwrap_or_default()))
                ))
            } else {
                Err(format!("{:?}", audit.violations))
            }
        }),
    );
    Ok(())
}

/// The id of the payment a `201` body describes.
fn first_raw_id(raw: &str) -> String {
    serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The accounts ledger's audit over the local stack's table.
pub async fn ledger_audit(stack: &Stack) -> anyhow::Result<accounts::ledger::Audit> {
    let table = crate::stack::local_deployment().table_name("accounts");
    let store = accounts::store::Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk_config().await), table, 50);
    let snapshot = store.snapshot().await.context("reading the ledger")?;
    Ok(accounts::ledger::audit(&snapshot))
}
