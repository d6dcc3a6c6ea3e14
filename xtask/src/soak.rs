//! `cargo xtask soak --cases N`: the model-based money test
//! (`services/payments/tests/model.rs`) with more cases than `cargo xtask
//! test` runs, against a local AWS stack. Prints the seed and a line per
//! case; `--seed` repeats a run.

use std::process::ExitCode;

use anyhow::Context;

/// Run the model-based money test longer.
#[derive(clap::Args)]
pub struct Args {
    /// Random sequences to run.
    #[arg(long, default_value_t = 100)]
    cases: u32,
    /// The 64-hex-digit seed of an earlier run (printed by every run).
    #[arg(long)]
    seed: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::setup::ensure().await?;
    let moto = local_aws::Moto::start().await?;
    let mut command = local_aws::process::cargo();
    command
        .args([
            "nextest",
            "run",
            "--locked",
            "-p",
            "payments",
            "-E",
            "test(/^model::/)",
            "--no-capture",
        ])
        .envs(moto.env())
        .env("MODEL_CASES", args.cases.to_string())
        .current_dir(local_aws::workspace_root());
    if let Some(seed) = &args.seed {
        command.env("MODEL_SEED", seed);
    }
    let status = command.status().await;
    moto.stop().await;
    let status = status.context("running cargo nextest")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
