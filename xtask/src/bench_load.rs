//! `cargo xtask bench load`: concurrent clients against the local stack
//! (every service and the sweeper as `cargo xtask dev` runs them) for a
//! fixed time. Each client opens nothing and pays between funded accounts
//! with fresh keys, retries some payments with the same key, sends some to
//! an account that does not exist, and reads payments and accounts back.
//! Afterwards it waits for every payment to be final and audits the
//! ledger. Prints a Markdown report (docs/benchmarks.md): throughput,
//! p50/p99 per route, answers by status, payments left non-final, and money
//! discrepancies — the run fails unless the last two are zero.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::stack::{Logs, Stack};

/// Accounts the clients pay between.
const ACCOUNTS: usize = 32;
/// What each account is funded with (external credits), in minor units.
const FUNDING: u64 = 10_000_000;
/// How long the run may wait for every payment to be final.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Route → latencies.
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    /// (route, status) → count.
    statuses: BTreeMap<(&'static str, u16), usize>,
    /// Payment ids the client was given.
    payments: Vec<String>,
    /// Transport errors (no answer).
    errors: usize,
}

impl Seen {
    fn merge(&mut self, other: Seen) {
        for (route, mut l) in other.latencies {
            self.latencies.entry(route).or_default().append(&mut l);
        }
        for (k, n) in other.statuses {
            *self.statuses.entry(k).or_default() += n;
        }
        self.payments.extend(other.payments);
        self.errors += other.errors;
    }
}

struct Target {
    http: reqwest::Client,
    accounts: String,
    payments: String,
    /// The load's customer (who owns every account it pays between).
    token: String,
    /// A service-scoped token, for the external credits that fund the accounts.
    service_token: String,
}

impl Target {
    async fn send(
        &self,
        seen: &mut Seen,
        route: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Option<(u16, Value, Option<String>)> {
        let started = Instant::now();
        let answer = async {
            let response = request.bearer_auth(&self.token).send().await?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((status, body, location))
        }
        .await;
        seen.latencies.entry(route).or_default().push(started.elapsed());
        match answer {
            Ok((status, body, location)) => {
                *seen.statuses.entry((route, status)).or_default() += 1;
                Some((status, body, location))
            }
            Err(_) => {
                seen.errors += 1;
                None
            }
        }
    }
}

/// One client until `until`.
async fn client(target: &Target, accounts: &[String], seed: u64, until: Instant) -> Seen {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = Seen::default();
    let mut n = 0u64;
    // Bounded by the clock: each iteration is one request or two.
    while Instant::now() < until {
        n += 1;
        let from = rng.random_range(0..accounts.len());
        let mut to = rng.random_range(0..accounts.len() - 1);
        if to >= from {
            to += 1;
        }
        let roll: u8 = rng.random_range(0..100);
        let payee = if roll < 5 {
            String::from("00000000-0000-4000-8000-000000000000")
        } else {
            accounts[to].clone()
        };
        let key = format!("load-{seed}-{n}");
        let body = json!({"from_account": accounts[from], "to_account": payee, "amount_minor": rng.random_range(1..500u64), "currency": "EUR", "reference": key});
        let pay = || {
            target
                .http
                .post(format!("{}/payments", target.payments))
                .header("idempotency-key", &key)
                .json(&body)
        };
        let answer = target.send(&mut seen, "POST /payments", pay()).await;
        let id = answer
            .as_ref()
            .and_then(|(_, body, location)| {
                location
                    .clone()
                    .or_else(|| body["instance"].as_str().map(str::to_owned))
            })
            .and_then(|l| l.strip_prefix("/payments/").map(str::to_owned));
        if let Some(id) = &id {
            seen.payments.push(id.clone());
        }
        match roll {
            5..10 => {
                target.send(&mut seen, "POST /payments (retry)", pay()).await;
            }
            10..20 if id.is_some() => {
                let url = format!("{}/payments/{}", target.payments, id.unwrap_or_default());
                target.send(&mut seen, "GET /payments/{id}", target.http.get(url)).await;
            }
            20..30 => {
                let url = format!("{}/accounts/{}", target.accounts, accounts[from]);
                target.send(&mut seen, "GET /accounts/{id}", target.http.get(url)).await;
            }
            _ => {}
        }
    }
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// The benchmark.
pub async fn run(clients: usize, seconds: u64) -> anyhow::Result<ExitCode> {
    println!("Starting the local AWS stack and every service…");
    let stack = Stack::up(Logs::Quiet).await?;
    let result = measure(&stack, clients, seconds).await;
    stack.down().await;
    result
}

async fn measure(stack: &Stack, clients: usize, seconds: u64) -> anyhow::Result<ExitCode> {
    let url = |name: &str| {
        stack
            .services
            .iter()
            .find(|r| r.service.name == name)
            .map(|r| r.url.clone())
            .with_context(|| format!("{name} is not running"))
    };
    let service_token = stack.service_token().await?;
    // One customer (a business paying between its own accounts): every
    // payment passes the ownership checks.
    let customer = stack
        .identity
        .customer(&stack.sdk_config().await, "load")
        .await
        .context("the load's customer in the local user pool")?;
    let target = std::sync::Arc::new(Target {
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
        accounts: url("accounts")?,
        payments: url("payments")?,
        token: customer.access_token,
        service_token,
    });
    let mut accounts = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let opened: Value = target
            .http
            .post(format!("{}/accounts", target.accounts))
            .bearer_auth(&target.token)
            .json(&json!({"holder": format!("load {i}"), "currency": "EUR"}))
            .send()
            .await?
            .json()
            .await?;
        let id = opened["id"].as_str().context("an account id")?.to_owned();
        let credit = json!({"amount_minor": FUNDING, "currency": "EUR", "reference": format!("load-funding-{i}")});
        let funded = target
            .http
            .post(format!("{}/accounts/{id}/credits", target.accounts))
            .bearer_auth(&target.service_token)
            .json(&credit)
            .send()
            .await?;
        if !funded.status().is_success() {
            bail!("funding account {i}: {}", funded.status());
        }
        accounts.push(id);
    }
    println!("{clients} clients for {seconds} s over {ACCOUNTS} funded accounts…");
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let accounts = std::sync::Arc::new(accounts);
    let mut tasks = tokio::task::JoinSet::new();
    for seed in 0..clients as u64 {
        let (target, accounts) = (target.clone(), accounts.clone());
        tasks.spawn(async move { client(&target, &accounts, seed, until).await });
    }
    let mut seen = Seen::default();
    while let Some(done) = tasks.join_next().await {
        seen.merge(done?);
    }
    let elapsed = started.elapsed();

    // Every payment final: by the sweeper, without further requests.
    let settle_started = Instant::now();
    let mut unique = seen.payments.clone();
    unique.sort();
    unique.dedup();
    let mut open: Vec<String> = unique.clone();
    while !open.is_empty() && settle_started.elapsed() < SETTLE_LIMIT {
        let mut still = Vec::new();
        for id in open {
            let payment: Value = target
                .http
                .get(format!("{}/payments/{id}", target.payments))
                .bearer_auth(&target.token)
                .send()
                .await?
                .json()
                .await?;
            if payment["status"] != "completed" && payment["status"] != "failed" {
                still.push(id);
            }
        }
        open = still;
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let audit = crate::demo::ledger_audit(stack).await?;
    let expected_total = i128::from(FUNDING) * ACCOUNTS as i128;
    let mut discrepancies: Vec<String> = audit.violations.iter().map(|v| format!("{v:?}")).collect();
    if audit.balances_minor != expected_total {
        discrepancies.push(format!(
            "total {} minor units, funded {expected_total}",
            audit.balances_minor
        ));
    }

    let requests: usize = seen.latencies.values().map(Vec::len).sum();
    println!("\n## Load: {clients} clients, {seconds} s, local stack (moto, one request at a time)\n");
    println!(
        "- {requests} requests in {:.1} s: **{:.1} requests/s**; {} payments, {} transport errors",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        unique.len(),
        seen.errors
    );
    println!("\n| route | requests | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|");
    for (route, latencies) in &mut seen.latencies {
        latencies.sort();
        println!(
            "| `{route}` | {} | {} | {} | {} |",
            latencies.len(),
            ms(percentile(latencies, 0.5)),
            ms(percentile(latencies, 0.99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO))
        );
    }
    println!("\n| route | status | count |\n|---|---|---|");
    for ((route, status), count) in &seen.statuses {
        println!("| `{route}` | {status} | {count} |");
    }
    println!(
        "\n- payments not final {:.0} s after the load stopped: **{}**",
        settle_started.elapsed().as_secs_f64(),
        open.len()
    );
    println!(
        "- ledger: {} accounts, {} postings, {} transfers; money discrepancies: **{}**",
        audit.accounts,
        audit.transactions,
        audit.transfers_applied,
        discrepancies.len()
    );
    for discrepancy in &discrepancies {
        println!("  - {discrepancy}");
    }
    Ok(if open.is_empty() && discrepancies.is_empty() && seen.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
