//! `cargo xtask new-service <name>`: a new service from the cargo-generate
//! template in `templates/service/`, ready to build, test, run locally, pass
//! its hooks and deploy with no edits.
//!
//! It checks the name (and the placeholders against the template's own
//! rules), installs cargo-generate when missing, generates
//! `services/<name>/`, moves the service's Postman collection into
//! `postman/`, adds `<name>_url` to every stage's environment there, formats
//! the crate (line breaks depend on the name) and records the new package in
//! `Cargo.lock`. The workspace (`services/*`),
//! `cargo xtask dev/demo`, the hooks' bundle and `infra/` read the service
//! registry, so they pick it up as it is.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

/// Where the template lives, relative to the workspace root.
pub const TEMPLATE: &str = "templates/service";

/// Create a new service from the template.
#[derive(clap::Args)]
pub struct Args {
    /// The service's name in kebab-case, e.g. `cards` or `card-issuing`: the
    /// package, function and route prefix (`/<name>`); its snake_case and
    /// PascalCase spellings are derived from it.
    name: String,
    /// The team that owns it: tagged `team` on every AWS resource of the service.
    #[arg(long, default_value = "platform")]
    team: String,
    /// The partition key attribute of the service's DynamoDB table.
    #[arg(long, default_value = "id")]
    table_key: String,
    /// The workspace to add it to (default: the one this xtask belongs to).
    #[arg(long)]
    workspace: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = args.workspace.clone().unwrap_or_else(local_aws::workspace_root);
    let root = root
        .canonicalize()
        .with_context(|| format!("--workspace {}", root.display()))?;
    let existing = package_names(&root)?;
    check_name(&args.name, &existing)?;
    let template = root.join(TEMPLATE);
    for (placeholder, value, flag) in [
        ("team", &args.team, "--team"),
        ("table_key", &args.table_key, "--table-key"),
    ] {
        check_placeholder(&template, placeholder, value).with_context(|| format!("{flag} {value:?}"))?;
    }
    let generate = crate::setup::cargo_generate().await?;
    let services = root.join("services");
    eprintln!("new-service: generating services/{} from {TEMPLATE}", args.name);
    let status = Command::new(&generate)
        .arg("generate")
        .arg("--path")
        .arg(&template)
        .args(["--name", &args.name, "--vcs", "none", "--silent"])
        .arg("--destination")
        .arg(&services)
        .args(["--define", &format!("team={}", args.team)])
        .args(["--define", &format!("table_key={}", args.table_key)])
        .status()
        .await
        .with_context(|| format!("running {}", generate.display()))?;
    if !status.success() {
        bail!("cargo-generate failed with {status}");
    }
    let dir = services.join(&args.name);
    let collection = format!("{}.postman_collection.json", args.name);
    std::fs::rename(
        dir.join("postman").join(&collection),
        root.join("postman").join(&collection),
    )
    .context("moving the Postman collection into postman/")?;
    std::fs::remove_dir(dir.join("postman")).context("removing the generated postman/ folder")?;
    add_url_variable(&root.join("postman"), &args.name)?;
    // Line breaks depend on the name's length: format what was generated.
    cargo(&root, &["fmt", "-p", &args.name]).await?;
    cargo(&root, &["update", "--workspace", "--offline", "--quiet"]).await?;
    println!(
        "new-service: services/{name} (package {name}, team {team}, table key {key}), postman/{collection}, \
         `{name}_url` in every postman environment.\n\
         Next: `cargo xtask demo` runs it with the others; `cargo xtask test` checks everything; \
         `cargo lambda deploy {name}` or the pipeline deploys it.",
        name = args.name,
        team = args.team,
        key = args.table_key,
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `cargo <args>` in `root`.
async fn cargo(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = local_aws::process::cargo()
        .args(args)
        .current_dir(root)
        .status()
        .await
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed with {status}", args.join(" "));
    }
    Ok(())
}

/// Why a service name is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not kebab-case ASCII.
    #[error(
        "service name {0:?}: expected kebab-case: a lowercase letter, then lowercase letters and digits, \
         in words joined by single '-' (e.g. cards, card-issuing)"
    )]
    NotKebab(String),
    /// Too long for the names derived from it.
    #[error(
        "service name {0:?}: expected at most {MAX_NAME} characters (its function, table and alarm names grow from it)"
    )]
    TooLong(String),
    /// Its snake_case spelling is a Rust keyword or a crate every service uses.
    #[error("service name {0:?}: its crate name {1:?} is reserved in Rust; pick another name")]
    Reserved(String, String),
    /// A workspace package already has it.
    #[error("service name {0:?}: the workspace already has a package of that name")]
    Taken(String),
}

/// The longest service name: Lambda function names (the package name) and
/// the `<app>-<stage>-<name>-idempotency` table name stay well in bounds.
pub const MAX_NAME: usize = 32;

/// Rust keywords and the crates every service's code names: a crate called
/// any of these could not be `use`d or would shadow them.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "shared",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "union",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Checks a new service's name against the workspace's packages (`existing`).
pub fn check_name(name: &str, existing: &[String]) -> Result<(), NameError> {
    let kebab = name
        .split('-')
        .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !kebab {
        return Err(NameError::NotKebab(name.to_owned()));
    }
    if name.len() > MAX_NAME {
        return Err(NameError::TooLong(name.to_owned()));
    }
    let snake = name.replace('-', "_");
    if RESERVED.contains(&snake.as_str()) {
        return Err(NameError::Reserved(name.to_owned(), snake));
    }
    if existing.iter().any(|p| p == name || p.replace('-', "_") == snake) {
        return Err(NameError::Taken(name.to_owned()));
    }
    Ok(())
}

/// The template's `cargo-generate.toml`, as far as the checks need it.
#[derive(Deserialize)]
struct TemplateConfig {
    placeholders: std::collections::BTreeMap<String, Placeholder>,
}

#[derive(Deserialize)]
struct Placeholder {
    prompt: String,
    regex: String,
}

/// Checks `value` against the rule the template itself declares for
/// `placeholder` (so raw `cargo generate` and this command agree).
fn check_placeholder(template: &Path, placeholder: &str, value: &str) -> anyhow::Result<()> {
    let file = template.join("cargo-generate.toml");
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let config: TemplateConfig = toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    let rule = config
        .placeholders
        .get(placeholder)
        .with_context(|| format!("{}: no placeholder {placeholder:?}", file.display()))?;
    let regex = regex::Regex::new(&rule.regex).with_context(|| format!("{}: {placeholder}.regex", file.display()))?;
    if !regex.is_match(value) {
        bail!("{}: expected a value matching {}", rule.prompt, rule.regex);
    }
    Ok(())
}

/// The names of the workspace's packages.
fn package_names(root: &Path) -> anyhow::Result<Vec<String>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .other_options(vec![String::from("--offline")])
        .exec()
        .context("running cargo metadata")?;
    Ok(metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.to_string())
        .collect())
}

/// A Postman environment file, in the order Postman writes its fields.
#[derive(Serialize, Deserialize)]
struct Environment {
    id: String,
    name: String,
    values: Vec<Variable>,
    #[serde(rename = "_postman_variable_scope")]
    scope: String,
}

#[derive(Serialize, Deserialize)]
struct Variable {
    key: String,
    value: String,
    #[serde(rename = "type")]
    kind: String,
    enabled: bool,
}

/// Adds `<name>_url` to every `*.postman_environment.json` in `dir`: the
/// local one gets the placeholder the stack replaces, the others the URL
/// pattern of their stage (to edit once the API is deployed).
fn add_url_variable(dir: &Path, name: &str) -> anyhow::Result<()> {
    let key = format!("{name}_url");
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(stage) = path
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_suffix(".postman_environment.json"))
            .map(str::to_owned)
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut environment: Environment =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if environment.values.iter().any(|v| v.key == key) {
            continue;
        }
        let value = if stage == "local" {
            String::from("http://127.0.0.1:0")
        } else {
            format!("https://api.{stage}.example.com/{name}-{stage}")
        };
        // Before the secrets, beside the other services' URLs.
        let at = environment
            .values
            .iter()
            .position(|v| !v.key.ends_with("_url"))
            .unwrap_or(environment.values.len());
        eprintln!("new-service: {key} added to {}", path.display());
        environment.values.insert(
            at,
            Variable {
                key: key.clone(),
                value,
                kind: String::from("default"),
                enabled: true,
            },
        );
        let mut json = serde_json::to_string_pretty(&environment)?;
        json.push('\n');
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing() -> Vec<String> {
        ["accounts", "payments", "shared", "local-aws", "traffic-gate"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn kebab_names_are_accepted() {
        for name in ["cards", "card-issuing", "fx2", "a-b-c"] {
            assert_eq!(check_name(name, &existing()), Ok(()), "{name}");
        }
    }

    #[test]
    fn other_spellings_are_refused_with_the_rule() {
        for name in [
            "Cards",
            "card_issuing",
            "2cards",
            "-cards",
            "cards-",
            "card--issuing",
            "cärds",
            "",
            "card issuing",
        ] {
            let err = check_name(name, &existing()).unwrap_err();
            assert_eq!(err, NameError::NotKebab(name.to_owned()));
            assert!(err.to_string().contains("expected kebab-case"), "{err}");
        }
    }

    #[test]
    fn long_reserved_and_taken_names_are_refused() {
        let long = "a".repeat(MAX_NAME + 1);
        assert_eq!(check_name(&long, &existing()), Err(NameError::TooLong(long.clone())));
        assert!(check_name(&"a".repeat(MAX_NAME), &existing()).is_ok());
        assert_eq!(
            check_name("async", &existing()),
            Err(NameError::Reserved(String::from("async"), String::from("async")))
        );
        assert_eq!(
            check_name("proc-macro", &existing()),
            Err(NameError::Reserved(
                String::from("proc-macro"),
                String::from("proc_macro")
            ))
        );
        assert_eq!(
            check_name("payments", &existing()),
            Err(NameError::Taken(String::from("payments")))
        );
        assert_eq!(
            check_name("local-aws", &existing()),
            Err(NameError::Taken(String::from("local-aws")))
        );
    }

    #[test]
    fn placeholders_follow_the_templates_own_rules() {
        let template = local_aws::workspace_root().join(TEMPLATE);
        assert!(check_placeholder(&template, "team", "card-issuing").is_ok());
        assert!(check_placeholder(&template, "table_key", "card_id").is_ok());
        let err = check_placeholder(&template, "team", "Card Issuing")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Owning team") && err.contains("expected a value matching"),
            "{err}"
        );
        assert!(check_placeholder(&template, "table_key", "card-id").is_err());
        assert!(check_placeholder(&template, "nope", "x").is_err());
    }
}
