//! `--baseline REV`: version 1 of a rehearsal built from a git revision,
//! so a team rehearses its working tree over what is deployed. The revision
//! is checked out in a temporary git worktree and built there with the
//! workspace's own target directory (only the workspace's crates compile
//! again); the binary is kept under `target/rehearse/`, named by commit, so
//! rehearsing over the same revision again builds nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Version 1's binary: `service` as it was at `revision`.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The revision as given.
    pub revision: String,
    /// The commit it names.
    pub commit: String,
    /// The binary.
    pub binary: PathBuf,
}

async fn git(args: &[&str], dir: &Path) -> anyhow::Result<std::process::Output> {
    local_aws::process::command("git")
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .with_context(|| format!("running git {}", args.join(" ")))
}

/// The commit `revision` names in the repository at `root`.
async fn commit_of(revision: &str, root: &Path) -> anyhow::Result<String> {
    let output = git(
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{revision}^{{commit}}"),
        ],
        root,
    )
    .await?;
    let commit = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || commit.is_empty() {
        bail!(
            "--baseline {revision}: not a commit of this repository (a branch, tag or commit id, e.g. origin/main or HEAD~1)"
        );
    }
    Ok(commit)
}

/// Builds `service` at `revision` (the workspace's cargo profile `test`, as
/// the stack builds the current tree), unless it was built before. The
/// build overwrites `target/debug/<service>`: the caller builds the current
/// tree afterwards (the stack does), which links its own binary back.
pub async fn build(service: &str, revision: &str) -> anyhow::Result<Baseline> {
    let root = local_aws::workspace_root();
    let commit = commit_of(revision, &root).await?;
    let dir = local_aws::process::target_dir().join("rehearse");
    remove_stale(&dir, &root).await;
    let binary = dir.join(format!("{service}-{commit}"));
    if binary.exists() {
        eprintln!("rehearse: version 1 is {service} at {revision} ({commit}), built before");
        return Ok(Baseline {
            revision: revision.to_owned(),
            commit,
            binary,
        });
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // One worktree per process: rehearsals at once over one revision do not
    // share one (cargo's lock on the target directory orders their builds).
    let worktree = dir.join(format!("worktree-{commit}-{}", std::process::id()));
    let added = git(
        &[
            "worktree",
            "add",
            "--detach",
            "--force",
            &worktree.to_string_lossy(),
            &commit,
        ],
        &root,
    )
    .await?;
    if !added.status.success() {
        bail!(
            "--baseline {revision}: git worktree add failed: {}",
            String::from_utf8_lossy(&added.stderr).trim()
        );
    }
    eprintln!("rehearse: building version 1, {service} at {revision} ({commit})");
    let built = build_in(&worktree, service, &binary).await;
    remove_worktree(&worktree, &root).await;
    built.with_context(|| format!("--baseline {revision}: building {service} at {commit}"))?;
    Ok(Baseline {
        revision: revision.to_owned(),
        commit,
        binary,
    })
}

/// `cargo build` of `service`'s binary in `worktree`, copied to `binary`.
async fn build_in(worktree: &Path, service: &str, binary: &Path) -> anyhow::Result<()> {
    let status = local_aws::process::cargo()
        .args([
            "build",
            "--quiet",
            "--profile",
            "test",
            "--package",
            service,
            "--bin",
            service,
        ])
        .env("CARGO_TARGET_DIR", local_aws::process::target_dir())
        .current_dir(worktree)
        // An interrupted rehearsal stops its build (the next one removes the worktree).
        .kill_on_drop(true)
        .status()
        .await
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed (does the service exist at that revision, with a binary of its name?)");
    }
    let built = local_aws::process::target_dir().join("debug").join(service);
    // A copy under a temporary name, renamed: an interrupted copy is never taken for a build.
    let partial = binary.with_extension("partial");
    std::fs::copy(&built, &partial).with_context(|| format!("copying {}", built.display()))?;
    std::fs::rename(&partial, binary).with_context(|| format!("renaming to {}", binary.display()))?;
    Ok(())
}

/// Removes the worktrees under `dir` of rehearsals whose process is gone
/// (killed before it could clean up); a worktree is named for its process.
async fn remove_stale(dir: &Path, root: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("worktree-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if gone {
            remove_worktree(&entry.path(), root).await;
        }
    }
}

/// Removes the worktree at `path` and what git knows of it.
async fn remove_worktree(path: &Path, root: &Path) {
    let _ = git(&["worktree", "remove", "--force", &path.to_string_lossy()], root).await;
    let _ = std::fs::remove_dir_all(path);
    let _ = git(&["worktree", "prune"], root).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revision_is_a_commit_or_a_clear_refusal() {
        let root = local_aws::workspace_root();
        let head = commit_of("HEAD", &root).await.unwrap();
        assert_eq!(head.len(), 40, "{head}");
        for bad in ["no-such-branch-anywhere", "HEAD~100000", "HEAD:Cargo.toml", "--all"] {
            let err = commit_of(bad, &root).await.err().unwrap().to_string();
            assert!(err.starts_with(&format!("--baseline {bad}: not a commit")), "{err}");
        }
    }
}
