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
    let (child, line) = spawn_until(binary, env, echo, "listening").await?;
    let url = line["address"]
        .as_str()
        .ok_or_else(|| Error::Process(format!("{}: `listening` without an address", binary.display())))?
        .to_owned();
    Ok((child, url))
}

/// Starts `binary` with `env` and waits for the JSON log line whose
/// `message` is `ready` (a scheduled function logs `scheduled locally`);
/// returns the process (killed when dropped) and that line.
pub async fn spawn_until(
    binary: &Path,
    env: &[(String, String)],
    echo: Option<String>,
    ready: &'static str,
) -> Result<(Child, serde_json::Value), Error> {
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
    let (tx, mut rx) = mpsc::channel::<serde_json::Value>(1);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut tx = Some(tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(json) = serde_json::from_str::<serde_json::Value>(&line).ok()
                && json["message"] == ready
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(json).await;
            }
            if let Some(prefix) = &echo {
                println!("[{prefix}] {line}");
            }
        }
    });
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(line)) => Ok((child, line)),
        _ => Err(Error::Process(format!(
            "{} did not log `{ready}` within 60 s",
            binary.display()
        ))),
    }
}

/// A function binary served on a local port that can be killed and
/// started again on the same address, as Lambda replaces a sandbox that
/// died (callers keep the URL they were given).
pub struct Process {
    binary: PathBuf,
    env: Vec<(String, String)>,
    echo: Option<String>,
    url: String,
    child: Option<Child>,
}

impl Process {
    /// Starts `binary` with `env` on a free port (see [`serve`]).
    pub async fn start(binary: &Path, env: &[(String, String)], echo: Option<String>) -> Result<Self, Error> {
        let (child, url) = serve(binary, env, echo.clone()).await?;
        Ok(Self {
            binary: binary.to_path_buf(),
            env: env.to_vec(),
            echo,
            url,
            child: Some(child),
        })
    }

    /// `http://127.0.0.1:port`, the same across restarts.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the process (SIGKILL: no cleanup, as when a sandbox is lost) and waits for it to go.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits until the process exits on its own (or was killed).
    pub async fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = match &mut self.child {
            Some(child) => child.wait().await.ok(),
            None => None,
        };
        self.child = None;
        status
    }

    /// Starts the binary again on the same address. The old listener's port
    /// is free again as soon as its process is gone (listeners reuse addresses).
    pub async fn restart(&mut self) -> Result<(), Error> {
        self.kill().await;
        let address = self.url.trim_start_matches("http://").to_owned();
        let mut env = self.env.clone();
        env.retain(|(name, _)| name != shared::env::BIND_ADDR);
        env.push((shared::env::BIND_ADDR.to_owned(), address));
        let mut last = None;
        // The port can take a moment to be free after a kill.
        for _ in 0..20 {
            match serve(&self.binary, &env, self.echo.clone()).await {
                Ok((child, url)) if url == self.url => {
                    self.child = Some(child);
                    return Ok(());
                }
                Ok((_, url)) => last = Some(Error::Process(format!("restarted on {url}, not {}", self.url))),
                Err(err) => last = Some(err),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| Error::Process(String::from("restart failed"))))
    }
}

/// Builds example `name` of this crate and returns its path (see [`build_workspace`]).
pub async fn build_example(name: &str) -> Result<PathBuf, Error> {
    Ok(build_workspace().await?.join("examples").join(name))
}

/// A command for `program` without the variables cargo sets for the crate
/// it runs — a test, or xtask under `cargo run`: `CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*`, `CARGO_BIN_EXE_*`, … Use it for cargo and for anything that
/// runs cargo (the CDK's `cargo lambda build`, Jest).
///
/// A cargo started from there would otherwise inherit them, and build
/// scripts that watch them (ring's, with `rerun-if-env-changed=
/// CARGO_MANIFEST_DIR`) would see them change between this cargo and the one
/// that built the caller: ring, rustls and every AWS SDK crate would be
/// recompiled, back and forth, on every such call.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_for_a_crate) {
            command.env_remove(name);
        }
    }
    command
}

/// [`command`] for cargo: `$CARGO`, else `cargo` on `PATH`.
pub fn cargo() -> Command {
    command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Whether cargo sets variable `name` for the crate it compiles or runs
/// (the Cargo book, "Environment variables Cargo sets for crates").
pub fn is_set_for_a_crate(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
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
    let args = [
        "build",
        "--quiet",
        "--profile",
        "test",
        "--workspace",
        "--bins",
        "--examples",
    ];
    let status = cargo().args(args).current_dir(crate::workspace_root()).status().await?;
    if !status.success() {
        return Err(Error::Process(format!("cargo {} failed", args.join(" "))));
    }
    Ok(target_dir().join("debug"))
}

/// The workspace's target directory: `CARGO_TARGET_DIR`, else `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::workspace_root().join("target"))
}
