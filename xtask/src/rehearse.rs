//! `cargo xtask rehearse`: a blue/green deployment of one service, rehearsed
//! on this machine with the real binaries. The local stack runs every
//! service; the service under test also runs as a Lambda function (version 1
//! behind the alias `live`, the release as version 2, optionally with
//! faults) behind a REST API stage. Steady synthetic customer traffic goes
//! through the stage while the CodeDeploy engine deploys 1 → 2 with the
//! stage's deployment configuration from `infra/cdk.json` and the rollback
//! policy `infra/` gives every group, running the real traffic hooks. The
//! customers run the service's `postman.traffic` folders ([`traffic`]);
//! version 1 is the current build or, with `--baseline REV`, the service as
//! it was at a git revision ([`baseline`]). The group's rollback alarms are
//! the stage's own (`infra/rollback-alarms.json`), put in a local
//! CloudWatch that reads the Lambda endpoint's, the API stage's and the
//! functions' EMF metrics and evaluates them on the rehearsal's clock; the
//! engine reads them as CodeDeploy does. The timeline is printed as it
//! happens, then what each version served, what the customers saw, which
//! alarms fired and how long a failing release served customers.

mod baseline;
mod traffic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use aws_sdk_codedeploy::types::{
    AlarmConfiguration, AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, ComputePlatform,
    DeploymentStatus, ErrorCode, LifecycleEventStatus, RevisionLocation, RevisionLocationType,
};
use local_aws::apigateway::{ApiGateway, Integration};
use local_aws::cloudwatch::alarms::{AlarmTarget, Definition, MetricRef, Source, StageThresholds, Watched};
use local_aws::cloudwatch::evaluate::AlarmState;
use local_aws::cloudwatch::store::Store;
use local_aws::cloudwatch::{Clock, CloudWatch};
use local_aws::codedeploy::{CodeDeploy, Engine};
use local_aws::lambda::LambdaInvoke;
use local_aws::lambda::fault::Injection;

use crate::stack::{Logs, Stack, local_deployment};

/// What the rehearsal is expected to end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Expect {
    /// The deployment succeeded: all traffic on version 2.
    Succeeded,
    /// It ended before any traffic shifted: no customer request reached version 2.
    StoppedBeforeTraffic,
    /// Traffic shifted, then the deployment failed or stopped and was rolled back to version 1.
    RolledBack,
    /// It could not start: one of the group's alarms was already in
    /// `ALARM` (CodeDeploy's `ALARM_ACTIVE` before the first hook), as when
    /// the version deployed is the one failing.
    BlockedByAlarm,
}

/// Rehearse a blue/green deployment of one service.
#[derive(clap::Args)]
pub struct Args {
    /// The service deployed.
    #[arg(long, default_value = "accounts")]
    pub service: String,
    /// The `infra/cdk.json` stage whose deployment configuration is used.
    #[arg(long, default_value = "prod")]
    pub stage: String,
    /// How many times faster than real time the deployment runs (60: a minute per second).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// A fault on version 2, as Fault Injection Service injects it:
    /// `http-500:30%`, `delay:800ms:50%`, `error:100%` (repeatable).
    #[arg(long = "fault")]
    pub faults: Vec<Injection>,
    /// The outcome that makes the exit status 0.
    #[arg(long, value_enum, default_value = "succeeded")]
    pub expect: Expect,
    /// Customer requests per second through the API stage.
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Build version 1 from this git revision (what is deployed, e.g.
    /// `origin/main`) instead of the current tree; version 2 is the current tree.
    #[arg(long, value_name = "REV")]
    pub baseline: Option<String>,
    /// A fault on version 1, the version deployed, in `--fault`'s syntax
    /// (repeatable): version 2 is the fix for a failing release. Version
    /// 1's failures set off the rollback alarms before the deployment
    /// starts, and CodeDeploy does not start one while an alarm is in
    /// `ALARM` (`--expect blocked-by-alarm`) unless `--override-alarms`.
    #[arg(long = "version-one-fault", value_name = "FAULT")]
    pub version_one_faults: Vec<Injection>,
    /// Create the deployment with its alarm polling off
    /// (`overrideAlarmConfiguration`), as the CodeDeploy API reference
    /// documents for shipping a fix while an alarm fires: no alarm can then
    /// stop or roll back this deployment, only the hooks.
    #[arg(long)]
    pub override_alarms: bool,
}

/// What the stage served one version: requests, 5xx answers, latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionStats {
    /// Requests it served.
    pub served: usize,
    /// Of them, answered 5xx.
    pub failed: usize,
    /// The 99th percentile of their latency (nearest rank).
    pub p99: Duration,
}

impl VersionStats {
    /// The statistics of requests with these `(status, latency)` pairs.
    fn of(answers: &[(u16, Duration)]) -> Self {
        let mut latencies: Vec<Duration> = answers.iter().map(|(_, latency)| *latency).collect();
        latencies.sort();
        let rank = (latencies.len() * 99).div_ceil(100);
        Self {
            served: answers.len(),
            failed: answers.iter().filter(|(status, _)| *status >= 500).count(),
            p99: rank.checked_sub(1).map(|i| latencies[i]).unwrap_or_default(),
        }
    }
}

/// How a rehearsal ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The deployment's final status.
    pub status: DeploymentStatus,
    /// Whether any traffic shifted to version 2.
    pub shifted: bool,
    /// Whether a rollback deployment put the alias back on version 1.
    pub rolled_back: bool,
    /// Requests through the stage per version.
    pub per_version: BTreeMap<String, VersionStats>,
    /// What the customers' runs of the traffic folders saw.
    pub seen: traffic::Seen,
    /// The stage's latency alarm threshold (`p99DurationMs`).
    pub p99_threshold: Duration,
    /// The rollback alarms that were in `ALARM` at some point.
    pub fired: Vec<String>,
    /// Alarms watching a metric nothing in the rehearsal emitted, with the metric.
    pub unwired: Vec<String>,
    /// Whether the deployment was stopped by an alarm before any lifecycle event ran.
    pub blocked: bool,
    /// Whether version 1 carried faults (`--version-one-fault`): its
    /// failures, and what customers saw of them, are the rehearsal's own.
    pub version_one_faulted: bool,
    /// The customers' failed assertions held against version 2: all of
    /// them, or with a faulted version 1 those of the runs started once
    /// version 2 served every request (a run that met version 1 may fail
    /// on its faults, or on what they left undone).
    pub customer_failures: usize,
    /// The runs those are counted over.
    pub judged_runs: usize,
}

/// Why a rehearsal's outcome is none of `--expect`'s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unsettled {
    /// Version 1, which carries no fault, answered 5xx: the local stack was
    /// overloaded or down (or the baseline is broken), so nothing is learnt
    /// about version 2.
    #[error(
        "version 1, which carries no fault, answered {0} requests with 5xx: the local stack was overloaded or went down (or the baseline is broken), so this says nothing about version 2; try a lower --rate or --speed"
    )]
    VersionOneFailed(usize),
    /// Version 1, which carries no fault, was slower than the latency alarm
    /// allows: the machine was saturated, and the alarm judged it.
    #[error(
        "version 1, which carries no fault, had a p99 latency of {} ms, over the stage's {} ms: the local stack was saturated, so the latency alarm judged the machine, not version 2; try a lower --rate",
        .p99.as_millis(),
        .threshold.as_millis()
    )]
    VersionOneSlow {
        /// Version 1's p99 latency.
        p99: Duration,
        /// The stage's threshold.
        threshold: Duration,
    },
    /// The deployment succeeded while version 2 answered 5xx.
    #[error(
        "the deployment succeeded while version 2 answered {0} requests with 5xx: the rollback alarms did not stop it"
    )]
    ServerErrors(usize),
    /// The deployment succeeded while version 2 was slower than the stage's latency alarm allows.
    #[error(
        "the deployment succeeded while version 2's p99 latency was {} ms, over the stage's p99DurationMs alarm threshold of {} ms: the latency alarm did not stop it",
        .p99.as_millis(),
        .threshold.as_millis()
    )]
    Slow {
        /// Version 2's p99 latency.
        p99: Duration,
        /// The stage's threshold.
        threshold: Duration,
    },
    /// The deployment succeeded while customers saw failed assertions.
    #[error("the deployment succeeded while customers saw {0} failed assertions or requests (above)")]
    CustomerFailures(usize),
    /// The deployment succeeded, but no customer run met version 2 alone,
    /// so what customers saw of it is unknown.
    #[error(
        "the deployment succeeded, but no customer run started once version 2 served every request, so what customers saw of it is unknown; try a higher --rate"
    )]
    NoRunOnTwo,
    /// The deployment ended without a rollback after traffic reached version 2.
    #[error("the deployment ended {0} after traffic reached version 2, and was not rolled back")]
    NotRolledBack(String),
    /// An alarm watches a metric nothing emitted: it could never fire.
    #[error("alarms watch metrics nothing emitted, so they could never fire: {}", .0.join("; "))]
    Unwired(Vec<String>),
}

impl Outcome {
    /// What this outcome is, in the terms of `--expect`, or why it is none
    /// of them. A deployment that succeeded is `Succeeded` only when
    /// version 2 answered no 5xx, stayed within the stage's latency alarm
    /// and no customer saw a failed assertion (production's alarms would
    /// otherwise roll it back, or customers saw wrong answers); and nothing
    /// counts while version 1 failed too, unless it was made to. A
    /// deployment an alarm stopped before it started is `BlockedByAlarm`.
    pub fn kind(&self) -> Result<Expect, Unsettled> {
        let one = self.per_version.get("1").cloned().unwrap_or_default();
        let two = self.per_version.get("2").cloned().unwrap_or_default();
        if self.blocked && !self.shifted && two.served == 0 {
            return Ok(Expect::BlockedByAlarm);
        }
        // A faulted version 1 fails by design: only version 2 is judged,
        // and customers' failed assertions cannot be told apart by version.
        if !self.version_one_faulted && one.failed > 0 {
            return Err(Unsettled::VersionOneFailed(one.failed));
        }
        if !self.version_one_faulted && one.p99 > self.p99_threshold {
            return Err(Unsettled::VersionOneSlow {
                p99: one.p99,
                threshold: self.p99_threshold,
            });
        }
        if !self.unwired.is_empty() {
            return Err(Unsettled::Unwired(self.unwired.clone()));
        }
        match &self.status {
            DeploymentStatus::Succeeded if two.failed > 0 => Err(Unsettled::ServerErrors(two.failed)),
            DeploymentStatus::Succeeded if two.p99 > self.p99_threshold => Err(Unsettled::Slow {
                p99: two.p99,
                threshold: self.p99_threshold,
            }),
            DeploymentStatus::Succeeded if self.judged_runs == 0 => Err(Unsettled::NoRunOnTwo),
            DeploymentStatus::Succeeded if self.customer_failures > 0 => {
                Err(Unsettled::CustomerFailures(self.customer_failures))
            }
            DeploymentStatus::Succeeded => Ok(Expect::Succeeded),
            _ if !self.shifted && two.served == 0 => Ok(Expect::StoppedBeforeTraffic),
            _ if self.rolled_back => Ok(Expect::RolledBack),
            status => Err(Unsettled::NotRolledBack(status.as_str().to_owned())),
        }
    }
}

/// The fastest clock: the hook timeout (an hour) becomes 6 s of real
/// time; [`MIN_HOOK_TIMEOUT`] keeps it longer than the hooks take here.
const MAX_SPEED: f64 = 600.0;

/// The shortest real time a hook is given to report, whatever `--speed`:
/// on a loaded machine the hooks' checks take seconds, and a hook timed
/// out by the clock's scale is a false rollback.
const MIN_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// The most customer requests per second: what the local stack (moto on
/// two cores) serves with room to spare, so the hooks' latency checks see
/// the release, not a saturated machine.
const MAX_RATE: u32 = 50;

/// What `infra/` deploys a stage with (`cdk.json`, context `fintech`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StageSettings {
    /// `app`: the first part of every name.
    pub(crate) app: String,
    /// `CodeDeployDefault.<deploymentConfig>`.
    pub(crate) config: String,
    /// `p99DurationMs`: the latency alarm's threshold.
    pub(crate) p99: Duration,
    /// `metricsNamespace`: the services' EMF namespace the alarms read.
    pub(crate) namespace: String,
}

pub(crate) fn stage_settings(stage: &str) -> anyhow::Result<StageSettings> {
    let path = local_aws::workspace_root().join("infra/cdk.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let stages = json["context"]["fintech"]["stages"]
        .as_array()
        .with_context(|| format!("{}: no context.fintech.stages", path.display()))?;
    let names: Vec<&str> = stages.iter().filter_map(|s| s["name"].as_str()).collect();
    let found = stages
        .iter()
        .find(|s| s["name"] == stage)
        .with_context(|| format!("--stage {stage}: infra/cdk.json has the stages {names:?}"))?;
    let config = found["deploymentConfig"]
        .as_str()
        .with_context(|| format!("infra/cdk.json: stage {stage} has no deploymentConfig"))?;
    let p99 = found["p99DurationMs"]
        .as_u64()
        .with_context(|| format!("infra/cdk.json: stage {stage} has no p99DurationMs (milliseconds)"))?;
    let namespace = json["context"]["fintech"]["metricsNamespace"]
        .as_str()
        .with_context(|| format!("{}: no context.fintech.metricsNamespace", path.display()))?;
    let app = json["context"]["fintech"]["app"]
        .as_str()
        .with_context(|| format!("{}: no context.fintech.app", path.display()))?;
    Ok(StageSettings {
        app: app.to_owned(),
        config: format!("CodeDeployDefault.{config}"),
        p99: Duration::from_millis(p99),
        namespace: namespace.to_owned(),
    })
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(1.0..=MAX_SPEED).contains(&args.speed) {
        bail!(
            "--speed {}: expected 1 to {MAX_SPEED} (60: one minute per second); faster, the hooks' own work outlasts the scaled hook timeout",
            args.speed
        );
    }
    if args.rate == 0 || args.rate > MAX_RATE {
        bail!(
            "--rate {}: expected 1 to {MAX_RATE} requests per second (more saturates the local stack, and the hooks would judge the machine, not the release)",
            args.rate
        );
    }
    stage_settings(&args.stage)?;
    if let Some(fault) = args
        .faults
        .iter()
        .chain(&args.version_one_faults)
        .find(|f| f.through.as_deref().is_some_and(|alias| alias != "live"))
    {
        bail!(
            "--fault {fault}: the rehearsal deploys through the alias live, so @live is the only alias a fault can name"
        );
    }
    let services = local_aws::registry::load()?;
    let Some(registered) = services.iter().find(|s| s.name == args.service) else {
        bail!(
            "--service {}: no such service (have: {:?})",
            args.service,
            services.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    };
    traffic::customer_folders(registered)?;
    // Before the stack: the baseline's build overwrites the current tree's
    // binary, which the stack's build links back.
    let work = async {
        let baseline = match &args.baseline {
            Some(revision) => Some(baseline::build(&args.service, revision).await?),
            None => None,
        };
        let stack = Stack::up(Logs::Quiet).await?;
        let result = tokio::select! {
            result = expected(&stack, &args, baseline.as_ref()) => result,
            signal = interrupted() => Err(signal),
        };
        stack.down().await;
        result
    };
    // An interrupted build or start-up ends here too: the stack's processes
    // and the baseline's worktree go with this process.
    let result = tokio::select! {
        result = work => result,
        signal = interrupted() => Err(signal),
    };
    Ok(if result? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Waits for Ctrl-C or SIGTERM; the error that ends the rehearsal with no outcome.
async fn interrupted() -> anyhow::Error {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => return anyhow::Error::new(err).context("listening for SIGTERM"),
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    anyhow::anyhow!("interrupted: the rehearsal stopped with no outcome")
}

/// Rehearses `args` on `stack`, version 1 from `baseline` if given;
/// whether it ended as `args.expect` says.
async fn expected(stack: &Stack, args: &Args, baseline: Option<&baseline::Baseline>) -> anyhow::Result<bool> {
    let stage = stage_settings(&args.stage)?;
    let outcome = rehearse(stack, args, &stage, baseline).await?;
    Ok(match outcome.kind() {
        Ok(kind) if kind == args.expect => {
            println!("\nrehearsal: {kind:?}, as expected");
            true
        }
        Ok(kind) => {
            println!("\nrehearsal: expected {:?}, got {kind:?}", args.expect);
            false
        }
        Err(unsettled) => {
            println!("\nrehearsal: expected {:?}, got none: {unsettled}", args.expect);
            false
        }
    })
}

/// One of the rehearsals the demo and the tests run.
struct Scenario {
    title: &'static str,
    /// Version 2's faults.
    faults: &'static [&'static str],
    /// Version 1's faults.
    version_one_faults: &'static [&'static str],
    /// Whether the deployment overrides its group's alarms with polling off.
    override_alarms: bool,
    expect: Expect,
}

impl Scenario {
    /// A rehearsal of version 2 with `faults`, version 1 healthy.
    const fn release(title: &'static str, faults: &'static [&'static str], expect: Expect) -> Self {
        Self {
            title,
            faults,
            version_one_faults: &[],
            override_alarms: false,
            expect,
        }
    }
}

/// The rehearsals the demo ends with: the current build of accounts shipped
/// as a good release; as a release whose every invocation answers 500,
/// stopped by the hooks before any customer request reaches it; and as one
/// the hooks pass (its fault only on invocations through the alias) that
/// answers 500 to 30 % of customers, rolled back by an alarm.
const STANDARD: &[Scenario] = &[
    Scenario::release("a good release ships", &[], Expect::Succeeded),
    Scenario::release(
        "a release that answers 500 is stopped before traffic",
        &["http-500:100%"],
        Expect::StoppedBeforeTraffic,
    ),
    Scenario::release(
        "a release that passes the hooks but answers 500 to 30% of customers is rolled back by an alarm",
        &["http-500:30%@live"],
        Expect::RolledBack,
    ),
];

/// The rehearsals `cargo xtask test` adds: a release slow for half of its
/// customers, rolled back by the latency alarm; and the fix for a version
/// 1 that answers 500 to 30 % of customers, blocked by the alarm version 1
/// set off, then shipped with the deployment's alarm polling overridden.
const MORE: &[Scenario] = &[
    Scenario::release(
        "a release that takes 2 s for half of its customers is rolled back by the latency alarm",
        &["delay:2000ms:50%@live"],
        Expect::RolledBack,
    ),
    Scenario {
        title: "the fix for a version that answers 500 to 30% of customers cannot start while the alarm that version set off fires",
        faults: &[],
        version_one_faults: &["http-500:30%"],
        override_alarms: false,
        expect: Expect::BlockedByAlarm,
    },
    Scenario {
        title: "the same fix ships with the deployment's alarm polling overridden (overrideAlarmConfiguration)",
        faults: &[],
        version_one_faults: &["http-500:30%"],
        override_alarms: true,
        expect: Expect::Succeeded,
    },
];

/// The demo's rehearsals ([`STANDARD`]); whether all ended as expected.
pub async fn standard(stack: &Stack) -> anyhow::Result<bool> {
    scenarios(stack, STANDARD).await
}

/// Every rehearsal `cargo xtask test` runs ([`STANDARD`] and [`MORE`]).
pub async fn all(stack: &Stack) -> anyhow::Result<bool> {
    Ok(scenarios(stack, STANDARD).await? & scenarios(stack, MORE).await?)
}

async fn scenarios(stack: &Stack, list: &[Scenario]) -> anyhow::Result<bool> {
    let parse = |faults: &[&str]| faults.iter().map(|f| f.parse()).collect::<Result<Vec<Injection>, _>>();
    let mut all = true;
    for scenario in list {
        println!("\n== rehearsal: {}\n", scenario.title);
        let args = Args {
            service: String::from("accounts"),
            stage: String::from("prod"),
            speed: 60.0,
            faults: parse(scenario.faults)?,
            expect: scenario.expect,
            rate: 20,
            baseline: None,
            version_one_faults: parse(scenario.version_one_faults)?,
            override_alarms: scenario.override_alarms,
        };
        all &= expected(stack, &args, None).await?;
    }
    Ok(all)
}

/// Runs one rehearsal on `stack` and prints its timeline and report.
async fn rehearse(
    stack: &Stack,
    args: &Args,
    stage: &StageSettings,
    baseline: Option<&baseline::Baseline>,
) -> anyhow::Result<Outcome> {
    let config = stage.config.as_str();
    let Some(env) = stack.function_env(&args.service) else {
        bail!(
            "--service {}: no such service (have: {:?})",
            args.service,
            stack.services.iter().map(|r| &r.service.name).collect::<Vec<_>>()
        );
    };
    let service = args.service.as_str();
    let registered = stack
        .services
        .iter()
        .find(|r| r.service.name == service)
        .map(|r| r.service.clone())
        .with_context(|| format!("--service {service}: not in the stack"))?;
    let lambda = LambdaInvoke::start().await?;
    // CloudWatch: Lambda's metrics and the functions' EMF (from here on),
    // the API stage's (below), alarms evaluated on the rehearsal's clock.
    let store = Arc::new(Store::default());
    lambda.publish_metrics(store.clone()).await;
    let clock = Clock {
        origin: SystemTime::now(),
        speed: args.speed,
    };
    let cloudwatch = CloudWatch::start(store.clone(), clock).await?;
    let cloudwatch_client = aws_sdk_cloudwatch::Client::new(&local_aws::sdk_config_at(cloudwatch.endpoint()).await);
    let scale = |d: Duration| d.div_f64(args.speed);
    lambda
        .set_async_retry_delays(vec![scale(Duration::from_secs(60)), scale(Duration::from_secs(120))])
        .await;
    let binary = stack.binary(service);
    let deployed_timeout = stack
        .services
        .iter()
        .find(|r| r.service.name == service)
        .and_then(|r| r.service.deploy.timeout);
    if let Some(seconds) = deployed_timeout {
        lambda.set_timeout(service, Duration::from_secs(seconds)).await;
    }
    let version_one: PathBuf = baseline.map_or_else(|| binary.clone(), |b| b.binary.clone());
    for (version, binary) in [("1", &version_one), ("2", &binary)] {
        lambda
            .publish(service, version, binary, &env)
            .await
            .with_context(|| format!("publishing {service} version {version}"))?;
    }
    lambda.alias(service, "live", "1").await;
    for (version, faults) in [("1", &args.version_one_faults), ("2", &args.faults)] {
        for fault in faults {
            lambda.inject(service, version, fault.clone()).await;
        }
    }
    let lambda_client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);
    let mut engine = Engine::new(lambda_client.clone());
    engine.speed = args.speed;
    engine.cloudwatch = Some(cloudwatch_client.clone());
    engine.hook_timeout = engine.hook_timeout.max(MIN_HOOK_TIMEOUT.mul_f64(args.speed));
    let codedeploy = CodeDeploy::start_with(engine).await?;
    let deployment = local_deployment();
    let gateway = ApiGateway::start(
        Integration {
            api_name: format!("{}-{}-{service}", deployment.app, deployment.stage),
            stage: deployment.stage.clone(),
            function: service.to_owned(),
            alias: String::from("live"),
        },
        lambda_client,
    )
    .await?;
    gateway.publish_metrics(store.clone());
    publish_hooks(stack, &lambda, &codedeploy, &gateway, service, env).await?;
    // The stage's rollback alarms, from the one definition infra/ deploys.
    let target = AlarmTarget {
        app: deployment.app.clone(),
        stage: deployment.stage.clone(),
        service: service.to_owned(),
        alias: String::from("live"),
        namespace: stage.namespace.clone(),
    };
    let definitions = Definition::load()?.for_service(
        &registered,
        StageThresholds {
            p99_duration_ms: stage.p99.as_secs_f64() * 1000.0,
        },
    );
    let mut alarm_names = Vec::new();
    for alarm in &definitions {
        let name = target.put(&cloudwatch_client, alarm).await.map_err(|err| {
            anyhow::anyhow!(
                "PutMetricAlarm {}: {}",
                alarm.id,
                aws_sdk_cloudwatch::error::DisplayErrorContext(&err)
            )
        })?;
        alarm_names.push(name);
    }
    let client = aws_sdk_codedeploy::Client::new(&local_aws::sdk_config_at(codedeploy.endpoint()).await);
    let application = format!("{}-{}", deployment.app, deployment.stage);
    group(&client, &application, service, config, &alarm_names).await?;
    println!(
        "Rollback alarms (infra/rollback-alarms.json): {}, each over {} s of deployment time.",
        definitions.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", "),
        definitions.first().map_or(0, |a| a.period_seconds)
    );

    let with = |version: &str, faults: &[Injection]| {
        if faults.is_empty() {
            String::new()
        } else {
            let faults: Vec<String> = faults.iter().map(ToString::to_string).collect();
            format!("; version {version} with {}", faults.join(", "))
        }
    };
    println!(
        "Rehearsing {service} 1 → 2 with {config} (stage {}), at {}× real time{}{}{}{}.",
        args.stage,
        args.speed,
        baseline
            .map(|b| format!("; version 1 is {service} at {} ({})", b.revision, &b.commit[..12]))
            .unwrap_or_default(),
        with("1", &args.version_one_faults),
        with("2", &args.faults),
        if args.override_alarms {
            "; the deployment overrides its group's alarms with polling off: no alarm can stop it"
        } else {
            ""
        }
    );
    let customer = stack
        .identity
        .customer(&stack.sdk_config().await, &local_aws::unique("rehearsal"))
        .await?;
    let traffic = Arc::new(traffic::Traffic::new(stack, service, gateway.url(), &customer.access_token).await?);
    println!(
        "Customer traffic: {} requests/s through {}: the collection's {:?} ({} requests a run), as a signed-in customer.\n",
        args.rate,
        gateway.url(),
        traffic.folders,
        traffic.requests_per_run
    );
    let running = Arc::new(AtomicBool::new(true));
    let traffic = tokio::spawn(traffic.send(args.rate, running.clone()));
    let cloudwatch = Arc::new(cloudwatch);
    let fired = tokio::spawn(alarms_fired(cloudwatch.clone(), running.clone()));
    // Some traffic on version 1 before the deployment starts; a failing
    // version 1 until it has set off an alarm.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if !args.version_one_faults.is_empty() {
        let period = definitions.iter().map(|a| a.period_seconds).max().unwrap_or(60);
        let bound = Duration::from_secs(5 * u64::from(period)).div_f64(args.speed) + Duration::from_secs(2);
        match first_alarm(&cloudwatch, bound).await {
            Some(alarm) => println!("Before the deployment: {alarm} is in ALARM (version 1 is failing).\n"),
            None if args.override_alarms => println!(
                "Before the deployment: no rollback alarm fired on version 1 within {:.1} s (the deployment does not watch them).\n",
                bound.as_secs_f64()
            ),
            // Deploying anyway would let version 1's alarm, going off
            // mid-shift, roll back a fix that did nothing wrong.
            None => bail!(
                "--version-one-fault: version 1 set off no rollback alarm within {:.1} s, so there is no alarm for the fix to be blocked by, and one going off mid-shift would blame version 2; use a fault an alarm sees (http-500, error, delay over the stage's p99), a higher --rate or a lower --speed",
                bound.as_secs_f64()
            ),
        }
    }
    let id = client
        .create_deployment()
        .application_name(&application)
        .deployment_group_name(service)
        .revision(revision(service))
        .set_override_alarm_configuration(
            args.override_alarms
                .then(|| AlarmConfiguration::builder().enabled(false).build()),
        )
        .send()
        .await
        .context("CreateDeployment")?
        .deployment_id
        .context("CreateDeployment returned no id")?;
    let started = Instant::now();
    let watched = watch(&client, &id, started, args.speed).await;
    // Traffic after the end shows where the alias settled; with a faulted
    // version 1, it is what customers are judged by (runs on version 2 alone).
    let after = if args.version_one_faults.is_empty() { 500 } else { 2_000 };
    tokio::time::sleep(Duration::from_millis(after)).await;
    running.store(false, Ordering::Relaxed);
    let seen = traffic.await.context("the customer traffic")?;
    let fired = fired.await.context("watching the alarms")?;
    let Ended {
        status,
        shifted,
        rollback,
        error,
        started: hooks_started,
    } = watched?;
    let rolled_back = match &rollback {
        Some(rollback) => watch(&client, rollback, started, args.speed).await?.status == DeploymentStatus::Succeeded,
        None => false,
    };
    let blocked = error == Some(ErrorCode::AlarmActive) && !hooks_started;
    if blocked {
        println!(
            "\nThe deployment could not start: CodeDeploy does not start a deployment while one of its group's alarms is in ALARM. To ship a fix for the version that set it off, create the deployment with its alarm polling overridden (overrideAlarmConfiguration; docs/runbook.md, \"Shipping a fix while an alarm fires\"); here: --override-alarms."
        );
    }
    let mut answers: BTreeMap<Option<String>, Vec<(u16, Duration)>> = BTreeMap::new();
    for served in gateway.served().await {
        answers
            .entry(served.version)
            .or_default()
            .push((served.status, served.latency));
    }
    let stats =
        |version: Option<&str>| VersionStats::of(answers.get(&version.map(str::to_owned)).map_or(&[], Vec::as_slice));
    let per_version: BTreeMap<String, VersionStats> =
        ["1", "2"].into_iter().map(|v| (v.to_owned(), stats(Some(v)))).collect();
    let unserved = stats(None);
    // The hooks' verdict log lines (traffic_gate::report), as CloudWatch Logs would show them.
    for hook in ["before-allow-traffic", "after-allow-traffic"] {
        for line in lambda.logs(hook).await {
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let message = json["message"].as_str().unwrap_or_default();
            if message.starts_with("verdict") {
                let reason = json["reason"].as_str().unwrap_or_default();
                println!(
                    "\n{hook}: {message}{}",
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {reason}")
                    }
                );
                let report: serde_json::Value =
                    serde_json::from_str(json["report"].as_str().unwrap_or_default()).unwrap_or_default();
                for assertion in report["assertions"].as_array().into_iter().flatten() {
                    if assertion[2] == false {
                        println!(
                            "  failed: {} / {}",
                            assertion[0].as_str().unwrap_or_default(),
                            assertion[1].as_str().unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    println!(
        "\nRequests through the stage (the customers' and the post-traffic checks') by the version that served them:"
    );
    println!(
        "| version | requests | failed (5xx) | p99 latency (alarm at {} ms) |\n|---|---|---|---|",
        stage.p99.as_millis()
    );
    for (version, row) in per_version
        .iter()
        .map(|(v, row)| (v.as_str(), row))
        .chain(Some(("(not invoked)", &unserved)).filter(|(_, row)| row.served > 0))
    {
        println!(
            "| {version} | {} | {} | {} ms |",
            row.served,
            row.failed,
            row.p99.as_millis()
        );
    }
    println!(
        "\nThe customers ran the traffic folders {} times ({} requests): {} failed assertions or requests.",
        seen.runs,
        seen.requests,
        seen.failures.len()
    );
    let mut shown: Vec<&String> = Vec::new();
    for failure in &seen.failures {
        if !shown.contains(&failure) && shown.len() < 5 {
            shown.push(failure);
            println!("  {failure}");
        }
    }
    // The wiring check: every alarm reads metrics something emitted.
    // A business metric (the service's EMF) may come only from a scheduled
    // function or a rare event the rehearsal does not run: it is named, not
    // held against the outcome; Lambda's and the stage's always flow here.
    let emitted = store.metrics();
    let mut unwired = Vec::new();
    for alarm in &definitions {
        let refs: Vec<&MetricRef> = match &alarm.watched {
            Watched::Metric(metric) => vec![metric],
            Watched::Expression { using, .. } => using.values().collect(),
        };
        for metric in refs {
            let id = target.metric(metric);
            if emitted.contains(&id) {
                continue;
            }
            let line = format!(
                "{} watches {} {} {:?}",
                target.alarm_name(alarm),
                id.namespace,
                id.name,
                id.dimensions
            );
            match metric.source {
                Source::Service => println!("\nNot exercised here (nothing in the rehearsal emitted it): {line}"),
                Source::Api | Source::Alias => unwired.push(line),
            }
        }
    }
    if fired.is_empty() {
        println!("\nNo rollback alarm fired.");
    } else {
        println!("\nAlarms that fired: {}", fired.join(", "));
    }
    let history = lambda.alias_history(service, "live").await;
    let served = gateway.served().await;
    if let Some(first) = served
        .iter()
        .find(|s| s.version.as_deref() == Some("2") && s.status >= 500)
    {
        let back = history
            .iter()
            .find(|(at, alias)| *at >= first.at && alias.function_version == "1" && alias.additional.is_none());
        match back {
            Some((at, _)) => {
                let real = at.duration_since(first.at).unwrap_or_default();
                let scaled = real.as_secs_f64() * args.speed;
                println!(
                    "From version 2's first 5xx to the alias back on version 1: {:.1} s real, {:.0} s ({:.1} min) of deployment time; version 2 answered {} requests through the stage with 5xx.",
                    real.as_secs_f64(),
                    scaled,
                    scaled / 60.0,
                    per_version.get("2").map_or(0, |v| v.failed)
                );
            }
            None => println!("Version 2 answered 5xx, and the alias never went back to version 1 alone."),
        }
    }
    let version_one_faulted = !args.version_one_faults.is_empty();
    let (judged_runs, customer_failures) = if version_one_faulted {
        let alone = history
            .iter()
            .find(|(_, alias)| alias.function_version == "2" && alias.additional.is_none())
            .map(|(at, _)| *at);
        let (runs, failures) = alone.map_or((0, 0), |at| seen.since(at));
        println!(
            "\nVersion 1 was faulted, so customers are judged by the {runs} runs started once version 2 served every request: {failures} failed assertions or requests."
        );
        (runs, failures)
    } else {
        (seen.runs, seen.failures.len())
    };
    let alias = lambda.get_alias(service, "live").await;
    if let Some(alias) = alias {
        println!(
            "\nAlias live now: version {}{}",
            alias.function_version,
            alias
                .additional
                .map(|(v, w)| format!(" with {:.0}% on version {v}", w * 100.0))
                .unwrap_or_default()
        );
    }
    Ok(Outcome {
        status,
        shifted,
        rolled_back,
        per_version,
        seen,
        p99_threshold: stage.p99,
        fired,
        unwired,
        blocked,
        version_one_faulted,
        customer_failures,
        judged_runs,
    })
}

/// The first rollback alarm in `ALARM` within `bound`, polled as [`alarms_fired`] does.
async fn first_alarm(cloudwatch: &CloudWatch, bound: Duration) -> Option<String> {
    let waited = Instant::now();
    while waited.elapsed() < bound {
        let states = cloudwatch.states().await;
        if let Some((name, _)) = states.into_iter().find(|(_, state)| *state == AlarmState::Alarm) {
            return Some(name);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The names of the alarms seen in `ALARM` while `running`, polled often
/// enough to see a state that lasts one period at the fastest clock.
async fn alarms_fired(cloudwatch: Arc<CloudWatch>, running: Arc<AtomicBool>) -> Vec<String> {
    let mut fired: Vec<String> = Vec::new();
    loop {
        for (name, state) in cloudwatch.states().await {
            if state == AlarmState::Alarm && !fired.contains(&name) {
                fired.push(name);
            }
        }
        if !running.load(Ordering::Relaxed) {
            return fired;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The traffic hooks as Lambda functions, configured as `infra/` configures
/// them: the hooks' machine client, the stage name in the events, and the
/// live URLs (the service under test through the API stage).
async fn publish_hooks(
    stack: &Stack,
    lambda: &LambdaInvoke,
    codedeploy: &CodeDeploy,
    gateway: &ApiGateway,
    service: &str,
    mut env: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let override_of = shared::config::override_var;
    env.extend([
        (
            String::from("AWS_ENDPOINT_URL_CODEDEPLOY"),
            codedeploy.endpoint().to_owned(),
        ),
        (String::from("AWS_ENDPOINT_URL_LAMBDA"), lambda.endpoint().to_owned()),
        (override_of("token_url"), stack.identity.token_url.clone()),
        (override_of("api_stage"), local_deployment().stage),
        (override_of(&format!("live_urls/{service}")), gateway.url().to_owned()),
    ]);
    for other in stack.services.iter().filter(|r| r.service.name != service) {
        env.push((
            override_of(&format!("live_urls/{}", other.service.name)),
            other.url.clone(),
        ));
    }
    for hook in ["before-allow-traffic", "after-allow-traffic"] {
        lambda.set_timeout(hook, Duration::from_secs(300)).await;
        lambda
            .publish(hook, "1", &stack.binary(hook), &env)
            .await
            .with_context(|| format!("publishing the {hook} hook"))?;
    }
    Ok(())
}

/// The application and the service's deployment group, as `infra/` makes
/// them: the stage's configuration, the rollback alarms, and rollback on
/// failure, stop and alarm.
async fn group(
    client: &aws_sdk_codedeploy::Client,
    application: &str,
    service: &str,
    config: &str,
    alarms: &[String],
) -> anyhow::Result<()> {
    client
        .create_application()
        .application_name(application)
        .compute_platform(ComputePlatform::Lambda)
        .send()
        .await
        .context("CreateApplication")?;
    let rollback = AutoRollbackConfiguration::builder()
        .enabled(true)
        .events(AutoRollbackEvent::DeploymentFailure)
        .events(AutoRollbackEvent::DeploymentStopOnRequest)
        .events(AutoRollbackEvent::DeploymentStopOnAlarm)
        .build();
    client
        .create_deployment_group()
        .application_name(application)
        .deployment_group_name(service)
        .service_role_arn("arn:aws:iam::000000000000:role/codedeploy")
        .deployment_config_name(config)
        .auto_rollback_configuration(rollback)
        .alarm_configuration(
            aws_sdk_codedeploy::types::AlarmConfiguration::builder()
                .enabled(true)
                .set_alarms(Some(
                    alarms
                        .iter()
                        .map(|name| aws_sdk_codedeploy::types::Alarm::builder().name(name).build())
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .context("CreateDeploymentGroup")?;
    Ok(())
}

/// The AppSpec CloudFormation sends for the alias `live` of `service`.
fn revision(service: &str) -> RevisionLocation {
    let appspec = serde_json::json!({
        "version": 0.0,
        "Resources": [{service: {"Type": "AWS::Lambda::Function", "Properties":
            {"Name": service, "Alias": "live", "CurrentVersion": "1", "TargetVersion": "2"}}}],
        "Hooks": [{"BeforeAllowTraffic": "before-allow-traffic"}, {"AfterAllowTraffic": "after-allow-traffic"}],
    });
    RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(appspec.to_string()).build())
        .build()
}

/// How a deployment ended, as [`watch`] saw it.
struct Ended {
    status: DeploymentStatus,
    /// Whether any traffic shifted to the target version.
    shifted: bool,
    /// The rollback deployment, if any.
    rollback: Option<String>,
    /// `errorInformation.code`.
    error: Option<ErrorCode>,
    /// Whether any lifecycle event ran (neither pending nor skipped).
    started: bool,
}

/// Polls the deployment until it ends, printing each change.
async fn watch(client: &aws_sdk_codedeploy::Client, id: &str, started: Instant, speed: f64) -> anyhow::Result<Ended> {
    let stamp = || {
        let elapsed = started.elapsed();
        let deployment_time = (elapsed.as_secs_f64() * speed) as u64;
        format!(
            "{:>6.1}s (deployment time {:>2}m{:02}s)",
            elapsed.as_secs_f64(),
            deployment_time / 60,
            deployment_time % 60
        )
    };
    let mut seen_events: BTreeMap<String, LifecycleEventStatus> = BTreeMap::new();
    let mut seen_messages = 0;
    let mut seen_status = None;
    let mut shifted = false;
    // Bounded: a deployment at the slowest predefined schedule and speed 1
    // ends within its hook timeouts and 90 minutes of shifting.
    let limit = Duration::from_secs(4 * 3600).div_f64(speed) + Duration::from_secs(120);
    while started.elapsed() < limit {
        // The target first: every lifecycle event it shows was preceded by
        // the status messages the deployment, read after it, then holds.
        let target = client
            .get_deployment_target()
            .deployment_id(id)
            .target_id(
                client
                    .list_deployment_targets()
                    .deployment_id(id)
                    .send()
                    .await
                    .context("ListDeploymentTargets")?
                    .target_ids
                    .unwrap_or_default()
                    .first()
                    .context("the deployment has no target")?,
            )
            .send()
            .await
            .context("GetDeploymentTarget")?
            .deployment_target
            .and_then(|t| t.lambda_target);
        let info = client
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .context("GetDeployment")?
            .deployment_info
            .context("GetDeployment returned nothing")?;
        let messages = info.deployment_status_messages.clone().unwrap_or_default();
        for message in &messages[seen_messages.min(messages.len())..] {
            println!("{}  {id} {message}", stamp());
        }
        shifted |= target
            .as_ref()
            .and_then(|t| t.lambda_function_info.as_ref())
            .is_some_and(|info| info.target_version_weight > 0.0);
        seen_messages = messages.len();
        for event in target.and_then(|t| t.lifecycle_events).unwrap_or_default() {
            let (Some(name), Some(status)) = (event.lifecycle_event_name, event.status) else {
                continue;
            };
            if seen_events.get(&name) != Some(&status) {
                println!("{}  {id} {name}: {}", stamp(), status.as_str());
                seen_events.insert(name, status);
            }
        }
        if seen_status.as_ref() != info.status.as_ref() {
            if let Some(status) = &info.status {
                println!("{}  {id} status {}", stamp(), status.as_str());
            }
            seen_status = info.status.clone();
        }
        if let Some(status @ (DeploymentStatus::Succeeded | DeploymentStatus::Failed | DeploymentStatus::Stopped)) =
            info.status.clone()
        {
            if let Some(error) = &info.error_information {
                println!(
                    "{}  {id} {}: {}",
                    stamp(),
                    error.code.as_ref().map_or("", |c| c.as_str()),
                    error.message.as_deref().unwrap_or_default()
                );
            }
            let rollback = info.rollback_info.and_then(|r| r.rollback_deployment_id);
            if let Some(rollback) = &rollback {
                println!("{}  {id} rolled back by {rollback}", stamp());
            }
            let ran = seen_events
                .values()
                .any(|s| !matches!(s, LifecycleEventStatus::Pending | LifecycleEventStatus::Skipped));
            return Ok(Ended {
                status,
                shifted,
                rollback,
                error: info.error_information.and_then(|e| e.code),
                started: ran,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("deployment {id} did not end within {limit:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: DeploymentStatus, shifted: bool, rolled_back: bool, on_two: (usize, usize)) -> Outcome {
        let stats = |served, failed| VersionStats {
            served,
            failed,
            p99: Duration::from_millis(40),
        };
        Outcome {
            status,
            shifted,
            rolled_back,
            per_version: BTreeMap::from([
                (String::from("1"), stats(40, 0)),
                (String::from("2"), stats(on_two.0, on_two.1)),
            ]),
            seen: traffic::Seen::default(),
            p99_threshold: Duration::from_secs(1),
            fired: Vec::new(),
            unwired: Vec::new(),
            blocked: false,
            version_one_faulted: false,
            customer_failures: 0,
            judged_runs: 10,
        }
    }

    #[test]
    fn an_outcome_is_what_customers_saw_not_only_the_deployment_status() {
        use DeploymentStatus::{Failed, Stopped, Succeeded};
        assert_eq!(outcome(Succeeded, true, false, (30, 0)).kind(), Ok(Expect::Succeeded));
        assert_eq!(
            outcome(Succeeded, true, false, (30, 1)).kind(),
            Err(Unsettled::ServerErrors(1))
        );
        let mut wrong_answers = outcome(Succeeded, true, false, (30, 0));
        wrong_answers.customer_failures = 1;
        assert_eq!(wrong_answers.kind(), Err(Unsettled::CustomerFailures(1)));
        let mut slow = outcome(Succeeded, true, false, (30, 0));
        slow.per_version.get_mut("2").unwrap().p99 = Duration::from_millis(1200);
        assert_eq!(
            slow.kind(),
            Err(Unsettled::Slow {
                p99: Duration::from_millis(1200),
                threshold: Duration::from_secs(1)
            })
        );
        assert_eq!(
            outcome(Failed, false, false, (0, 0)).kind(),
            Ok(Expect::StoppedBeforeTraffic)
        );
        assert_eq!(
            outcome(Stopped, false, true, (0, 0)).kind(),
            Ok(Expect::StoppedBeforeTraffic)
        );
        assert_eq!(
            outcome(Failed, false, false, (3, 3)).kind(),
            Err(Unsettled::NotRolledBack(String::from("Failed"))),
            "version 2 served customers"
        );
        assert_eq!(outcome(Failed, true, true, (12, 4)).kind(), Ok(Expect::RolledBack));
        assert_eq!(
            outcome(Failed, true, false, (12, 4)).kind(),
            Err(Unsettled::NotRolledBack(String::from("Failed")))
        );
        let mut overloaded = outcome(Failed, true, true, (12, 4));
        overloaded.per_version.get_mut("1").unwrap().failed = 2;
        assert_eq!(
            overloaded.kind(),
            Err(Unsettled::VersionOneFailed(2)),
            "a failing version 1 settles nothing"
        );
        let mut unwired = outcome(Succeeded, true, false, (30, 0));
        unwired.unwired.push(String::from("x watches AWS/Lambda Errors {}"));
        assert!(
            matches!(unwired.kind(), Err(Unsettled::Unwired(_))),
            "an alarm that could never fire settles nothing"
        );
        let mut saturated = outcome(Stopped, true, true, (12, 0));
        saturated.per_version.get_mut("1").unwrap().p99 = Duration::from_millis(1400);
        assert!(
            matches!(saturated.kind(), Err(Unsettled::VersionOneSlow { .. })),
            "a slow version 1 settles nothing"
        );
        // The fix for a failing version 1: blocked by its alarm, or shipped
        // with the alarms overridden; version 1's failures are the
        // rehearsal's own, and so are what customers saw of them.
        let mut blocked = outcome(Stopped, false, true, (0, 0));
        blocked.per_version.get_mut("1").unwrap().failed = 9;
        blocked.version_one_faulted = true;
        blocked.blocked = true;
        assert_eq!(blocked.kind(), Ok(Expect::BlockedByAlarm));
        let mut not_blocked = outcome(Stopped, false, true, (0, 0));
        not_blocked.version_one_faulted = true;
        assert_eq!(
            not_blocked.kind(),
            Ok(Expect::StoppedBeforeTraffic),
            "a hook stopped it"
        );
        let mut shipped = outcome(Succeeded, true, false, (30, 0));
        shipped.per_version.get_mut("1").unwrap().failed = 9;
        shipped.seen.failures.push(String::from("read it: status is 500"));
        shipped.version_one_faulted = true;
        assert_eq!(shipped.kind(), Ok(Expect::Succeeded));
        // Found by the attack: a faulted version 1 hid version 2's wrong
        // answers. What the runs on version 2 alone saw still counts, and
        // with no such run nothing is known.
        let mut wrong_fix = shipped.clone();
        wrong_fix.customer_failures = 3;
        assert_eq!(wrong_fix.kind(), Err(Unsettled::CustomerFailures(3)));
        let mut unseen = shipped.clone();
        unseen.judged_runs = 0;
        assert_eq!(unseen.kind(), Err(Unsettled::NoRunOnTwo));
        let mut broken_fix = outcome(Succeeded, true, false, (30, 2));
        broken_fix.version_one_faulted = true;
        assert_eq!(
            broken_fix.kind(),
            Err(Unsettled::ServerErrors(2)),
            "version 2 is still judged"
        );
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let ms = Duration::from_millis;
        assert_eq!(VersionStats::of(&[]), VersionStats::default());
        let hundred: Vec<(u16, Duration)> = (1..=100).map(|i| (200, ms(i))).collect();
        assert_eq!(VersionStats::of(&hundred).p99, ms(99));
        let one = VersionStats::of(&[(503, ms(7))]);
        assert_eq!((one.served, one.failed, one.p99), (1, 1, ms(7)));
        let mut two_hundred: Vec<(u16, Duration)> = (1..=200).rev().map(|i| (200, ms(i))).collect();
        two_hundred.push((404, ms(0)));
        assert_eq!(
            VersionStats::of(&two_hundred).p99,
            ms(198),
            "ceil(0.99 × 201) = 199th of 201"
        );
    }
}
