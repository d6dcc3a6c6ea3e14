//! Running a function binary as a local HTTP server (no
//! `AWS_LAMBDA_RUNTIME_API`, so `shared::runtime::run` listens on a port) and
//! building the workspace's example binaries.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::Error;

/// Starts `binary` with `env` on a port it picks and waits for its
/// `listening` log line; returns the process (killed when dropped) and its
/// base URL. With `echo` set, every log line is printed with that prefix.
pub async fn serve(binary: &Path, env: &[(String, String)], echo: Option<String>) -> Result<(Child, String), Error> {
    let mut child = Command::new(binary)
        .envs(env.iter().cloned())
        .env_remove(shared::env::AWS_LAMBDA_RUNTIME_API)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Process(format!("{}: no stdout", binary.display())))?;
    let (tx, mut rx) = mpsc::channel::<String>(1);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            let json: Option<serde_json::Value> = serde_json::from_str(&line).ok();
            if let Some(json) = &json
                && json["message"] == "listening"
                && let (Some(tx), Some(address)) = (tx.take(), json["address"].as_str())
            {
                let _ = tx.send(address.to_owned()).await;
            }
            if let Some(prefix) = &echo {
                println!("[{prefix}] {line}");
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(url)) => Ok((child, url)),
        _ => Err(Error::Process(format!(
            "{} did not report listening within 60 s",
            binary.display()
        ))),
    }
}

/// Builds example `name` of this crate and returns its path (see [`build_workspace`]).
pub async fn build_example(name: &str) -> Result<PathBuf, Error> {
    Ok(build_workspace().await?.join("examples").join(name))
}

/// Builds binary `bin` of the workspace and returns its path (see [`build_workspace`]).
pub async fn build_binary(bin: &str) -> Result<PathBuf, Error> {
    Ok(build_workspace().await?.join(bin))
}

/// Builds every binary and example of the workspace and returns the
/// directory they are in.
///
/// This is the one build shape of everything that runs the workspace's
/// binaries locally (tests, `cargo xtask dev/demo/postman/hook`), and it is
/// the shape `cargo test --workspace` builds them in: cargo profile `test`
/// with every member's dev-dependencies in the feature resolution (an
/// example needs them). A `cargo build -p <service>` would resolve features
/// without the dev-dependencies (whose `aws-smithy-mocks` turns on the SDK's
/// `test-util`) and under profile `dev`, so it would compile a second copy
/// of every dependency: minutes, and gigabytes of `target/`. (So would
/// `--exclude xtask`: the packages a build selects are the ones whose
/// features it unifies.)
pub async fn build_workspace() -> Result<PathBuf, Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo"));
    let args = [
        "build",
        "--quiet",
        "--profile",
        "test",
        "--workspace",
        "--bins",
        "--examples",
    ];
    let status = Command::new(cargo)
        .args(args)
        .current_dir(crate::workspace_root())
        .status()
        .await?;
    if !status.success() {
        return Err(Error::Process(format!("cargo {} failed", args.join(" "))));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::workspace_root().join("target"));
    Ok(target.join("debug"))
}
