//! `cargo xtask setup`: a project-local virtualenv with moto's server,
//! cargo-lambda and cfn-lint, and the npm packages of `postman/` (newman) and
//! `infra/` (CDK). Does nothing for what is already there.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::process::Command;

/// Install what the other commands need.
#[derive(clap::Args)]
pub struct Args {}

/// The Python packages, pinned to the major versions this project is tested with.
const PACKAGES: &[&str] = &["moto[server]>=5.1,<6", "cargo-lambda>=1.8,<2", "cfn-lint>=1.58,<2"];

pub async fn run(_: Args) -> anyhow::Result<ExitCode> {
    ensure().await?;
    cargo_generate().await?;
    for dir in ["postman", "infra"] {
        npm_ci(dir).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `npm ci` in `dir` (relative to the workspace root) unless its
/// `node_modules` is there; returns `dir/node_modules/.bin`.
pub async fn npm_ci(dir: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = local_aws::workspace_root().join(dir);
    let bin = dir.join("node_modules/.bin");
    if !bin.exists() {
        eprintln!("setup: npm ci in {}", dir.display());
        status(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm ci (is Node.js installed?)",
        )
        .await?;
    }
    Ok(bin)
}

/// `PATH` with the project's virtualenv first, so cargo-lambda finds the zig
/// that `pip install cargo-lambda` brought (`python3 -m ziglang`).
pub fn venv_path() -> std::ffi::OsString {
    let venv = local_aws::workspace_root().join(".venv/bin");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(venv).chain(std::env::split_paths(&rest))).unwrap_or(rest)
}

/// A tool installed into the project's virtualenv.
pub fn venv_bin(name: &str) -> std::path::PathBuf {
    local_aws::workspace_root().join(".venv/bin").join(name)
}

/// Creates `.venv` and installs the packages unless they are present.
pub async fn ensure() -> anyhow::Result<()> {
    let root = local_aws::workspace_root();
    let venv = root.join(".venv");
    let needed = [
        local_aws::Moto::binary(),
        venv_bin("cargo-lambda"),
        venv_bin("cfn-lint"),
    ];
    if needed.iter().all(|p| p.exists()) {
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
    for needed in &needed {
        if !Path::new(needed).exists() {
            bail!("{} is still missing after pip install", needed.display());
        }
    }
    Ok(())
}

/// The cargo-generate version the service template is used with. 0.23.7 is
/// the newest whose locked dependencies build with this workspace's Rust
/// (1.95): 0.24 to 0.26 lock crates that need 1.96 or 1.97. Without default
/// features it has no git support, which a template inside the workspace
/// does not need. It is built unoptimised (`--debug`): a template of a few
/// files renders as fast either way, and the optimised build took about 4
/// minutes on 2 cores of every fresh machine's test run.
pub const CARGO_GENERATE: &str = "0.23.7";

/// `.venv/bin/cargo-generate`, installed from crates.io (`cargo install
/// --locked --debug`) unless that version is already there.
pub async fn cargo_generate() -> anyhow::Result<std::path::PathBuf> {
    let bin = venv_bin("cargo-generate");
    let installed = match Command::new(&bin).arg("--version").output().await {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim() == format!("cargo generate {CARGO_GENERATE}"),
        Err(_) => false,
    };
    if !installed {
        eprintln!("setup: cargo install cargo-generate {CARGO_GENERATE} into .venv");
        status(
            local_aws::process::cargo()
                .args(["install", "cargo-generate", "--version"])
                .arg(format!("={CARGO_GENERATE}"))
                .args(["--locked", "--debug", "--no-default-features", "--root"])
                .arg(local_aws::workspace_root().join(".venv")),
            "cargo install cargo-generate",
        )
        .await?;
    }
    Ok(bin)
}

async fn status(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command.status().await.with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    Ok(())
}
