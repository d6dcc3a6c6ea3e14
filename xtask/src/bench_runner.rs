//! `cargo xtask bench runner`: one 20-request collection against the local
//! echo server, run by our collection runner (release binary) and by real
//! newman, alternating; wall time and peak RSS per process, medians.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::stack::{binary, build};

/// What one measured process cost.
#[derive(Debug, Serialize, Deserialize)]
struct Measurement {
    wall_ms: f64,
    max_rss_kib: i64,
    success: bool,
}

/// `cargo xtask bench measure -- <command…>`: runs the command as this
/// process's only child and prints its wall time and peak RSS (from
/// `getrusage(RUSAGE_CHILDREN)`, which covers exactly that child) as JSON.
pub fn measure(command: &[String]) -> anyhow::Result<ExitCode> {
    let (program, args) = command.split_first().context("bench measure: no command given")?;
    let started = Instant::now();
    let status = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {program}"))?;
    let wall = started.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    let measurement = Measurement {
        wall_ms: wall.as_secs_f64() * 1000.0,
        max_rss_kib: usage.max_rss(),
        success: status.success(),
    };
    println!("{}", serde_json::to_string(&measurement)?);
    Ok(ExitCode::SUCCESS)
}

async fn measured(command: &[String]) -> anyhow::Result<Measurement> {
    let me = std::env::current_exe()?;
    let output = Command::new(me)
        .args(["bench", "measure", "--"])
        .args(command)
        .output()
        .await
        .context("running bench measure")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let measurement: Measurement =
        serde_json::from_str(text.trim()).with_context(|| format!("bench measure printed {text:?}"))?;
    if !measurement.success {
        bail!("{} failed on the benchmark collection", command[0]);
    }
    Ok(measurement)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the benchmark `runs` times per runner and prints a Markdown table.
pub async fn run(runs: usize) -> anyhow::Result<ExitCode> {
    let newman = crate::postman::ensure_newman().await?;
    build(&["-p", "collection-runner", "--bin", "collection-runner"], "release").await?;
    let ours = binary("release", "collection-runner");
    let collection = local_aws::workspace_root()
        .join("hooks/collection-runner/tests/corpus/13-twenty-requests.postman_collection.json");
    let base = local_aws::echo::start().await;
    let env_var = format!("base={base}");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let ours_cmd = [
        path(&ours),
        "run".into(),
        path(&collection),
        "--env-var".into(),
        env_var.clone(),
        "--silent".into(),
    ];
    let newman_cmd = [
        path(&newman),
        "run".into(),
        path(&collection),
        "--env-var".into(),
        env_var,
        "--silent".into(),
    ];
    // One warm-up each, so neither pays for a cold page cache.
    measured(&ours_cmd).await?;
    measured(&newman_cmd).await?;
    let (mut ours_samples, mut newman_samples) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours_samples.push(measured(&ours_cmd).await?);
        newman_samples.push(measured(&newman_cmd).await?);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = |samples: &[Measurement]| {
        (
            median(samples.iter().map(|m| m.wall_ms).collect()),
            median(samples.iter().map(|m| m.max_rss_kib as f64).collect()) / 1024.0,
        )
    };
    let (our_wall, our_rss) = summary(&ours_samples);
    let (their_wall, their_rss) = summary(&newman_samples);
    println!(
        "20 requests (`{}`), {runs} runs each, medians.\n",
        collection.file_name().unwrap_or_default().to_string_lossy()
    );
    println!("| runner | wall time | peak RSS |");
    println!("|---|---|---|");
    println!("| collection-runner (release) | {our_wall:.1} ms | {our_rss:.1} MiB |");
    println!("| newman 6.2.2 | {their_wall:.1} ms | {their_rss:.1} MiB |");
    println!(
        "| ratio | {:.1}× faster | {:.1}% of newman's memory |",
        their_wall / our_wall,
        100.0 * our_rss / their_rss
    );
    Ok(ExitCode::SUCCESS)
}
