//! `cargo xtask postman`: every service's Postman collection under real
//! newman against the local stack (`cargo xtask dev`'s processes), then
//! under our runner (`hooks/collection-runner`), which must agree with newman.
//! Both run with the traffic hooks' own tokens, as the hooks do, so every
//! item they write to the stage's tables must be synthetic data (marked, with
//! a time to live, `shared::synthetic`): the tables are read before and
//! after, and any other write fails the run.

use std::process::ExitCode;

use anyhow::Context;
use tokio::process::Command;

use crate::stack::{Logs, Stack};

/// Run every service's Postman collection with newman against the local stack.
#[derive(clap::Args)]
pub struct Args {
    /// Only these folders of each collection (default: all).
    #[arg(long)]
    folder: Vec<String>,
}

/// Installs newman from `postman/package-lock.json` unless it is there.
pub async fn ensure_newman() -> anyhow::Result<std::path::PathBuf> {
    Ok(crate::setup::npm_ci("postman").await?.join("newman"))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let newman = ensure_newman().await?;
    let stack = Stack::up(Logs::Quiet).await?;
    let result = run_collections(&stack, &newman, &args.folder, false).await;
    stack.down().await;
    Ok(if result? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs each registered collection; true when all passed. `quiet` leaves
/// passing assertions out of the report.
pub async fn run_collections(
    stack: &Stack,
    newman: &std::path::Path,
    folders: &[String],
    quiet: bool,
) -> anyhow::Result<bool> {
    let root = local_aws::workspace_root().join("postman");
    let mut vars: Vec<String> = stack
        .services
        .iter()
        .map(|r| format!("{}_url={}", r.service.name, r.url))
        .collect();
    // The tokens the traffic hooks run the collections with: their own client's.
    vars.push(format!(
        "{}={}",
        traffic_gate::credentials::SERVICE_TOKEN_VARIABLE,
        stack.service_token().await?
    ));
    let token = stack
        .identity
        .machine_token()
        .await
        .context("a token for the hooks' client from the local user pool")?;
    vars.push(format!("{}={token}", traffic_gate::credentials::TOKEN_VARIABLE));
    let services: Vec<_> = stack.services.iter().map(|r| r.service.clone()).collect();
    let (sdk, deployment) = (stack.sdk_config().await, crate::stack::local_deployment());
    let before = local_aws::tables::read(&sdk, &deployment, &services).await?;
    let mut all_passed = true;
    for running in &stack.services {
        let Some(postman) = &running.service.spec.postman else {
            continue;
        };
        let collection = root.join(format!("{}.postman_collection.json", postman.collection));
        let mut command = Command::new(newman);
        command
            .arg("run")
            .arg(&collection)
            .arg("-e")
            .arg(root.join("local.postman_environment.json"));
        for var in &vars {
            command.args(["--env-var", var]);
        }
        for folder in folders {
            command.args(["--folder", folder]);
        }
        let report = std::env::temp_dir().join(format!("newman-{}-{}.json", postman.collection, std::process::id()));
        command.args([
            "--reporters",
            "cli,json",
            "--color",
            "off",
            "--disable-unicode",
            "--reporter-json-export",
        ]);
        command.arg(&report);
        if quiet {
            command.arg("--reporter-cli-no-success-assertions");
        }
        let status = command
            .status()
            .await
            .with_context(|| format!("running newman on {}", collection.display()))?;
        all_passed &= status.success();
        let theirs: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&report).with_context(|| format!("reading {}", report.display()))?,
        )?;
        let _ = std::fs::remove_file(&report);
        all_passed &= same_as_newman(&collection, &root, &vars, folders, &theirs, status.success()).await?;
    }
    let written = local_aws::tables::read(&sdk, &deployment, &services)
        .await?
        .written_since(&before);
    if written.unmarked.is_empty() {
        eprintln!(
            "postman: all {} items the collections wrote are synthetic data (marked, expiring)",
            written.items
        );
    } else {
        eprintln!(
            "postman: the collections wrote {} items that are not synthetic data:",
            written.unmarked.len()
        );
        for finding in &written.unmarked {
            eprintln!("  {finding}");
        }
        all_passed = false;
    }
    if written.items == 0 {
        eprintln!("postman: the collections wrote nothing to the stage's tables: nothing was checked");
        all_passed = false;
    }
    Ok(all_passed)
}

/// Runs `collection` again under our runner (`hooks/collection-runner`) with
/// the same environment, variables and folders, and compares it with
/// newman's report: per request the same assertions and outcomes, and the
/// same verdict. Prints the difference and returns false when they differ.
async fn same_as_newman(
    collection: &std::path::Path,
    root: &std::path::Path,
    vars: &[String],
    folders: &[String],
    newman_report: &serde_json::Value,
    newman_passed: bool,
) -> anyhow::Result<bool> {
    use collection_runner::{collection as files, report, runner, transport::Http};
    let parsed = files::load_collection(collection)?;
    let environment = files::load_variables(&root.join("local.postman_environment.json"))?;
    let mut options = runner::Options {
        environment: files::scope_of(&environment.values),
        environment_name: environment.name,
        folders: folders.to_vec(),
        working_dir: root.to_owned(),
        ..runner::Options::default()
    };
    for var in vars {
        if let Some((key, value)) = var.split_once('=') {
            options
                .environment
                .set(key.to_owned(), serde_json::Value::String(value.to_owned()));
        }
    }
    let summary = runner::run(&parsed, &options, &Http::new(false)).await?;
    write_junit(collection, &summary)?;
    let (theirs, ours) = (report::newman_outcome(newman_report), summary.outcome());
    if theirs == ours && newman_passed == summary.passed() {
        eprintln!(
            "postman: collection-runner agrees with newman on {} ({} requests, {} assertions)",
            collection.display(),
            ours.len(),
            ours.iter().map(|(_, a)| a.len()).sum::<usize>()
        );
        return Ok(true);
    }
    eprintln!(
        "postman: collection-runner differs from newman on {}:",
        collection.display()
    );
    eprintln!("  newman (passed: {newman_passed}): {theirs:?}");
    eprintln!("  ours   (passed: {}): {ours:?}", summary.passed());
    eprint!("{}", summary.to_cli());
    Ok(false)
}

/// Where the runner's JUnit reports go (CodeBuild publishes them; see buildspec.yml).
pub const JUNIT_DIR: &str = "target/collection-reports";

/// Writes the runner's JUnit report for `collection` under [`JUNIT_DIR`].
fn write_junit(collection: &std::path::Path, summary: &collection_runner::report::Summary) -> anyhow::Result<()> {
    let dir = local_aws::workspace_root().join(JUNIT_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = collection
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".postman_collection.json"))
        .unwrap_or("collection");
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, summary.to_junit()).with_context(|| format!("writing {}", path.display()))
}
