//! `collection-runner run <collection> [options]`: the `newman run` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use collection_runner::collection::{self, scope_of};
use collection_runner::runner::{self, Options};
use collection_runner::sandbox::Limits;
use collection_runner::transport::Http;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "collection-runner",
    version,
    about = "Runs Postman collections like `newman run`"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a collection (the options of `newman run`).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The collection file.
    collection: PathBuf,
    /// Environment file.
    #[arg(short = 'e', long)]
    environment: Option<PathBuf>,
    /// Globals file.
    #[arg(short = 'g', long)]
    globals: Option<PathBuf>,
    /// Iteration data file (JSON or CSV).
    #[arg(short = 'd', long = "iteration-data")]
    iteration_data: Option<PathBuf>,
    /// Number of iterations.
    #[arg(short = 'n', long = "iteration-count")]
    iteration_count: Option<usize>,
    /// Run only this folder or request (repeatable).
    #[arg(long)]
    folder: Vec<String>,
    /// Environment variable `key=value` (repeatable).
    #[arg(long = "env-var")]
    env_var: Vec<String>,
    /// Global variable `key=value` (repeatable).
    #[arg(long = "global-var")]
    global_var: Vec<String>,
    /// Stop at the first failure.
    #[arg(long)]
    bail: bool,
    /// Milliseconds between requests.
    #[arg(long = "delay-request", default_value_t = 0)]
    delay_request: u64,
    /// Milliseconds for the whole run.
    #[arg(long)]
    timeout: Option<u64>,
    /// Milliseconds per request.
    #[arg(long = "timeout-request")]
    timeout_request: Option<u64>,
    /// Milliseconds per script.
    #[arg(long = "timeout-script")]
    timeout_script: Option<u64>,
    /// Do not verify TLS certificates.
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Directory body files are read from.
    #[arg(long = "working-dir")]
    working_dir: Option<PathBuf>,
    /// Exit 0 even when something failed.
    #[arg(short = 'x', long = "suppress-exit-code")]
    suppress_exit_code: bool,
    /// Reporters: `cli`, `json`, `junit` (comma-separated).
    #[arg(short = 'r', long, default_value = "cli", value_delimiter = ',')]
    reporters: Vec<String>,
    /// Where the JSON report goes.
    #[arg(long = "reporter-json-export")]
    reporter_json_export: Option<PathBuf>,
    /// Where the JUnit report goes.
    #[arg(long = "reporter-junit-export")]
    reporter_junit_export: Option<PathBuf>,
    /// Colour output (accepted for compatibility; output is plain).
    #[arg(long)]
    color: Option<String>,
    /// Quieter output (accepted for compatibility).
    #[arg(long)]
    silent: bool,
}

fn pairs(list: &[String], flag: &str) -> anyhow::Result<Vec<(String, Value)>> {
    list.iter()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("{flag} {pair:?}: expected key=value"))?;
            Ok((key.to_owned(), Value::String(value.to_owned())))
        })
        .collect()
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let collection = collection::load_collection(&args.collection)?;
    let mut options = Options::default();
    if let Some(path) = &args.environment {
        let file = collection::load_variables(path)?;
        options.environment = scope_of(&file.values);
        options.environment_name = file.name;
    }
    for (key, value) in pairs(&args.env_var, "--env-var")? {
        options.environment.set(key, value);
    }
    if let Some(path) = &args.globals {
        options.globals = scope_of(&collection::load_variables(path)?.values);
    }
    for (key, value) in pairs(&args.global_var, "--global-var")? {
        options.globals.set(key, value);
    }
    if let Some(path) = &args.iteration_data {
        options.data = collection::load_data(path)?;
    }
    options.iterations = args.iteration_count;
    options.folders = args.folder.clone();
    options.bail = args.bail;
    options.delay = Duration::from_millis(args.delay_request);
    options.timeout = args.timeout.map(Duration::from_millis);
    options.timeout_request = args.timeout_request.map(Duration::from_millis);
    options.limits = Limits {
        timeout: args
            .timeout_script
            .map(Duration::from_millis)
            .unwrap_or(Limits::default().timeout),
        ..Limits::default()
    };
    options.working_dir = args.working_dir.clone().unwrap_or_else(|| PathBuf::from("."));
    if !args.folder.is_empty() && runner::count(&collection, &args.folder) == 0 {
        anyhow::bail!("--folder {:?}: no folder or request with that name or id", args.folder);
    }
    let summary = runner::run(&collection, &options, &Http::new(args.insecure)).await?;
    for reporter in &args.reporters {
        match reporter.as_str() {
            "cli" => {
                if !args.silent {
                    print!("{}", summary.to_cli());
                }
            }
            "json" => {
                let path = args
                    .reporter_json_export
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("newman-run-report.json"));
                std::fs::write(&path, serde_json::to_string_pretty(&summary.to_json())?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            "junit" => {
                let path = args
                    .reporter_junit_export
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("newman-run-report.xml"));
                std::fs::write(&path, summary.to_junit()).with_context(|| format!("writing {}", path.display()))?;
            }
            other => anyhow::bail!("reporter {other:?}: expected cli, json or junit"),
        }
    }
    Ok(if summary.passed() || args.suppress_exit_code {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Command::Run(args) = Cli::parse().command;
    match run(args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
