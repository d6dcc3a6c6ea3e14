//! Differential tests: every collection in `tests/corpus/` runs under real
//! newman and under this runner against the same local echo server (`local_aws::echo`) (the
//! services' collections are compared the same way by `cargo xtask test`,
//! against the local stack); per request the same assertion names
//! with the same outcome, the same request count and the same exit code.

use std::path::{Path, PathBuf};

use collection_runner::collection;
use collection_runner::report::{Outcome, newman_outcome};
use collection_runner::runner::{self, Options};
use collection_runner::transport::Http;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sidecar(collection: &Path, suffix: &str) -> Option<PathBuf> {
    let name = collection
        .file_name()?
        .to_str()?
        .strip_suffix(".postman_collection.json")?;
    let path = collection.with_file_name(format!("{name}{suffix}"));
    path.exists().then_some(path)
}

fn newman(collection: &Path, base: &str, out: &Path) -> (Outcome, bool) {
    let newman = root().join("postman/node_modules/.bin/newman");
    assert!(
        newman.exists(),
        "{} missing: `cargo xtask test` installs it (npm ci in postman/)",
        newman.display()
    );
    let mut command = std::process::Command::new(newman);
    command
        .arg("run")
        .arg(collection)
        .args([
            "--env-var",
            &format!("base={base}"),
            "-r",
            "json",
            "--reporter-json-export",
        ])
        .arg(out)
        .arg("--working-dir")
        .arg(collection.parent().unwrap());
    if let Some(data) = sidecar(collection, ".data.json").or_else(|| sidecar(collection, ".data.csv")) {
        command.arg("-d").arg(data);
    }
    let status = command.output().expect("newman runs").status;
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out).expect("newman report")).expect("newman JSON");
    (newman_outcome(&report), status.success())
}

async fn ours(collection: &Path, base: &str) -> (Outcome, bool) {
    let parsed = collection::load_collection(collection).expect("collection loads");
    let mut options = Options::default();
    options.environment.set("base".into(), Value::String(base.to_owned()));
    options.working_dir = collection.parent().unwrap().to_owned();
    if let Some(data) = sidecar(collection, ".data.json").or_else(|| sidecar(collection, ".data.csv")) {
        options.data = collection::load_data(&data).expect("data loads");
    }
    let summary = runner::run(&parsed, &options, &Http::new(false))
        .await
        .expect("engine starts");
    (summary.outcome(), summary.passed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_runs_like_newman() {
    let base = local_aws::echo::start().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".postman_collection.json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let temp = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    let mut assertions = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (theirs, their_exit) = newman(file, &base, &temp.path().join(format!("{name}.report.json")));
        let (mine, my_exit) = ours(file, &base).await;
        assertions += theirs.iter().map(|(_, a)| a.len()).sum::<usize>();
        assert!(!theirs.is_empty(), "{name}: newman ran nothing");
        if theirs != mine || their_exit != my_exit {
            mismatches.push(format!(
                "{name}:\n  newman (exit ok: {their_exit}): {theirs:?}\n  ours   (exit ok: {my_exit}): {mine:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} collections differ:\n{}",
        mismatches.len(),
        files.len(),
        mismatches.join("\n")
    );
    assert!(
        assertions > 100,
        "the corpus should exercise many assertions, got {assertions}"
    );
}
