//! `cargo xtask test`: the one command that checks everything, locally and in
//! CI: setup, fmt, clippy, doc tests, the Postman collections under newman
//! against the running services, the infra Jest tests (CDK assertions,
//! cdk-nag, buildspec), `cargo xtask synth` (real arm64 assets, cfn-lint),
//! then every test through nextest (among them a service generated from the
//! template into a copy of the workspace) with a local AWS stack that is stopped
//! even when tests fail. nextest's summary is the last line printed.

use std::process::ExitCode;

use anyhow::Context;

use crate::stack::{Logs, Stack};

/// Run every check.
#[derive(clap::Args)]
pub struct Args {
    /// Extra arguments for `cargo nextest run` (e.g. a test filter).
    #[arg(last = true)]
    nextest: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let clock = Clock(std::time::Instant::now());
    crate::setup::ensure().await?;
    let root = local_aws::workspace_root();
    let steps: [(&str, &[&str]); 3] = [
        ("fmt", &["fmt", "--all", "--", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("doc tests", &["test", "--workspace", "--doc", "--locked", "--quiet"]),
    ];
    for (name, step) in steps {
        clock.step(name);
        // Checked once per run, not edited into: incremental state (a
        // directory per target) would only take disk, which CI machines have
        // little of.
        let status = local_aws::process::cargo()
            .args(step)
            .env("CARGO_INCREMENTAL", "0")
            .current_dir(&root)
            .status()
            .await
            .with_context(|| format!("running cargo {name}"))?;
        if !status.success() {
            eprintln!("test: {name} failed");
            return Ok(ExitCode::FAILURE);
        }
    }
    clock.step("postman collections under newman");
    let newman = crate::postman::ensure_newman().await?;
    let stack = Stack::up(Logs::Quiet).await?;
    let collections = crate::postman::run_collections(&stack, &newman, &[], true).await;
    let rehearsals = match collections {
        Ok(true) => {
            clock.step("rehearsals (cargo xtask rehearse: --expect succeeded; --fault http-500:100% --expect stopped-before-traffic; --fault http-500:30%@live and delay:2000ms:50%@live --expect rolled-back)");
            crate::rehearse::all(&stack).await
        }
        other => other,
    };
    stack.down().await;
    if !rehearsals? {
        eprintln!("test: postman collections or rehearsals failed");
        return Ok(ExitCode::FAILURE);
    }
    clock.step("infra (jest: CDK assertions, cdk-nag, buildspec)");
    if !crate::synth::jest().await? {
        eprintln!("test: infra jest tests failed");
        return Ok(ExitCode::FAILURE);
    }
    clock.step("cargo xtask synth (arm64 assets, cfn-lint)");
    if !crate::synth::synth_and_lint(false).await? {
        eprintln!("test: synth or cfn-lint failed");
        return Ok(ExitCode::FAILURE);
    }
    // xtask's new-service test generates a service with the real cargo-generate.
    crate::setup::cargo_generate().await?;
    let moto = local_aws::Moto::start().await?;
    clock.step(&format!("nextest, with a local AWS stack at {}", moto.endpoint()));
    let status = local_aws::process::cargo()
        .args([
            "nextest",
            "run",
            "--workspace",
            "--all-targets",
            "--locked",
            "--no-fail-fast",
        ])
        .args(&args.nextest)
        .envs(moto.env())
        .current_dir(&root)
        .status()
        .await;
    moto.stop().await;
    let status = status.context("running cargo nextest (is cargo-nextest installed?)")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Time since the command started, printed with each step: where a fresh
/// machine's run spends its minutes.
struct Clock(std::time::Instant);

impl Clock {
    fn step(&self, name: &str) {
        eprintln!("test: {name} (at {} s)", self.0.elapsed().as_secs());
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn manifest(dir: &Path) -> toml::Table {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
    }

    /// The workspace's member directories, as cargo itself lists them.
    fn members(root: &Path) -> Vec<PathBuf> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["metadata", "--frozen", "--no-deps", "--format-version", "1"])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|package| {
                PathBuf::from(package["manifest_path"].as_str().unwrap())
                    .parent()
                    .unwrap()
                    .to_path_buf()
            })
            .collect()
    }

    /// A member that lists its integration tests itself (`autotests =
    /// false`, one binary from `tests/integration.rs`) declares every
    /// `tests/*.rs` file there as a module: a file left out would never be
    /// compiled or run, and nothing else would notice.
    #[test]
    fn every_integration_test_file_is_a_module_of_its_crates_test_binary() {
        let root = local_aws::workspace_root();
        let mut checked = Vec::new();
        for dir in members(&root) {
            let package = manifest(&dir);
            if package["package"].get("autotests").and_then(toml::Value::as_bool) != Some(false) {
                continue;
            }
            let entry = std::fs::read_to_string(dir.join("tests/integration.rs")).unwrap();
            for file in std::fs::read_dir(dir.join("tests")).unwrap() {
                let path = file.unwrap().path();
                let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                if path.extension().is_none_or(|e| e != "rs") || stem == "integration" {
                    continue;
                }
                let declaration = format!("mod {stem};");
                assert!(
                    entry.lines().any(|line| line.trim() == declaration),
                    "{} is not declared in tests/integration.rs (`{declaration}`), so it never runs",
                    path.display()
                );
                checked.push(path);
            }
        }
        // accounts 7, payments 6, shared 7, collection-runner 4, traffic-gate 2, local-aws 3.
        assert!(
            checked.len() >= 29,
            "only {} test files checked: {checked:?}",
            checked.len()
        );
    }

    /// Each dependency (name, version and features) as `cargo tree` resolves
    /// it for the given selection.
    fn resolved(selection: &[&str]) -> std::collections::BTreeSet<String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["tree", "--frozen", "--prefix", "none", "--format", "{p} {f}"])
            .args(selection)
            .current_dir(local_aws::workspace_root())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|line| !line.contains("(/"))
            .map(|line| line.replace(" (*)", "").trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect()
    }

    /// `cargo xtask` builds xtask alone; tests and the local stack build the
    /// whole workspace with dev-dependencies. Every dependency xtask's build
    /// compiles must be one the workspace build compiles too, features and
    /// all, or it is compiled and stored twice: `workspace-features` lists
    /// what would differ.
    #[test]
    fn workspace_features_match() {
        let xtask = resolved(&["-p", "xtask", "--edges", "normal,build"]);
        let workspace = resolved(&["--workspace", "--edges", "normal,build,dev"]);
        let extra: Vec<&String> = xtask.difference(&workspace).collect();
        assert!(xtask.len() > 200, "cargo tree listed only {} dependencies", xtask.len());
        assert!(
            extra.is_empty(),
            "resolved differently for `cargo xtask` than for the workspace (add the missing features to xtask/workspace-features/Cargo.toml): {extra:#?}"
        );
    }
}
