//! Money is never lost, stranded, duplicated or created: a model-based test
//! that searches for the sequences nobody thought of.
//!
//! proptest-state-machine generates random sequences of what clients and the
//! platform do — accounts opened by two customers, external credits,
//! payments (valid, to the other customer's account, to an unknown payee,
//! over the balance, in another currency, invalid, with keys reused with
//! the same or another body, concurrent duplicates, a customer paying out
//! of the other's account) — interleaved
//! with faults: accounts stalled, killed and restarted, payments killed in
//! the middle of a payment and restarted, DynamoDB throttling. The real
//! `accounts`, `payments` and `payments-sweeper` binaries run against moto,
//! behind `local_aws::faults` proxies, and the test speaks only HTTP to them.
//!
//! After each operation its answer is checked against what the API promises.
//! After each sequence, once the faults clear and the sweeper has run: every
//! payment is final within a bounded time, no key produced two payments,
//! every completed payment's transfer applied once (both legs) and every
//! failed one moved nothing, every balance is what the model says, and the
//! ledger audit (`accounts::ledger::audit`) finds no broken invariant.
//!
//! `MODEL_CASES` (default 6) and `MODEL_SEED` (hex, default random) are
//! printed at the start; `cargo xtask soak --cases N` runs more.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use local_aws::faults::{Fault, FaultProxy, Rule};
use local_aws::process::Process;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use serde_json::{Value, json};
use shared::naming::Deployment;

/// How long a local invocation of payments may run.
const INVOCATION_MS: u64 = 1_500;
/// How long one run of the sweeper may take: as on AWS, a scheduled run has
/// its own function timeout, longer than a request's here, so that a sweep
/// over a slow store (moto's transactions take hundreds of milliseconds on
/// a loaded machine) finishes what it starts.
const SWEEP_MS: u64 = 10_000;
/// Longer than any answer may take (a stall plus a deadline): a request
/// still unanswered after this is a defect.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(8);
/// How long after the faults clear every payment must be final.
const SETTLE_WITHIN: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------
// The reference model: what the generator knows when it picks the next step.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cur {
    Eur,
    Gbp,
}

impl Cur {
    fn code(self) -> &'static str {
        match self {
            Cur::Eur => "EUR",
            Cur::Gbp => "GBP",
        }
    }
}

/// Which customer opened an account (and so owns it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Whose {
    Owner,
    Stranger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payee {
    Account(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyUse {
    Fresh,
    /// The key of an earlier payment (index modulo their number), with its
    /// body or with another.
    Reuse {
        of: usize,
        same_body: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Open(Cur, Whose),
    Credit {
        account: usize,
        amount: u64,
    },
    Pay {
        from: usize,
        to: Payee,
        amount: u64,
        key: KeyUse,
    },
    Duplicates {
        from: usize,
        to: Payee,
        amount: u64,
        copies: usize,
    },
    PayAndKillPayments {
        from: usize,
        to: Payee,
        amount: u64,
        after_ms: u64,
    },
    /// The other customer pays out of an account: theirs, or the owner's.
    PayAsStranger {
        from: usize,
        to: Payee,
        amount: u64,
    },
    StallAccounts {
        ms: u64,
    },
    KillAccounts,
    RestartAccounts,
    Throttle {
        percent: u8,
    },
    ClearFaults,
    /// Time passes with whatever faults are on (the sweeper keeps running).
    Wait {
        ms: u64,
    },
}

#[derive(Debug, Clone, Default)]
struct ModelState {
    accounts: Vec<(Cur, Whose)>,
    pays: usize,
    accounts_down: bool,
}

struct Model;

impl ReferenceStateMachine for Model {
    type State = ModelState;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<ModelState> {
        Just(ModelState::default()).boxed()
    }

    fn transitions(state: &ModelState) -> BoxedStrategy<Op> {
        let open = (
            prop_oneof![3 => Just(Cur::Eur), 1 => Just(Cur::Gbp)],
            prop_oneof![3 => Just(Whose::Owner), 1 => Just(Whose::Stranger)],
        )
            .prop_map(|(cur, whose)| Op::Open(cur, whose));
        let faults = prop_oneof![
            prop_oneof![Just(300u64), Just(1_200), Just(3_000)].prop_map(|ms| Op::StallAccounts { ms }),
            Just(Op::KillAccounts),
            Just(Op::RestartAccounts),
            prop_oneof![Just(10u8), Just(30)].prop_map(|percent| Op::Throttle { percent }),
            Just(Op::ClearFaults),
            prop_oneof![Just(500u64), Just(2_500), Just(5_000)].prop_map(|ms| Op::Wait { ms }),
        ];
        let n = state.accounts.len();
        if n < 2 {
            return prop_oneof![4 => open, 1 => faults].boxed();
        }
        let account = 0..n;
        let payee = prop_oneof![8 => (0..n).prop_map(Payee::Account), 1 => Just(Payee::Unknown)];
        let amount = prop_oneof![1 => Just(0u64), 12 => 1u64..400, 2 => 400u64..3_000];
        let key = if state.pays == 0 {
            Just(KeyUse::Fresh).boxed()
        } else {
            prop_oneof![
                6 => Just(KeyUse::Fresh),
                2 => (0..state.pays, any::<bool>()).prop_map(|(of, same_body)| KeyUse::Reuse { of, same_body }),
            ]
            .boxed()
        };
        prop_oneof![
            2 => open,
            7 => (account.clone(), 100u64..3_000).prop_map(|(account, amount)| Op::Credit { account, amount }),
            12 => (account.clone(), payee.clone(), amount.clone(), key)
                .prop_map(|(from, to, amount, key)| Op::Pay { from, to, amount, key }),
            2 => (account.clone(), payee.clone(), 1u64..300, 2usize..5)
                .prop_map(|(from, to, amount, copies)| Op::Duplicates { from, to, amount, copies }),
            2 => (account.clone(), payee.clone(), 1u64..300, 0u64..60)
                .prop_map(|(from, to, amount, after_ms)| Op::PayAndKillPayments { from, to, amount, after_ms }),
            2 => (account, payee, 1u64..300).prop_map(|(from, to, amount)| Op::PayAsStranger { from, to, amount }),
            5 => faults,
        ]
        .boxed()
    }

    fn preconditions(state: &ModelState, op: &Op) -> bool {
        let n = state.accounts.len();
        let exists = |i: &usize| *i < n;
        let payee = |p: &Payee| match p {
            Payee::Account(i) => exists(i),
            Payee::Unknown => true,
        };
        match op {
            // The test opens accounts straight through accounts, which must be up.
            Op::Open(..) => !state.accounts_down,
            Op::Credit { account, .. } => exists(account),
            Op::Pay { from, to, key, .. } => {
                exists(from) && payee(to) && (matches!(key, KeyUse::Fresh) || state.pays > 0)
            }
            Op::Duplicates { from, to, .. }
            | Op::PayAndKillPayments { from, to, .. }
            | Op::PayAsStranger { from, to, .. } => exists(from) && payee(to),
            _ => true,
        }
    }

    fn apply(mut state: ModelState, op: &Op) -> ModelState {
        match op {
            Op::Open(cur, whose) => state.accounts.push((*cur, *whose)),
            Op::Pay { .. } | Op::Duplicates { .. } | Op::PayAndKillPayments { .. } | Op::PayAsStranger { .. } => {
                state.pays += 1
            }
            Op::KillAccounts => state.accounts_down = true,
            Op::RestartAccounts => state.accounts_down = false,
            _ => {}
        }
        state
    }
}

// ---------------------------------------------------------------------------
// The world: the real services on the local stack, shared by every case.

struct World {
    runtime: tokio::runtime::Runtime,
    stack: Mutex<Option<Stack>>,
    case: std::sync::atomic::AtomicUsize,
}

struct Stack {
    accounts: Process,
    payments: Process,
    _sweeper: tokio::process::Child,
    /// In front of accounts, for payments, the sweeper and credits.
    accounts_proxy: FaultProxy,
    /// In front of moto's DynamoDB, for every service.
    dynamo_proxy: FaultProxy,
    http: reqwest::Client,
    ledger: accounts::store::Store,
    payments_table: String,
    dynamodb: aws_sdk_dynamodb::Client,
    throttling: bool,
    /// The customer who owns every account the test opens.
    owner: local_aws::identity::Customer,
    /// A customer who owns none of them.
    stranger: local_aws::identity::Customer,
    /// A token of the deployment's services (the back office's credits and reads).
    service_token: String,
}

static WORLD: OnceLock<World> = OnceLock::new();

fn world() -> &'static World {
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let stack = runtime.block_on(Stack::start());
        World {
            runtime,
            stack: Mutex::new(Some(stack)),
            case: std::sync::atomic::AtomicUsize::new(0),
        }
    })
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

impl Stack {
    async fn start() -> Self {
        let sdk = local_aws::test_sdk_config().await;
        let deployment = Deployment::new(local_aws::unique("m"), "test");
        let mut services = local_aws::registry::load().expect("registry");
        services.retain(|s| s.name == "accounts" || s.name == "payments");
        local_aws::seed::seed(&sdk, &deployment, &services).await.expect("seed");
        let moto = std::env::var("AWS_ENDPOINT_URL").expect("the local stack");
        let identity = local_aws::identity::seed(&sdk, &moto, &deployment, &services)
            .await
            .expect("user pool");
        let owner = identity.customer(&sdk, "owner").await.expect("a customer");
        let stranger = identity.customer(&sdk, "stranger").await.expect("another customer");
        let service_token = identity.service_token().await.expect("a service token");
        let dynamo_proxy = FaultProxy::start(&moto).await.expect("dynamodb proxy");
        let base = env(&[
            ("AWS_ENDPOINT_URL", moto.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamo_proxy.url().to_owned()),
            ("AWS_ACCESS_KEY_ID", String::from("local")),
            ("AWS_SECRET_ACCESS_KEY", String::from("local")),
            ("AWS_REGION", String::from("us-east-1")),
            ("AWS_EC2_METADATA_DISABLED", String::from("true")),
            (shared::env::APP_NAME, deployment.app.clone()),
            (shared::env::STAGE, deployment.stage.clone()),
            (shared::env::BIND_ADDR, String::from("127.0.0.1:0")),
            (shared::env::POWERTOOLS_METRICS_DISABLED, String::from("true")),
        ])
        .into_iter()
        .chain(identity.env())
        .collect::<Vec<_>>();
        let accounts_binary = local_aws::process::build_binary("accounts")
            .await
            .expect("accounts built");
        let accounts = Process::start(&accounts_binary, &base, None)
            .await
            .expect("accounts starts");
        let accounts_proxy = FaultProxy::start(accounts.url()).await.expect("accounts proxy");
        let mut payments_env = base.clone();
        payments_env.extend(env(&[
            (shared::env::LOCAL_INVOCATION_TIMEOUT_MS, INVOCATION_MS.to_string()),
            (
                &shared::config::override_var("accounts_url"),
                accounts_proxy.url().to_owned(),
            ),
            (
                &shared::config::override_var("accounts_timeout_ms"),
                String::from("400"),
            ),
            (
                &shared::config::override_var("give_up_after_seconds"),
                String::from("2"),
            ),
            (&shared::config::override_var("retry_base_ms"), String::from("100")),
            (&shared::config::override_var("retry_max_ms"), String::from("500")),
        ]));
        let payments = Process::start(
            std::path::Path::new(env!("CARGO_BIN_EXE_payments")),
            &payments_env,
            None,
        )
        .await
        .expect("payments starts");
        let mut sweeper_env: Vec<(String, String)> = payments_env
            .iter()
            .filter(|(k, _)| k != shared::env::LOCAL_INVOCATION_TIMEOUT_MS)
            .cloned()
            .collect();
        sweeper_env.extend([
            (shared::env::SCHEDULE_EVERY_MS.to_owned(), String::from("500")),
            (
                shared::env::LOCAL_INVOCATION_TIMEOUT_MS.to_owned(),
                SWEEP_MS.to_string(),
            ),
        ]);
        let (sweeper, _) = local_aws::process::spawn_until(
            std::path::Path::new(env!("CARGO_BIN_EXE_payments-sweeper")),
            &sweeper_env,
            None,
            "scheduled locally",
        )
        .await
        .expect("the sweeper starts");
        // The test reads the tables directly from moto, past every fault.
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        Self {
            ledger: accounts::store::Store::new(dynamodb.clone(), deployment.table_name("accounts"), 50),
            payments_table: deployment.table_name("payments"),
            dynamodb,
            accounts,
            payments,
            _sweeper: sweeper,
            accounts_proxy,
            dynamo_proxy,
            http: reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build().unwrap(),
            throttling: false,
            owner,
            stranger,
            service_token,
        }
    }
}

/// An answer, or the transport error when there was none.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    raw: String,
    location: Option<String>,
}

impl Answer {
    /// The payment it names: its `Location`, or a failure's `instance`.
    fn payment_id(&self) -> Option<String> {
        self.location
            .clone()
            .or_else(|| self.body["instance"].as_str().map(str::to_owned))
            .and_then(|l| l.strip_prefix("/payments/").map(str::to_owned))
    }

    fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

/// Who a call is from.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    /// The back office (the hooks' token, every machine scope), acting for no one.
    Service(&'a str),
    /// The same token acting for a customer (token, subject).
    ServiceFor(&'a str, &'a str),
    /// A customer's access token.
    Token(&'a str),
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<&Value>,
    key: Option<&str>,
    auth: Auth<'_>,
) -> Result<Answer, reqwest::Error> {
    let mut request = http.request(method, url);
    request = match auth {
        Auth::Service(token) => request.bearer_auth(token),
        Auth::ServiceFor(token, subject) => request.bearer_auth(token).header("x-on-behalf-of", subject),
        Auth::Token(token) => request.bearer_auth(token),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let raw = response.text().await?;
    Ok(Answer {
        status,
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
        location,
    })
}

// ---------------------------------------------------------------------------
// The system under test, per case: what the client did and saw.

#[derive(Debug, Clone)]
struct Credit {
    account: usize,
    amount: u64,
    reference: String,
    confirmed: bool,
}

#[derive(Debug, Clone)]
struct Pay {
    key: String,
    body: Value,
    from: usize,
    to: Payee,
    amount: u64,
    /// Refused before any work (an invalid amount): the key keeps nothing.
    invalid: bool,
    /// Sent by the stranger (else by the owner).
    stranger: bool,
    /// Sent by a customer who does not own the payer's account.
    foreign: bool,
}

#[derive(Debug, Default)]
struct Case {
    number: usize,
    accounts: Vec<(String, Cur, Whose)>,
    credits: Vec<Credit>,
    pays: Vec<Pay>,
    /// Every payment id seen for each key.
    ids: BTreeMap<String, BTreeSet<String>>,
    /// The body each key is known to be bound to (an answer named its payment).
    binding: BTreeMap<String, Value>,
    /// Keys that may be bound without the test knowing to which body (a
    /// request was in flight when payments died, or answered 503).
    unsure: BTreeSet<String>,
    unknown_payee: String,
}

impl Case {
    /// A payment request under `key` with a fresh reference, as the owner
    /// or (`stranger`) as the other customer.
    fn pay(&self, key: String, from: usize, to: Payee, amount: u64, stranger: bool) -> Pay {
        self.pay_with(
            key,
            self.pay_body(from, to, amount, &self.next_reference()),
            from,
            to,
            amount,
            stranger,
        )
    }

    /// The payment request `body` under `key`.
    fn pay_with(&self, key: String, body: Value, from: usize, to: Payee, amount: u64, stranger: bool) -> Pay {
        let sender = if stranger { Whose::Stranger } else { Whose::Owner };
        Pay {
            body,
            key,
            from,
            to,
            amount,
            invalid: self.invalid(from, to, amount),
            stranger,
            foreign: self.accounts[from].2 != sender,
        }
    }

    /// Whether `to` is an account of another customer than `from`'s.
    fn strangers(&self, from: usize, to: usize) -> bool {
        self.accounts[from].2 != self.accounts[to].2
    }

    /// A payment reference no earlier request of this case used.
    fn next_reference(&self) -> String {
        format!("m{}-{}", self.number, self.pays.len())
    }

    fn pay_body(&self, from: usize, to: Payee, amount: u64, reference: &str) -> Value {
        let to = match to {
            Payee::Account(i) => self.accounts[i].0.clone(),
            Payee::Unknown => self.unknown_payee.clone(),
        };
        json!({
            "from_account": self.accounts[from].0,
            "to_account": to,
            "amount_minor": amount,
            "currency": self.accounts[from].1.code(),
            "reference": reference,
        })
    }

    /// Whether the payment can never complete whatever the balances.
    fn doomed(&self, pay: &Pay) -> bool {
        match pay.to {
            Payee::Unknown => true,
            Payee::Account(to) => to == pay.from || self.accounts[to].1 != self.accounts[pay.from].1,
        }
    }

    fn invalid(&self, from: usize, to: Payee, amount: u64) -> bool {
        amount == 0 || to == Payee::Account(from)
    }
}

/// Checks one answer to `POST /payments` against what the API promises.
fn check_pay(case: &Case, pay: &Pay, answer: &Answer, faults_possible: bool) {
    let context = || format!("{pay:?} → {} {}", answer.status, answer.raw);
    assert!(
        !answer.raw.contains("127.0.0.1"),
        "an internal address leaked: {}",
        context()
    );
    match answer.status {
        201 => {
            assert!(
                !pay.invalid && !case.doomed(pay) && !pay.foreign,
                "completed: {}",
                context()
            );
            assert_eq!(answer.body["status"], "completed", "{}", context());
        }
        202 => {
            assert!(!pay.invalid, "{}", context());
            let status = answer.body["status"].as_str().unwrap_or_default();
            assert!(status == "pending" || status == "cancelling", "{}", context());
        }
        422 if pay.invalid => assert_eq!(answer.kind(), "urn:problem:invalid-field", "{}", context()),
        422 if pay.foreign => assert!(
            answer.kind() == "urn:problem:unknown-payer" || answer.kind() == "urn:problem:accounts-unavailable",
            "out of someone else's account: {}",
            context()
        ),
        422 => {
            let allowed: &[&str] = match pay.to {
                Payee::Unknown => &["urn:problem:unknown-payee"],
                // The payer's balance is judged before the payee (so a payer
                // who cannot pay learns nothing of the payee), and why another
                // customer's account cannot receive is theirs.
                Payee::Account(to)
                    if case.accounts[to].1 != case.accounts[pay.from].1 && case.strangers(pay.from, to) =>
                {
                    &["urn:problem:payee-cannot-receive", "urn:problem:insufficient-funds"]
                }
                Payee::Account(to) if case.accounts[to].1 != case.accounts[pay.from].1 => {
                    &["urn:problem:currency-mismatch", "urn:problem:insufficient-funds"]
                }
                Payee::Account(_) => &["urn:problem:insufficient-funds"],
            };
            let kind = answer.kind();
            assert!(
                allowed.contains(&kind)
                    || kind == "urn:problem:accounts-unavailable"
                    || kind == "urn:problem:idempotency-key-reused",
                "{}",
                context()
            );
        }
        409 => assert_eq!(answer.kind(), "urn:problem:idempotency-in-progress", "{}", context()),
        // The invocation ran out of time (moto serves one request at a time,
        // and its transactions slow down as tables grow): always allowed,
        // the key stays bound and a retry continues.
        503 if answer.kind() == "urn:problem:timeout" => {}
        503 => assert!(faults_possible, "a 503 with no DynamoDB fault: {}", context()),
        _ => panic!("unexpected answer: {}", context()),
    }
}

impl Case {
    fn record(&mut self, key: &str, body: &Value, answer: &Answer) {
        if let Some(id) = answer.payment_id() {
            self.ids.entry(key.to_owned()).or_default().insert(id);
            self.binding.entry(key.to_owned()).or_insert_with(|| body.clone());
        } else if answer.status >= 500 {
            self.unsure.insert(key.to_owned());
        }
    }

    fn may_be_bound(&self, key: &str) -> bool {
        self.binding.contains_key(key) || self.unsure.contains(key)
    }
}

/// `POST /payments` as the owner, or as the stranger.
async fn pay_once(stack: &Stack, key: &str, body: &Value, stranger: bool) -> Result<Answer, reqwest::Error> {
    let token = if stranger { &stack.stranger } else { &stack.owner }
        .access_token
        .clone();
    pay_at(
        stack.http.clone(),
        stack.payments.url().to_owned(),
        key.to_owned(),
        body.clone(),
        token,
    )
    .await
}

/// `POST /payments` with owned arguments (`token`'s), for a spawned task.
async fn pay_at(
    http: reqwest::Client,
    base: String,
    key: String,
    body: Value,
    token: String,
) -> Result<Answer, reqwest::Error> {
    call(
        &http,
        reqwest::Method::POST,
        format!("{base}/payments"),
        Some(&body),
        Some(&key),
        Auth::Token(&token),
    )
    .await
}

async fn apply(stack: &mut Stack, case: &mut Case, op: Op) {
    let n = case.pays.len();
    match op {
        Op::Open(cur, whose) => {
            let customer = match whose {
                Whose::Owner => &stack.owner.subject,
                Whose::Stranger => &stack.stranger.subject,
            };
            let answer = call(
                &stack.http,
                reqwest::Method::POST,
                format!("{}/accounts", stack.accounts.url()),
                Some(&json!({"holder": "model", "currency": cur.code()})),
                None,
                Auth::ServiceFor(&stack.service_token, customer),
            )
            .await
            .expect("accounts is up");
            assert_eq!(answer.status, 201, "{}", answer.raw);
            case.accounts
                .push((answer.body["id"].as_str().unwrap().to_owned(), cur, whose));
        }
        Op::Credit { account, amount } => {
            let reference = format!("m{}-credit-{}", case.number, case.credits.len());
            let (id, cur, _) = case.accounts[account].clone();
            let body = json!({"amount_minor": amount, "currency": cur.code(), "reference": reference});
            let answer = call(
                &stack.http,
                reqwest::Method::POST,
                format!("{}/accounts/{id}/credits", stack.accounts_proxy.url()),
                Some(&body),
                None,
                Auth::Service(&stack.service_token),
            )
            .await;
            let confirmed = matches!(&answer, Ok(a) if a.status == 201 || a.status == 200);
            if let Ok(a) = &answer {
                assert!(
                    confirmed || a.status >= 500,
                    "a credit is applied or unknown, never refused: {} {}",
                    a.status,
                    a.raw
                );
            }
            case.credits.push(Credit {
                account,
                amount,
                reference,
                confirmed,
            });
        }
        Op::Pay { from, to, amount, key } => {
            let fresh = |key: String| case.pay(key, from, to, amount, false);
            // A stranger's keys are the stranger's own: the owner reusing
            // one uses a key of their own.
            let pay = match key {
                KeyUse::Reuse { of, .. } if case.pays[of % n].stranger => fresh(format!("k{}-{n}", case.number)),
                KeyUse::Fresh => fresh(format!("k{}-{n}", case.number)),
                KeyUse::Reuse { of, same_body: true } => case.pays[of % n].clone(),
                KeyUse::Reuse { of, same_body: false } => fresh(case.pays[of % n].key.clone()),
            };
            let (key, body) = (pay.key.clone(), pay.body.clone());
            let reused_for_another = case.binding.get(&key).is_some_and(|bound| *bound != body);
            let answer = pay_once(stack, &key, &body, false)
                .await
                .expect("payments answers in time");
            // The key's binding is checked before the request is: a bound key
            // refuses another body, valid or not (Stripe's order too).
            let refused_as_reuse = answer.kind() == "urn:problem:idempotency-key-reused"
                || answer.kind() == "urn:problem:idempotency-in-progress";
            if reused_for_another {
                assert!(
                    refused_as_reuse,
                    "a key bound to another request: {pay:?} → {}",
                    answer.raw
                );
            } else if !(case.may_be_bound(&key) && refused_as_reuse) {
                check_pay(case, &pay, &answer, stack.throttling);
                case.record(&key, &body, &answer);
            }
            case.pays.push(pay);
        }
        Op::Duplicates {
            from,
            to,
            amount,
            copies,
        } => {
            let pay = case.pay(format!("k{}-{n}", case.number), from, to, amount, false);
            let (key, body) = (pay.key.clone(), pay.body.clone());
            let mut copies_in_flight = tokio::task::JoinSet::new();
            for _ in 0..copies {
                let (base, token) = (stack.payments.url().to_owned(), stack.owner.access_token.clone());
                copies_in_flight.spawn(pay_at(stack.http.clone(), base, key.clone(), body.clone(), token));
            }
            while let Some(answer) = copies_in_flight.join_next().await {
                let answer = answer.expect("a task").expect("payments answers in time");
                check_pay(case, &pay, &answer, stack.throttling);
                case.record(&key, &body, &answer);
            }
            case.pays.push(pay);
        }
        Op::PayAndKillPayments {
            from,
            to,
            amount,
            after_ms,
        } => {
            let key = format!("k{}-{n}", case.number);
            let body = case.pay_body(from, to, amount, &case.next_reference());
            let base = stack.payments.url().to_owned();
            let token = stack.owner.access_token.clone();
            let request = tokio::spawn(pay_at(stack.http.clone(), base, key.clone(), body.clone(), token));
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            // The sandbox is lost with the request in flight (or just after it).
            stack.payments.kill().await;
            let answer = request.await.expect("a task");
            match &answer {
                Ok(answer) => case.record(&key, &body, answer),
                Err(_) => {
                    case.unsure.insert(key.clone());
                }
            }
            stack.payments.restart().await.expect("payments starts again");
            case.pays.push(case.pay_with(key, body, from, to, amount, false));
        }
        Op::PayAsStranger { from, to, amount } => {
            let pay = case.pay(format!("s{}-{n}", case.number), from, to, amount, true);
            let (key, body) = (pay.key.clone(), pay.body.clone());
            let answer = pay_once(stack, &key, &body, true)
                .await
                .expect("payments answers in time");
            check_pay(case, &pay, &answer, stack.throttling);
            case.record(&key, &body, &answer);
            case.pays.push(pay);
        }
        Op::StallAccounts { ms } => {
            stack
                .accounts_proxy
                .set(vec![Rule::always(Fault::Stall(Duration::from_millis(ms)))])
                .await;
        }
        Op::KillAccounts => stack.accounts.kill().await,
        Op::RestartAccounts => stack.accounts.restart().await.expect("accounts starts again"),
        Op::Throttle { percent } => {
            stack.throttling = true;
            stack
                .dynamo_proxy
                .set(vec![Rule {
                    only: local_aws::faults::Match::Any,
                    fault: Fault::Throttle,
                    percent,
                }])
                .await;
        }
        Op::ClearFaults => {
            stack.accounts_proxy.clear().await;
            stack.dynamo_proxy.clear().await;
            stack.throttling = false;
        }
        Op::Wait { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
    }
}

// ---------------------------------------------------------------------------
// After a sequence: faults clear, the sweeper runs, and money adds up.

impl Stack {
    /// No faults, and both services running.
    async fn heal(&mut self) {
        self.accounts_proxy.clear().await;
        self.dynamo_proxy.clear().await;
        self.throttling = false;
        if !self.accounts.running() {
            self.accounts.restart().await.expect("accounts starts again");
        }
        if !self.payments.running() {
            self.payments.restart().await.expect("payments starts again");
        }
    }
}

async fn settle(stack: &mut Stack, case: &Case) {
    stack.heal().await;
    let started = tokio::time::Instant::now();
    // A read that ran out of its invocation's time is read again.
    let get = |url: String| {
        let (http, token) = (stack.http.clone(), stack.service_token.clone());
        async move {
            for _ in 0..20 {
                let answer = call(
                    &http,
                    reqwest::Method::GET,
                    url.clone(),
                    None,
                    None,
                    Auth::Service(&token),
                )
                .await?;
                if answer.kind() != "urn:problem:timeout" {
                    return Ok(answer);
                }
            }
            call(&http, reqwest::Method::GET, url, None, None, Auth::Service(&token)).await
        }
    };

    // External credits whose outcome was unknown: the same reference again
    // until accounts says what became of it.
    let mut credits = case.credits.clone();
    for credit in credits.iter_mut().filter(|c| !c.confirmed) {
        let (id, cur, _) = &case.accounts[credit.account];
        let body = json!({"amount_minor": credit.amount, "currency": cur.code(), "reference": credit.reference});
        for _ in 0..40 {
            let answer = call(
                &stack.http,
                reqwest::Method::POST,
                format!("{}/accounts/{id}/credits", stack.accounts.url()),
                Some(&body),
                None,
                Auth::Service(&stack.service_token),
            )
            .await;
            if matches!(&answer, Ok(a) if a.status == 200 || a.status == 201) {
                credit.confirmed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(credit.confirmed, "credit {} never settled", credit.reference);
    }

    // Every payment seen is made final by the sweeper alone, in bounded time.
    let seen: BTreeSet<String> = case.ids.values().flatten().cloned().collect();
    for id in &seen {
        loop {
            let answer = get(format!("{}/payments/{id}", stack.payments.url()))
                .await
                .expect("payments answers");
            assert_eq!(answer.status, 200, "{}", answer.raw);
            if answer.body["status"] == "completed" || answer.body["status"] == "failed" {
                break;
            }
            assert!(
                started.elapsed() < SETTLE_WITHIN,
                "payment {id} not final {SETTLE_WITHIN:?} after the faults cleared: {}",
                answer.raw
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    // Each key is bound to one request (its first valid one that reached
    // payments); sent again, that request gives its final answer, naming
    // the one payment the key ever made. Any other body under the key is
    // refused as a reuse.
    let mut candidates: BTreeMap<&str, Vec<&Pay>> = BTreeMap::new();
    // A payment out of someone else's account ends refused, and moves nothing.
    for pay in case.pays.iter().filter(|p| p.foreign && !p.invalid) {
        let answer = loop {
            let answer = pay_once(stack, &pay.key, &pay.body, pay.stranger)
                .await
                .expect("payments answers");
            if answer.status == 201 || answer.status == 422 {
                break answer;
            }
            assert!(
                started.elapsed() < SETTLE_WITHIN,
                "foreign {} not final: {}",
                pay.key,
                answer.raw
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(
            answer.status, 422,
            "a payment out of someone else's account: {}",
            answer.raw
        );
    }
    for pay in case.pays.iter().filter(|p| !p.invalid && !p.foreign) {
        let bodies = candidates.entry(&pay.key).or_default();
        if !bodies.iter().any(|p| p.body == pay.body) {
            bodies.push(pay);
        }
    }
    let mut payments: BTreeMap<String, (&Pay, Value)> = BTreeMap::new();
    for (key, bodies) in &candidates {
        let mut bound = None;
        for pay in bodies {
            let answer = loop {
                let answer = pay_once(stack, key, &pay.body, pay.stranger)
                    .await
                    .expect("payments answers");
                if answer.status == 201 || answer.status == 422 {
                    break answer;
                }
                assert!(
                    started.elapsed() < SETTLE_WITHIN,
                    "key {key} has no final answer {SETTLE_WITHIN:?} after the faults cleared: {}",
                    answer.raw
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            if answer.kind() == "urn:problem:idempotency-key-reused" {
                continue;
            }
            let id = answer
                .payment_id()
                .unwrap_or_else(|| panic!("the final answer names its payment: {}", answer.raw));
            assert!(bound.is_none(), "key {key} answered for two bodies: {bodies:?}");
            bound = Some((id, *pay));
        }
        let (id, pay) = bound.unwrap_or_else(|| panic!("key {key} is bound to none of {bodies:?}"));
        let mut ids = case.ids.get(*key).cloned().unwrap_or_default();
        ids.insert(id.clone());
        assert_eq!(ids.len(), 1, "key {key} made {} payments: {ids:?}", ids.len());
        let payment = get(format!("{}/payments/{id}", stack.payments.url()))
            .await
            .expect("payment");
        payments.insert(id, (pay, payment.body));
    }

    // No key, and no client reference, made two payments in the store.
    let stored = stored_payments(stack).await;
    let mut by_reference: BTreeMap<String, usize> = BTreeMap::new();
    for payment in &stored {
        *by_reference
            .entry(payment["reference"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    for (reference, count) in &by_reference {
        if reference.starts_with(&format!("m{}-", case.number)) {
            assert_eq!(*count, 1, "{count} payments with reference {reference}");
        }
    }

    // Completed payments moved their amount once, in both legs; failed ones
    // moved nothing; balances are the model's.
    let mut expected: Vec<i128> = vec![0; case.accounts.len()];
    for credit in &credits {
        expected[credit.account] += i128::from(credit.amount);
    }
    for (id, (pay, payment)) in &payments {
        let transfer_ref = format!("pay-{}", id.replace('-', ""));
        let payer = &case.accounts[pay.from].0;
        let transfer = get(format!(
            "{}/accounts/{payer}/transfers/{transfer_ref}",
            stack.accounts.url()
        ))
        .await
        .expect("accounts answers");
        match payment["status"].as_str() {
            Some("completed") => {
                assert_eq!(
                    transfer.status, 200,
                    "completed {id} without a transfer: {}",
                    transfer.raw
                );
                assert_eq!(transfer.body["state"], "applied", "{}", transfer.raw);
                assert_eq!(transfer.body["amount_minor"], pay.amount);
                let Payee::Account(to) = pay.to else {
                    panic!("completed a payment to an unknown account: {payment}")
                };
                expected[pay.from] -= i128::from(pay.amount);
                expected[to] += i128::from(pay.amount);
            }
            Some("failed") => assert!(
                transfer.status == 404 || transfer.body["state"] == "cancelled",
                "failed {id} but its transfer is {}",
                transfer.raw
            ),
            other => panic!("payment {id} is {other:?} after settling: {payment}"),
        }
    }
    for (i, (id, ..)) in case.accounts.iter().enumerate() {
        let account = get(format!("{}/accounts/{id}", stack.accounts.url()))
            .await
            .expect("account");
        assert_eq!(
            i128::from(account.body["balance_minor"].as_u64().unwrap()),
            expected[i],
            "balance of account {i} ({id}): {}",
            account.raw
        );
    }

    let audit = accounts::ledger::audit(&stack.ledger.snapshot().await.expect("ledger snapshot"));
    assert!(audit.is_sound(), "ledger invariants broken: {:#?}", audit.violations);
    let completed = payments.values().filter(|(_, p)| p["status"] == "completed").count();
    println!(
        "model: case {} sound: {} accounts, {} credits, {} requests under {} keys: {completed} payments completed, {} failed; settled in {:.1} s",
        case.number,
        case.accounts.len(),
        credits.len(),
        case.pays.len(),
        candidates.len(),
        payments.len() - completed,
        started.elapsed().as_secs_f64()
    );
}

/// Every payment in the payments table (read past the faults).
async fn stored_payments(stack: &Stack) -> Vec<Value> {
    #[derive(serde::Deserialize)]
    struct Row {
        payment: Value,
    }
    let mut out = Vec::new();
    let mut start = None;
    for _ in 0..1_000 {
        let page = stack
            .dynamodb
            .scan()
            .table_name(&stack.payments_table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan payments");
        let rows: Vec<Row> = serde_dynamo::from_items(page.items().to_vec()).expect("payment items");
        out.extend(rows.into_iter().map(|r| r.payment));
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------
// The harness proptest-state-machine drives.

struct Harness;

impl StateMachineTest for Harness {
    type SystemUnderTest = Case;
    type Reference = Model;

    fn init_test(_: &ModelState) -> Case {
        let world = world();
        let number = world.case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A case that failed left its faults behind; each starts from a healthy stack.
        let mut guard = world.stack.lock().unwrap_or_else(|e| e.into_inner());
        let stack = guard.as_mut().expect("the stack");
        world.runtime.block_on(stack.heal());
        Case {
            number,
            unknown_payee: uuid::Uuid::new_v4().to_string(),
            ..Case::default()
        }
    }

    fn apply(mut case: Case, _: &ModelState, op: Op) -> Case {
        let world = world();
        let mut guard = world.stack.lock().unwrap_or_else(|e| e.into_inner());
        let stack = guard.as_mut().expect("the stack");
        world.runtime.block_on(apply(stack, &mut case, op));
        case
    }

    fn teardown(case: Case, _: ModelState) {
        let world = world();
        let mut guard = world.stack.lock().unwrap_or_else(|e| e.into_inner());
        let stack = guard.as_mut().expect("the stack");
        world.runtime.block_on(settle(stack, &case));
    }
}

fn seed() -> [u8; 32] {
    match std::env::var("MODEL_SEED") {
        Ok(hex) => {
            let mut seed = [0u8; 32];
            for (i, byte) in seed.iter_mut().enumerate() {
                *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16).expect("MODEL_SEED is hex");
            }
            seed
        }
        Err(_) => {
            let mut seed = [0u8; 32];
            seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            seed
        }
    }
}

/// Stops the stack when the test ends, passing or failing (statics are never dropped).
struct StopStack;

impl Drop for StopStack {
    fn drop(&mut self) {
        if let Some(world) = WORLD.get() {
            let stack = world.stack.lock().unwrap_or_else(|e| e.into_inner()).take();
            world.runtime.block_on(async move { drop(stack) });
        }
    }
}

#[test]
fn money_is_never_lost_stranded_duplicated_or_created() {
    let _stop = StopStack;
    let cases: u32 = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed = seed();
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    println!("model: {cases} cases, seed {hex} (rerun with MODEL_SEED={hex} MODEL_CASES={cases})");
    let config = Config {
        cases,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config.clone(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let result = runner.run(&Model::sequential_strategy(8..30), |(state, ops, seen)| {
        Harness::test_sequential(config.clone(), state, ops, seen);
        Ok(())
    });
    if let Err(err) = result {
        panic!("model test failed with seed {hex}: {err}");
    }
}
