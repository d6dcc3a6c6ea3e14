//! `cargo xtask new-service` end to end, with the real cargo-generate: a
//! service generated into a copy of this workspace must build (so the
//! template cannot drift from the shared crate), pass fmt, clippy and its
//! own tests, pass its Postman collection under newman and our runner on the
//! local stack, answer in `cargo xtask demo`, pass the before-allow-traffic
//! hook, and appear in the
//! synthesized infrastructure, with no edit after generation. Bad names are
//! refused before anything is written.
//!
//! The copy lives in `target/new-service/workspace` and builds with this
//! workspace's `target/` as its cargo build directory, so only the copy's
//! own crates compile; its binaries land in the copy's `target/`. Cargo names
//! a path package's artifacts by its name, version and path relative to the
//! workspace root, which are the same in the copy; so the copy's workspace
//! version carries build metadata (`+copy`) and its crates get artifacts of
//! their own instead of overwriting this workspace's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The generated service: a two-word name exercises every spelling
/// (`card-issuing`, `card_issuing`, `CardIssuing`).
const NAME: &str = "card-issuing";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| local_aws::workspace_root().join("target"))
}

/// Copies the workspace's sources (not `target/`, `.git`, installed tools or
/// synth output) into `to`.
fn copy_sources(from: &Path, to: &Path) {
    const SKIP: &[&str] = &["target", ".git", "node_modules", ".venv", "cdk.out"];
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if SKIP.iter().any(|s| name == *s) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_sources(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

/// A copy of this workspace at `to`, sharing its installed tools (moto,
/// cargo-lambda, cfn-lint, newman, the CDK) where they are installed, with
/// its workspace version marked `+copy` and its lock file updated to match.
fn copy_workspace(to: &Path) {
    let from = local_aws::workspace_root();
    copy_sources(&from, to);
    for tools in [".venv", "infra/node_modules", "postman/node_modules"] {
        if from.join(tools).exists() {
            std::os::unix::fs::symlink(from.join(tools), to.join(tools)).unwrap();
        }
    }
    let manifest = to.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let version = parsed["workspace"]["package"]["version"].as_str().unwrap();
    let line = format!("\nversion = \"{version}\"\n");
    assert_eq!(text.matches(&line).count(), 1, "one workspace version line in {text}");
    let marked = text.replace(&line, &format!("\nversion = \"{version}+copy\"\n"));
    std::fs::write(&manifest, marked).unwrap();
    ok(&cargo(), &["update", "--workspace", "--offline"], to, to);
}

/// Whether a variable of this test's environment reaches the copy's
/// commands: what a user's shell has, and the local stack's AWS variables.
/// Not what cargo and nextest set for a test: `CARGO_MANIFEST_DIR` among them
/// would make cargo rebuild the dependencies (see
/// `local_aws::process::command`), and the copy should run as a newcomer's
/// checkout does.
fn inherited(name: &str) -> bool {
    matches!(
        name,
        "PATH" | "HOME" | "USER" | "TMPDIR" | "LANG" | "CARGO_HOME" | "RUSTUP_HOME" | "RUSTUP_TOOLCHAIN"
    ) || name.starts_with("AWS_")
}

/// Runs `program` in `dir` with the copy's cargo directories; returns its output.
fn run(program: &Path, args: &[&str], dir: &Path, copy: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(std::env::vars().filter(|(name, _)| inherited(name)))
        .env("CARGO_TARGET_DIR", copy.join("target"))
        .env("CARGO_BUILD_BUILD_DIR", target_dir())
        // Built once and thrown away: incremental state would only take disk.
        .env("CARGO_INCREMENTAL", "0")
        .output()
        .unwrap_or_else(|e| panic!("{} {args:?}: {e}", program.display()))
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs and asserts success, printing everything on failure.
fn ok(program: &Path, args: &[&str], dir: &Path, copy: &Path) -> String {
    let started = std::time::Instant::now();
    let output = run(program, args, dir, copy);
    eprintln!(
        "{:>6.1} s  {} {} ({} crates compiled)",
        started.elapsed().as_secs_f64(),
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).matches("Compiling ").count()
    );
    let text = text(&output);
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{text}",
        program.display()
    );
    text
}

fn cargo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| String::from("cargo")))
}

#[test]
fn a_generated_service_builds_tests_runs_its_checks_and_deploys() {
    let copy = target_dir().join("new-service/workspace");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).unwrap();
    }
    copy_workspace(&copy);
    let xtask = Path::new(env!("CARGO_BIN_EXE_xtask"));
    let workspace = copy.to_str().unwrap();

    // Refused, with the rule, before anything is written.
    for (args, expected) in [
        (vec!["CardIssuing"], "expected kebab-case"),
        (vec!["card_issuing"], "expected kebab-case"),
        (vec!["payments"], "already has a package"),
        (vec!["async"], "reserved in Rust"),
        (vec!["cards", "--team", "Card Issuing"], "Owning team"),
        (vec!["cards", "--table-key", "card-id"], "Partition key attribute"),
    ] {
        let mut all = vec!["new-service", "--workspace", workspace];
        all.extend(&args);
        let output = run(xtask, &all, &copy, &copy);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(text(&output).contains(expected), "{args:?}: {}", text(&output));
    }
    let services: Vec<_> = std::fs::read_dir(copy.join("services")).unwrap().collect();
    assert_eq!(services.len(), 2, "a refused name left files behind");

    ok(
        xtask,
        &[
            "new-service",
            NAME,
            "--team",
            "card-issuing",
            "--table-key",
            "card_id",
            "--workspace",
            workspace,
        ],
        &copy,
        &copy,
    );
    let dir = copy.join("services").join(NAME);
    for file in [
        "Cargo.toml",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
        "src/domain.rs",
        "src/store.rs",
        "src/http.rs",
        "tests/router.rs",
        "tests/common/mod.rs",
        "seed/card-issuing.json",
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            !text.contains("{{") && !text.contains("{%"),
            "{file} has an unrendered placeholder"
        );
    }
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.contains("Card Issuing") && lib.contains("/{app}/{stage}/card-issuing/"));
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert!(main.contains("card_issuing::init"));
    let http = std::fs::read_to_string(dir.join("src/http.rs")).unwrap();
    assert!(http.contains("\"CardIssuingCreated\""));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("partition_key = \"card_id\"") && manifest.contains("team = \"card-issuing\""));
    let collection: Value = serde_json::from_str(
        &std::fs::read_to_string(copy.join("postman/card-issuing.postman_collection.json")).unwrap(),
    )
    .unwrap();
    let folders: Vec<&str> = collection["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(folders, ["smoke", "pre-traffic", "post-traffic"]);
    assert!(collection.to_string().contains("{{card-issuing_url}}/card-issuing"));
    for stage in ["local", "dev", "staging", "prod"] {
        let env = std::fs::read_to_string(copy.join(format!("postman/{stage}.postman_environment.json"))).unwrap();
        assert!(env.contains("\"card-issuing_url\""), "{stage}: {env}");
    }
    let lock = std::fs::read_to_string(copy.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"card-issuing\""));

    // It compiles against the current shared crate, cleanly, and its tests pass.
    let cargo = cargo();
    ok(&cargo, &["fmt", "--all", "--", "--check"], &copy, &copy);
    ok(
        &cargo,
        &[
            "build",
            "--locked",
            "--profile",
            "test",
            "--workspace",
            "--bins",
            "--examples",
        ],
        &copy,
        &copy,
    );
    ok(
        &cargo,
        &[
            "clippy",
            "--locked",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &copy,
        &copy,
    );
    let tests = ok(
        &cargo,
        &[
            "nextest",
            "run",
            "--locked",
            "--workspace",
            "-E",
            &format!("package({NAME})"),
        ],
        &copy,
        &copy,
    );
    assert!(tests.contains("11 tests run: 11 passed"), "{tests}");

    // On the local stack: its collection under newman and our runner, the
    // demo's health round, then the before-allow-traffic hook against it.
    let xtask = copy.join("target/debug/xtask");
    let postman = ok(&xtask, &["postman"], &copy, &copy);
    assert!(
        postman.contains("collection-runner agrees with newman")
            && postman.contains("card-issuing.postman_collection.json"),
        "{postman}"
    );
    let demo = ok(&xtask, &["demo"], &copy, &copy);
    assert!(demo.contains("ok    card-issuing answers GET /health"), "{demo}");
    let hook = ok(&xtask, &["hook", "before", "--service", NAME], &copy, &copy);
    assert!(hook.contains("CodeDeploy recorded [\"Succeeded\"]"), "{hook}");

    // In the infrastructure, with cfn-lint passing on every template.
    ok(&xtask, &["synth", "--skip-assets"], &copy, &copy);
    let dev = find_template(&copy.join("infra/cdk.out"), "Dev");
    let resources = dev["Resources"].as_object().unwrap();
    let of_type = |kind: &str| -> Vec<&Value> {
        resources
            .values()
            .filter(|r| r["Type"] == kind)
            .map(|r| &r["Properties"])
            .collect()
    };
    let function = of_type("AWS::Lambda::Function")
        .into_iter()
        .find(|p| p["FunctionName"] == NAME)
        .expect("its function");
    assert!(
        function["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "team" && t["Value"] == "card-issuing"),
        "{function}"
    );
    let tables: Vec<&Value> = of_type("AWS::DynamoDB::Table");
    let table = tables
        .iter()
        .find(|p| p["TableName"] == "fintech-dev-card-issuing")
        .expect("its table");
    assert_eq!(table["KeySchema"][0]["AttributeName"], "card_id");
    assert!(
        tables
            .iter()
            .any(|p| p["TableName"] == "fintech-dev-card-issuing-idempotency")
    );
    assert!(
        of_type("AWS::SSM::Parameter")
            .iter()
            .any(|p| p["Name"] == "/fintech/dev/card-issuing/table_name")
    );
    assert!(
        of_type("AWS::Lambda::Alias")
            .iter()
            .any(|p| p["Name"] == "live" && p["FunctionName"].to_string().contains("CardIssuing")),
        "its live alias"
    );
    assert!(
        resources
            .iter()
            .any(|(id, r)| r["Type"] == "AWS::CodeDeploy::DeploymentGroup" && id.contains("CardIssuing")),
        "its deployment group"
    );
}

/// The parsed services template of stage `stage` in a cloud assembly.
fn find_template(out: &Path, stage: &str) -> Value {
    let dir = out.join(format!("assembly-Pipeline-{stage}"));
    let file = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".template.json"))
        .expect("a template");
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}
