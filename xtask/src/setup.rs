//! `cargo xtask setup`: a project-local virtualenv with moto's server and
//! cargo-lambda. Does nothing when both are already there.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::process::Command;

/// Install what the other commands need.
#[derive(clap::Args)]
pub struct Args {}

/// The Python packages, pinned to the major versions this project is tested with.
const PACKAGES: &[&str] = &["moto[server]>=5.1,<6", "cargo-lambda>=1.8,<2"];

pub async fn run(_: Args) -> anyhow::Result<ExitCode> {
    ensure().await?;
    Ok(ExitCode::SUCCESS)
}

/// Creates `.venv` and installs the packages unless they are present.
pub async fn ensure() -> anyhow::Result<()> {
    let root = local_aws::workspace_root();
    let venv = root.join(".venv");
    let moto = local_aws::Moto::binary();
    let cargo_lambda = venv.join("bin/cargo-lambda");
    if moto.exists() && cargo_lambda.exists() {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        eprintln!("setup: creating {}", venv.display());
        status(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )
        .await?;
    }
    eprintln!("setup: installing {}", PACKAGES.join(", "));
    let pip = venv.join("bin/pip");
    status(
        Command::new(&pip).args(["install", "--quiet"]).args(PACKAGES),
        "pip install",
    )
    .await?;
    for needed in [&moto, &cargo_lambda] {
        if !Path::new(needed).exists() {
            bail!("{} is still missing after pip install", needed.display());
        }
    }
    Ok(())
}

async fn status(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().await.with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    Ok(())
}
