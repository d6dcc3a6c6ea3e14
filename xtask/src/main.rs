//! Project commands: `cargo xtask <command>`.

mod alarms;
mod bench;
mod bench_hook;
mod bench_load;
mod bench_runner;
mod bench_verify;
mod demo;
mod dev;
mod hook;
mod new_service;
mod pact;
mod postman;
mod rehearse;
mod setup;
mod soak;
mod stack;
mod synth;
mod test;

use clap::{Parser, Subcommand};

/// Project commands for the serverless fintech template.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what the other commands need (idempotent): moto, cargo-lambda, cfn-lint, newman, the CDK app's packages.
    Setup(setup::Args),
    /// Run every check: fmt, clippy, and all tests against a local AWS stack.
    Test(test::Args),
    /// Start the local stack and every service on a local port until Ctrl-C.
    Dev(dev::Args),
    /// Start everything, drive each service end to end, print a report, stop.
    Demo(demo::Args),
    /// Regenerate the pacts in pacts/ from the consumer tests and verify every provider.
    Pact(pact::Args),
    /// Run every service's Postman collection with newman against the local stack.
    Postman(postman::Args),
    /// Benchmarks.
    Bench(bench::Args),
    /// Run the model-based money test (random requests and faults) for more cases.
    Soak(soak::Args),
    /// Rehearse a blue/green deployment of one service on this machine: hooks, traffic shifts, rollback.
    Rehearse(rehearse::Args),
    /// Run a CodeDeploy traffic hook locally against the local stack and the stand-ins.
    Hook(hook::Args),
    /// Create a new service from the template (templates/service/) with cargo-generate.
    NewService(new_service::Args),
    /// Print a stage's rollback alarms as the rehearsal puts them (JSON, CloudFormation property names).
    Alarms(alarms::Args),
    /// Synthesize the CDK app offline (building the arm64 Rust assets) and cfn-lint every template.
    Synth(synth::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(args) => setup::run(args).await,
        Command::Test(args) => test::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Pact(args) => pact::run(args).await,
        Command::Postman(args) => postman::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Soak(args) => soak::run(args).await,
        Command::Hook(args) => hook::run(args).await,
        Command::Rehearse(args) => rehearse::run(args).await,
        Command::Synth(args) => synth::run(args).await,
        Command::Alarms(args) => alarms::run(args).await,
        Command::NewService(args) => new_service::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
