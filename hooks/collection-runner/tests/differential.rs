//! Differential tests: every collection in `tests/corpus/` runs under real
//! newman and under our `collection-runner` binary, with the same command
//! line, against the same local echo server (`local_aws::echo`); per request
//! the same assertion names with the same outcome, the same request count and
//! the same exit code. Both JSON reports are read by the same
//! `report::newman_outcome`, so our `json` reporter's shape is checked too.
//! A `<name>.args` file beside a collection adds command-line options (one per
//! line) to both runs. The services' collections are compared the same way by
//! `cargo xtask test`, against the local stack.

use std::path::{Path, PathBuf};

use collection_runner::report::{Outcome, newman_outcome};
use serde_json::Value;

fn newman() -> PathBuf {
    let newman = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../postman/node_modules/.bin/newman");
    assert!(
        newman.exists(),
        "{} missing: `cargo xtask test` installs it (npm ci in postman/)",
        newman.display()
    );
    newman
}

fn extra_args(collection: &Path) -> Vec<String> {
    let name = collection
        .to_string_lossy()
        .replace(".postman_collection.json", ".args");
    std::fs::read_to_string(name)
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `program run <collection> …` in the corpus directory; its outcome and whether it exited 0.
async fn run(program: PathBuf, collection: PathBuf, base: String, report: PathBuf) -> (Outcome, bool) {
    tokio::task::spawn_blocking(move || {
        let dir = collection.parent().unwrap().to_owned();
        let output = std::process::Command::new(&program)
            .current_dir(&dir)
            .arg("run")
            .arg(&collection)
            .args([
                "--env-var",
                &format!("base={base}"),
                "-r",
                "cli,json",
                "--reporter-json-export",
            ])
            .arg(&report)
            .arg("--working-dir")
            .arg(&dir)
            .args(extra_args(&collection))
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
        let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
            panic!(
                "{} wrote no report ({e}): {}",
                program.display(),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        let json: Value = serde_json::from_str(&text).expect("JSON report");
        (newman_outcome(&json), output.status.success())
    })
    .await
    .expect("runner thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_runs_like_newman() {
    let base = local_aws::echo::start().await;
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_collection-runner"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".postman_collection.json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "the corpus should hold at least 25 collections, has {}",
        files.len()
    );
    let temp = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    let mut assertions = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (theirs, their_exit) = run(
            newman(),
            file.clone(),
            base.clone(),
            temp.path().join(format!("{name}.newman.json")),
        )
        .await;
        let (mine, my_exit) = run(
            ours.clone(),
            file.clone(),
            base.clone(),
            temp.path().join(format!("{name}.ours.json")),
        )
        .await;
        assertions += theirs.iter().map(|(_, a)| a.len()).sum::<usize>();
        assert!(
            !theirs.is_empty() || name.contains("empty"),
            "{name}: newman ran nothing"
        );
        if theirs != mine || their_exit != my_exit {
            mismatches.push(format!(
                "{name}:\n  newman (exit 0: {their_exit}): {theirs:?}\n  ours   (exit 0: {my_exit}): {mine:?}"
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
        assertions > 200,
        "the corpus should exercise many assertions, got {assertions}"
    );
}
