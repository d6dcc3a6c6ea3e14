//! `cargo xtask pact`: regenerate every consumer's pacts into `pacts/`, then
//! verify every provider against them on the local stack. `cargo xtask test`
//! runs the same tests, but there a consumer test fails instead of rewriting
//! a pact whose contract changed.

use std::process::ExitCode;

use anyhow::Context;

/// Regenerate the pacts in pacts/ and verify the providers against them.
#[derive(clap::Args)]
pub struct Args {}

async fn nextest(filter: &str, env: &[(&str, String)]) -> anyhow::Result<bool> {
    let status = local_aws::process::cargo()
        .args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            "-E",
            filter,
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.clone())))
        .current_dir(local_aws::workspace_root())
        .status()
        .await
        .context("running cargo nextest")?;
    Ok(status.success())
}

pub async fn run(_: Args) -> anyhow::Result<ExitCode> {
    crate::setup::ensure().await?;
    eprintln!("pact: consumer tests (writing pacts/)");
    if !nextest(
        "package(payments) and test(/^pact_consumer::/)",
        &[("PACT_UPDATE", String::from("1"))],
    )
    .await?
    {
        return Ok(ExitCode::FAILURE);
    }
    let moto = local_aws::Moto::start().await?;
    eprintln!("pact: provider verification");
    let verified = nextest("package(accounts) and test(/^pact_provider::/)", &moto.env()).await;
    moto.stop().await;
    Ok(if verified? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
