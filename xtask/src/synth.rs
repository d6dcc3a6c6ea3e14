//! `cargo xtask synth`: the CDK app's CloudFormation templates into
//! `infra/cdk.out`, offline and without AWS credentials, with the Rust
//! assets built by cargo-lambda (arm64, release), then `cfn-lint` on every
//! template. `cargo xtask test` runs the infra Jest tests and this.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio::process::Command;

/// Synthesize the CDK app and lint the templates.
#[derive(clap::Args)]
pub struct Args {
    /// Templates only: skip building the Rust assets (seconds instead of
    /// minutes; the result has placeholder assets and cannot be deployed).
    #[arg(long)]
    skip_assets: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    Ok(if synth_and_lint(args.skip_assets).await? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Synthesizes into `infra/cdk.out` (with the Rust assets unless
/// `skip_assets`) and lints; true when cfn-lint reports nothing.
pub async fn synth_and_lint(skip_assets: bool) -> anyhow::Result<bool> {
    crate::setup::ensure().await?;
    let bin = crate::setup::npm_ci("infra").await?;
    let templates = synth(&bin, skip_assets).await?;
    lint(&templates).await
}

/// Runs the Jest tests of `infra/` (cdk assertions, cdk-nag, buildspec); true when they pass.
pub async fn jest() -> anyhow::Result<bool> {
    let bin = crate::setup::npm_ci("infra").await?;
    let status = local_aws::process::command(bin.join("jest"))
        .arg("--silent")
        .current_dir(infra())
        .status()
        .await
        .context("running jest in infra/")?;
    Ok(status.success())
}

fn infra() -> PathBuf {
    local_aws::workspace_root().join("infra")
}

/// `cdk synth` with the virtualenv (cargo-lambda, zig) first on `PATH`;
/// returns every template written.
async fn synth(bin: &Path, skip_assets: bool) -> anyhow::Result<Vec<PathBuf>> {
    let out = infra().join("cdk.out");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let mut command = local_aws::process::command(bin.join("cdk"));
    command.args([
        "synth",
        "--quiet",
        "--no-notices",
        "--no-version-reporting",
        "--output",
        "cdk.out",
    ]);
    if skip_assets {
        eprintln!("synth: cdk synth (templates only, Rust assets skipped)");
        command.args(["--context", "skipAssets=true"]);
    } else {
        eprintln!("synth: cdk synth (building the Rust assets with cargo lambda, arm64, release)");
    }
    let status = command
        .env("PATH", crate::setup::venv_path())
        .env("CDK_DISABLE_CLI_TELEMETRY", "true")
        .current_dir(infra())
        .status()
        .await
        .context("running cdk synth")?;
    if !status.success() {
        bail!("cdk synth failed");
    }
    let mut templates = Vec::new();
    collect_templates(&out, &mut templates)?;
    if templates.is_empty() {
        bail!("cdk synth wrote no templates into {}", out.display());
    }
    templates.sort();
    for template in &templates {
        eprintln!("synth: {}", template.strip_prefix(&out).unwrap_or(template).display());
    }
    Ok(templates)
}

fn collect_templates(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_templates(&path, out)?;
        } else if path.to_string_lossy().ends_with(".template.json") {
            out.push(path);
        }
    }
    Ok(())
}

/// `cfn-lint` on the templates (settings in `infra/.cfnlintrc.yaml`); true when it reports nothing.
async fn lint(templates: &[PathBuf]) -> anyhow::Result<bool> {
    eprintln!("synth: cfn-lint on {} templates", templates.len());
    let status = Command::new(crate::setup::venv_bin("cfn-lint"))
        .args(templates)
        .current_dir(infra())
        .status()
        .await
        .context("running cfn-lint")?;
    if !status.success() {
        eprintln!("synth: cfn-lint found problems ({status})");
    }
    Ok(status.success())
}
