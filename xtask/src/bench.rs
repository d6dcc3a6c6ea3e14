//! `cargo xtask bench runner` is in `bench_runner`.
//!
//! `cargo xtask bench cold-start`: each service's release binary under a
//! minimal local Lambda Runtime API, beside a hello-world `lambda_http`
//! binary, with config and secrets fetched from the local stack. Prints a
//! Markdown report (the figures in docs/benchmarks.md come from it).

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use local_aws::Moto;
use local_aws::runtime_api::{Outcome, RuntimeApi};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::stack::{binary, build, local_deployment, service_env};

/// Benchmarks.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Init and first-response time of each service's release binary under a local Runtime API.
    ColdStart {
        /// Runs per binary (the median is reported).
        #[arg(long, default_value_t = 21)]
        runs: usize,
        /// Also build the arm64 zip with `cargo lambda` and report its size.
        #[arg(long)]
        zip: bool,
        /// The cargo profile to build with (see `[profile.*]` in Cargo.toml).
        #[arg(long, default_value = "release")]
        profile: String,
    },
    /// Our collection runner against real newman: wall time and peak RSS on a 20-request collection.
    Runner {
        /// Runs per runner (the median is reported).
        #[arg(long, default_value_t = 11)]
        runs: usize,
    },
    /// Concurrent clients paying against the local stack; throughput, latency per route, and no money lost.
    Load {
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// How long they run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// A traffic hook's verdict for a 20-request collection through the Lambda-invoke transport.
    Hook {
        /// Verdicts timed (the median is reported).
        #[arg(long, default_value_t = 11)]
        runs: usize,
    },
    /// What checking a bearer token costs a warm function: the verifier alone, and a request through the edge.
    Verify {
        /// Verifications and requests timed (medians and p99 reported).
        #[arg(long, default_value_t = 2001)]
        runs: usize,
    },
    /// Runs a command as the only child and prints its wall time and peak RSS (used by `bench runner`).
    #[command(hide = true)]
    Measure {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.which {
        Which::ColdStart { runs, zip, profile } => cold_start(runs, zip, &profile).await,
        Which::Runner { runs } => crate::bench_runner::run(runs).await,
        Which::Hook { runs } => crate::bench_hook::run(runs).await,
        Which::Load { clients, seconds } => crate::bench_load::run(clients, seconds).await,
        Which::Verify { runs } => crate::bench_verify::run(runs).await,
        Which::Measure { command } => crate::bench_runner::measure(&command),
    }
}

/// One cold start.
struct Sample {
    init: Duration,
    first_response: Duration,
    aws_wait: Option<Duration>,
    sdk_config: Option<Duration>,
    in_main: Option<Duration>,
}

/// An API Gateway HTTP API (v2) event for `GET path`.
fn event(path: &str, bearer: &str) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {bearer}"), "host": "bench.local"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "bench", "domainName": "bench.local", "domainPrefix": "bench",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "26/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
    .to_string()
}

async fn once(
    path: &std::path::Path,
    name: &str,
    env: &[(String, String)],
    event: &str,
    trace: Option<&str>,
) -> anyhow::Result<Sample> {
    let mut api = RuntimeApi::start().await?;
    let started = Instant::now();
    let mut child = Command::new(path)
        .envs(env.iter().cloned())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let polled = api.next_poll(Duration::from_secs(30)).await?;
    let outcome = api
        .invoke_traced(event.as_bytes().to_vec().into(), trace, Duration::from_secs(30))
        .await?;
    let first_response = started.elapsed();
    if let Outcome::Error(body) = outcome {
        bail!("{name} answered with an error: {}", String::from_utf8_lossy(&body));
    }
    let _ = child.start_kill();
    let mut aws_wait = None;
    let mut sdk_config = None;
    let mut in_main = None;
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if json["message"] == "initialized" {
                let field = |name: &str| json[name].as_f64().map(|ms| Duration::from_secs_f64(ms / 1000.0));
                aws_wait = field("aws_wait_ms");
                sdk_config = field("sdk_config_ms");
                in_main = field("init_ms");
            }
        }
    }
    let _ = child.wait().await;
    Ok(Sample {
        init: polled - started,
        first_response,
        aws_wait,
        sdk_config,
        in_main,
    })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Medians of one binary's samples.
#[derive(Clone, Copy)]
struct Medians {
    init: Duration,
    /// Init minus the time spent waiting for AWS at init.
    own: Duration,
}

/// Prints one report row and returns its medians. `against` is the
/// baseline's medians and, for a traced row, the same binary's untraced ones.
fn print_row(
    label: &str,
    path: &std::path::Path,
    samples: &[Sample],
    against: Option<(Medians, Option<Medians>)>,
) -> Medians {
    let init = median(samples.iter().map(|s| s.init).collect());
    let first = median(samples.iter().map(|s| s.first_response).collect());
    let optional = |pick: fn(&Sample) -> Option<Duration>| {
        let values: Vec<Duration> = samples.iter().filter_map(pick).collect();
        (!values.is_empty()).then(|| median(values))
    };
    let load = optional(|s| s.sdk_config);
    let main = optional(|s| s.in_main);
    let wait = optional(|s| s.aws_wait);
    let own = median(
        samples
            .iter()
            .map(|s| s.init.saturating_sub(s.aws_wait.unwrap_or_default()))
            .collect(),
    );
    let percent = |a: Duration, b: Duration| (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0;
    let (init_note, own_note) = match &against {
        None => (String::new(), String::new()),
        Some((base, None)) => (
            String::new(),
            format!(" ({:.2}× baseline init)", own.as_secs_f64() / base.init.as_secs_f64()),
        ),
        Some((base, Some(untraced))) => (
            format!(" ({:+.1}% vs without X-Ray)", percent(init, untraced.init)),
            format!(
                " ({:.2}× baseline init; {:+.1}% vs without X-Ray)",
                own.as_secs_f64() / base.init.as_secs_f64(),
                percent(own, untraced.own)
            ),
        ),
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or_default();
    println!(
        "| {label} | {}{init_note} | {} | {} | {} | {} | {}{own_note} | {:.2} MB |",
        ms(init),
        ms(first),
        main.map_or_else(|| String::from("-"), ms),
        load.map_or_else(|| String::from("-"), ms),
        wait.map_or_else(|| String::from("-"), ms),
        ms(own),
        size as f64 / 1_048_576.0
    );
    Medians { init, own }
}

async fn cold_start(runs: usize, zip: bool, profile: &str) -> anyhow::Result<ExitCode> {
    crate::setup::ensure().await?;
    let services = local_aws::registry::load()?;
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let packages: Vec<&str> = names.iter().flat_map(|name| ["-p", name]).collect();
    build(&packages, profile).await?;
    build(&["-p", "local-aws", "--example", "hello_lambda"], profile).await?;
    let moto = Moto::start().await?;
    let deployment = local_deployment();
    let sdk = moto.sdk_config().await;
    local_aws::seed::seed(&sdk, &deployment, &services).await?;
    // Each service fetches the user pool's signing keys at init and
    // verifies a customer's token on the first request.
    let identity = local_aws::identity::seed(&sdk, moto.endpoint(), &deployment, &services).await?;
    let customer = identity.customer(&sdk, "bench").await?;
    let mut env: Vec<(String, String)> = service_env(&moto, &deployment)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(identity.env());
    let hello_path = binary(profile, "examples/hello_lambda");
    // X-Ray on: a daemon stand-in to send to, and a sampled trace header.
    let daemon = local_aws::xray::Daemon::start().await?;
    let mut traced_env = env.clone();
    traced_env.push((shared::env::AWS_XRAY_DAEMON_ADDRESS.to_owned(), daemon.address()?));
    let (_, trace) = local_aws::xray::trace_header(&local_aws::xray::segment_id());

    println!("Profile `{profile}`, {runs} rounds of one cold start per binary.\n");
    println!(
        "| binary | init (exec → first /next), median | first response, median | in main until initialized, median | SDK config load, median | AWS wait at init, median | init minus AWS wait | stripped size |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // One round is a cold start of every binary, hello world first, each
    // service untraced then traced; the rounds repeat `runs` times. So drift
    // in the machine or the local stack over the run falls on the baseline
    // and the services alike, and the ratios compare like with like.
    let hello_event = event("/health", "");
    let targets: Vec<(String, std::path::PathBuf, String, String)> = services
        .iter()
        .map(|service| {
            let request = format!("{}/00000000-0000-4000-8000-000000000000", service.spec.route_prefix);
            let event = event(&request, &customer.access_token);
            (service.name.clone(), binary(profile, &service.name), request, event)
        })
        .collect();
    let mut hello = Vec::new();
    let mut samples: Vec<(Vec<Sample>, Vec<Sample>)> = targets.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for _ in 0..runs {
        hello.push(once(&hello_path, "hello_lambda", &env, &hello_event, None).await?);
        for ((name, path, _, event), (plain, traced)) in targets.iter().zip(&mut samples) {
            plain.push(once(path, name, &env, event, None).await?);
            traced.push(once(path, name, &traced_env, event, Some(&trace)).await?);
        }
    }
    let baseline = print_row("hello_lambda (baseline) (`/health`)", &hello_path, &hello, None);
    for ((name, path, request, _), (plain, traced)) in targets.iter().zip(&samples) {
        let untraced = print_row(&format!("{name} (`{request}`)"), path, plain, Some((baseline, None)));
        print_row(
            &format!("{name} + X-Ray (`{request}`)"),
            path,
            traced,
            Some((baseline, Some(untraced))),
        );
    }
    moto.stop().await;
    if zip {
        for service in &names {
            let lambda = local_aws::workspace_root().join(".venv/bin/cargo-lambda");
            let status = local_aws::process::command(&lambda)
                .args([
                    "lambda",
                    "build",
                    "--release",
                    "--arm64",
                    "--output-format",
                    "zip",
                    "-p",
                    service,
                ])
                .env("PATH", crate::setup::venv_path())
                .current_dir(local_aws::workspace_root())
                .status()
                .await?;
            if !status.success() {
                bail!("cargo lambda build for {service} failed");
            }
            let zip = local_aws::workspace_root()
                .join("target/lambda")
                .join(service)
                .join("bootstrap.zip");
            let size = std::fs::metadata(&zip)
                .with_context(|| format!("reading {}", zip.display()))?
                .len();
            println!(
                "\n{service}: arm64 zip {:.2} MB ({})",
                size as f64 / 1_048_576.0,
                zip.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
