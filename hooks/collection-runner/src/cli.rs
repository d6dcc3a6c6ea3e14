//! The `newman run` command line (newman 6.2's `bin/newman.js` and
//! `bin/util.js`): every option newman takes parses, with newman's value
//! rules, and `--reporter-<name>-<option>` options are read the way newman
//! reads them. What each option does here, including those that change
//! nothing, is in `hooks/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Parser, Subcommand};
use serde_json::Value;

use crate::collection::{self, VariableFile, scope_of};
use crate::export::{self, Export};
use crate::report::Symbols;
use crate::runner::{self, Options};
use crate::sandbox::Limits;
use crate::transport::{Http, Tls};

/// The program.
#[derive(Parser, Debug)]
#[command(
    name = "collection-runner",
    version,
    about = "Runs Postman collections like `newman run`",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (newman's `-v`).
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: Option<bool>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a collection (the options of `newman run`).
    Run(RunArgs),
}

/// `newman run <collection> [options]`, every option newman 6.2 has.
#[derive(clap::Args, Debug)]
#[command(args_override_self = true)]
pub struct RunArgs {
    /// The collection file.
    #[arg(value_parser = path)]
    pub collection: PathBuf,
    /// More arguments after the collection: ignored, as newman ignores them.
    #[arg(hide = true)]
    pub extra: Vec<String>,
    /// Environment file.
    #[arg(short = 'e', long, value_parser = path, allow_hyphen_values = true)]
    pub environment: Option<PathBuf>,
    /// Globals file.
    #[arg(short = 'g', long, value_parser = path, allow_hyphen_values = true)]
    pub globals: Option<PathBuf>,
    /// Reporters: `cli`, `json`, `junit` (comma-separated; others are
    /// reported as not found and skipped, as newman does).
    #[arg(short = 'r', long, default_value = "cli", value_delimiter = ',', action = ArgAction::Set)]
    pub reporters: Vec<String>,
    /// Number of iterations (a positive integer).
    #[arg(short = 'n', long = "iteration-count", value_parser = positive, allow_hyphen_values = true)]
    pub iteration_count: Option<u64>,
    /// Iteration data file (JSON or CSV).
    #[arg(short = 'd', long = "iteration-data", value_parser = path, allow_hyphen_values = true)]
    pub iteration_data: Option<PathBuf>,
    /// Run only this folder or request (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub folder: Vec<String>,
    /// Global variable `key=value` (repeatable).
    #[arg(long = "global-var", allow_hyphen_values = true)]
    pub global_var: Vec<String>,
    /// Environment variable `key=value` (repeatable).
    #[arg(long = "env-var", allow_hyphen_values = true)]
    pub env_var: Vec<String>,
    /// Write the environment as the run left it.
    #[arg(long = "export-environment", value_parser = path, allow_hyphen_values = true)]
    pub export_environment: Option<PathBuf>,
    /// Write the globals as the run left them.
    #[arg(long = "export-globals", value_parser = path, allow_hyphen_values = true)]
    pub export_globals: Option<PathBuf>,
    /// Write the collection as newman does (as loaded).
    #[arg(long = "export-collection", value_parser = path, allow_hyphen_values = true)]
    pub export_collection: Option<PathBuf>,
    /// Postman API key: accepted; collections are read from files only.
    #[arg(long = "postman-api-key", allow_hyphen_values = true)]
    pub postman_api_key: Option<String>,
    /// Stop at the first failure; modifiers `failure` (the same) and
    /// `folder` (the first request or script error ends the run as an error).
    #[arg(long, num_args = 0..=1, value_delimiter = ',')]
    pub bail: Option<Vec<String>>,
    /// Do not follow redirects, unless the collection says to.
    #[arg(long = "ignore-redirects")]
    pub ignore_redirects: bool,
    /// Exit 0 even when something failed.
    #[arg(short = 'x', long = "suppress-exit-code")]
    pub suppress_exit_code: bool,
    /// No output at all.
    #[arg(long)]
    pub silent: bool,
    /// Plain-text symbols in the CLI report.
    #[arg(long = "disable-unicode")]
    pub disable_unicode: bool,
    /// `auto`, `on` or `off` (the report has no colours either way).
    #[arg(long, value_parser = color, default_value = "auto", allow_hyphen_values = true)]
    pub color: String,
    /// Milliseconds between requests (a positive integer).
    #[arg(long = "delay-request", num_args = 0..=1, value_parser = positive)]
    pub delay_request: Option<Option<u64>>,
    /// Milliseconds for the whole run (a positive integer).
    #[arg(long, num_args = 0..=1, value_parser = positive)]
    pub timeout: Option<Option<u64>>,
    /// Milliseconds per request (a positive integer).
    #[arg(long = "timeout-request", num_args = 0..=1, value_parser = positive)]
    pub timeout_request: Option<Option<u64>>,
    /// Milliseconds per script (a positive integer).
    #[arg(long = "timeout-script", num_args = 0..=1, value_parser = positive)]
    pub timeout_script: Option<Option<u64>>,
    /// Directory body files are read from (default: the current one).
    #[arg(long = "working-dir", value_parser = path, allow_hyphen_values = true)]
    pub working_dir: Option<PathBuf>,
    /// Refuse body files outside the working directory.
    #[arg(long = "no-insecure-file-read")]
    pub no_insecure_file_read: bool,
    /// Do not verify TLS certificates.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Client certificates by URL (JSON): refused with a clear error.
    #[arg(long = "ssl-client-cert-list", value_parser = path, allow_hyphen_values = true)]
    pub ssl_client_cert_list: Option<PathBuf>,
    /// Client certificate (PEM) for every request.
    #[arg(long = "ssl-client-cert", value_parser = path, allow_hyphen_values = true)]
    pub ssl_client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long = "ssl-client-key", value_parser = path, allow_hyphen_values = true)]
    pub ssl_client_key: Option<PathBuf>,
    /// The key's passphrase: unused (keys must be unencrypted; an encrypted one is refused).
    #[arg(long = "ssl-client-passphrase", allow_hyphen_values = true)]
    pub ssl_client_passphrase: Option<String>,
    /// More trusted CA certificates (PEM), besides the built-in roots.
    #[arg(long = "ssl-extra-ca-certs", value_parser = path, allow_hyphen_values = true)]
    pub ssl_extra_ca_certs: Option<PathBuf>,
    /// A tough-cookie jar to start from: refused with a clear error.
    #[arg(long = "cookie-jar", value_parser = path, allow_hyphen_values = true)]
    pub cookie_jar: Option<PathBuf>,
    /// Write the cookie jar after the run: refused with a clear error.
    #[arg(long = "export-cookie-jar", value_parser = path, allow_hyphen_values = true)]
    pub export_cookie_jar: Option<PathBuf>,
    /// Accepted; the report is the same.
    #[arg(long)]
    pub verbose: bool,
}

/// A path as given; an empty one is an option not given (see [`given`]).
fn path(raw: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(raw))
}

/// An option's path unless it is empty (`-e "$UNSET"`): newman treats an
/// empty value as the option not given.
fn given(path: &Option<PathBuf>) -> Option<&Path> {
    path.as_deref().filter(|p| !p.as_os_str().is_empty())
}

/// newman's `cast.integer`: a positive safe integer.
fn positive(raw: &str) -> Result<u64, String> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    match raw.trim().parse::<f64>() {
        Ok(n) if n.fract() == 0.0 && n > 0.0 && n <= MAX_SAFE => Ok(n as u64),
        _ => Err(String::from("The value must be a positive integer.")),
    }
}

/// newman's `cast.colorOptions`.
fn color(raw: &str) -> Result<String, String> {
    match raw {
        "auto" | "on" | "off" => Ok(raw.to_owned()),
        _ => Err(format!("invalid value `{raw}` for --color. Expected: auto|on|off")),
    }
}

/// The prefix of the options newman hands to reporters.
const REPORTER_PREFIX: &str = "--reporter-";

/// `argv` without the `--reporter-…` options and their values (newman's
/// `omitNestedOptions`: a value is the next argument unless it starts with `-`).
pub fn without_reporter_options(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut i = 0;
    while i < argv.len() {
        if argv[i].starts_with(REPORTER_PREFIX) {
            if argv.get(i + 1).is_some_and(|next| !next.starts_with('-')) {
                i += 1;
            }
        } else {
            out.push(argv[i].clone());
        }
        i += 1;
    }
    out
}

/// lodash's `camelCase` for option names: words split on `-`, `_` and
/// spaces, lower-cased, each after the first capitalised.
fn camel_case(name: &str) -> String {
    let mut out = String::new();
    for (n, word) in name.split(['-', '_', ' ']).filter(|w| !w.is_empty()).enumerate() {
        let lower = word.to_lowercase();
        if n == 0 {
            out.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.extend(chars);
        }
    }
    out
}

/// What `--reporter-<name>-<option>` options say, per reporter (newman's
/// `parseNestedOptions`): an option of a reporter in the run's list goes to
/// it, any other (`--reporter-export`) to every reporter, overriding.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReporterOptions {
    own: BTreeMap<String, BTreeMap<String, Value>>,
    generic: BTreeMap<String, Value>,
}

impl ReporterOptions {
    /// Reads the `--reporter-…` options of `argv` for `reporters`.
    pub fn parse(argv: &[String], reporters: &[String]) -> Self {
        // The prefixed arguments, names still prefixed, each followed by
        // its value when it has one (`--reporter-a=b`, or a next argument
        // that is no option).
        let mut pairs: Vec<String> = Vec::new();
        let mut i = 0;
        while i < argv.len() {
            let arg = &argv[i];
            if arg.starts_with(REPORTER_PREFIX) {
                match arg.split_once('=') {
                    Some((name, value)) => pairs.extend([name.to_owned(), value.to_owned()]),
                    None => {
                        pairs.push(arg.clone());
                        if let Some(next) = argv.get(i + 1).filter(|n| !n.starts_with('-')) {
                            pairs.push(next.clone());
                            i += 1;
                        }
                    }
                }
            }
            i += 1;
        }
        let mut options = Self::default();
        let mut j = 0;
        while j < pairs.len() {
            let name = pairs[j].strip_prefix(REPORTER_PREFIX).unwrap_or(&pairs[j]).to_owned();
            // A flag unless a value that is no option follows.
            let value = match pairs.get(j + 1) {
                Some(next) if !next.starts_with('-') => {
                    j += 1;
                    Value::String(next.clone())
                }
                _ => Value::Bool(true),
            };
            let reporter = name.split('-').next().unwrap_or_default();
            match reporters.iter().find(|r| r.as_str() == reporter) {
                Some(reporter) => {
                    let option = camel_case(name.strip_prefix(&format!("{reporter}-")).unwrap_or(""));
                    options.own.entry(reporter.clone()).or_default().insert(option, value);
                }
                None => {
                    options.generic.insert(camel_case(&name), value);
                }
            }
            j += 1;
        }
        options
    }

    /// Option `option` (camelCase, e.g. `export`) of `reporter`.
    pub fn get(&self, reporter: &str, option: &str) -> Option<&Value> {
        self.generic
            .get(option)
            .or_else(|| self.own.get(reporter).and_then(|o| o.get(option)))
    }

    /// A path option of `reporter` (an empty one is none).
    pub fn path(&self, reporter: &str, option: &str) -> Option<PathBuf> {
        self.get(reporter, option)
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// Whether a flag of `reporter` is set.
    pub fn flag(&self, reporter: &str, option: &str) -> bool {
        self.get(reporter, option).is_some_and(|v| v == &Value::Bool(true))
    }
}

/// `--env-var`/`--global-var` values as newman's `memoizeKeyVal` reads them:
/// `key=value` split at the first `=`; a bare `key` has no value; an empty
/// argument is no variable.
fn pairs(list: &[String]) -> Vec<(String, Value)> {
    list.iter()
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key.to_owned(), Value::String(value.to_owned())),
            None => (pair.clone(), Value::Null),
        })
        .collect()
}

/// The options newman takes that this runner cannot honour yet: a clear
/// error naming the option, before anything runs.
fn unsupported(args: &RunArgs) -> anyhow::Result<()> {
    let refused = [
        (
            given(&args.ssl_client_cert_list).is_some(),
            "--ssl-client-cert-list: per-URL client certificates are not supported; pass one with --ssl-client-cert and --ssl-client-key",
        ),
        (
            given(&args.cookie_jar).is_some(),
            "--cookie-jar: reading a tough-cookie jar is not supported; set the cookies in the collection (pm.cookies.jar())",
        ),
        (
            given(&args.export_cookie_jar).is_some(),
            "--export-cookie-jar: writing a tough-cookie jar is not supported",
        ),
    ];
    match refused.iter().find(|(set, _)| *set) {
        Some((_, message)) => anyhow::bail!("{message}"),
        None => Ok(()),
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} {}", path.display()))
}

/// The TLS settings of the options.
fn tls(args: &RunArgs) -> anyhow::Result<Tls> {
    let identity = match (given(&args.ssl_client_cert), given(&args.ssl_client_key)) {
        (Some(cert), Some(key)) => {
            let key = read(key, "--ssl-client-key")?;
            // A passphrase is only needed, and only refused, for an encrypted key.
            if String::from_utf8_lossy(&key).contains("ENCRYPTED") {
                anyhow::bail!(
                    "--ssl-client-key: encrypted private keys are not supported; decrypt it (openssl pkey -in key.pem -out plain.pem) and drop --ssl-client-passphrase"
                );
            }
            let mut pem = read(cert, "--ssl-client-cert")?;
            pem.push(b'\n');
            pem.extend(key);
            Some(pem)
        }
        (None, None) => None,
        (cert, _) => {
            // newman runs on without a certificate when half of it is missing.
            let (given, missing) = if cert.is_some() {
                ("--ssl-client-cert", "--ssl-client-key")
            } else {
                ("--ssl-client-key", "--ssl-client-cert")
            };
            eprintln!("warning: {given} without {missing}: no client certificate is sent");
            None
        }
    };
    let extra_roots = given(&args.ssl_extra_ca_certs)
        .map(|path| read(path, "--ssl-extra-ca-certs"))
        .transpose()?;
    Ok(Tls {
        insecure: args.insecure,
        identity,
        extra_roots,
    })
}

/// Runs `newman run` with `argv` (the program's arguments without the
/// program name); the exit code newman would give.
pub async fn main(argv: Vec<String>) -> ExitCode {
    let mut full = vec![String::from("collection-runner")];
    full.extend(without_reporter_options(&argv));
    let cli = match Cli::try_parse_from(&full) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let Command::Run(args) = cli.command;
    let reporter_options = ReporterOptions::parse(&argv, &args.reporters);
    let suppress = args.suppress_exit_code;
    match run(args, reporter_options).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            // `-x` overrides the exit code of errors too, as newman's does.
            if suppress { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}

fn millis(value: Option<Option<u64>>) -> Option<Duration> {
    value.flatten().map(Duration::from_millis)
}

async fn run(args: RunArgs, reporter_options: ReporterOptions) -> anyhow::Result<ExitCode> {
    unsupported(&args)?;
    if !args.extra.is_empty() {
        eprintln!(
            "warning: ignoring arguments after the collection: {}",
            args.extra.join(" ")
        );
    }
    let collection = collection::load_collection(&args.collection).context("could not load collection")?;
    let raw_collection: Value = collection::parse_json(&args.collection, &collection::read_text(&args.collection)?)?;
    let mut options = Options::default();
    let environment_file: Option<VariableFile> = given(&args.environment)
        .map(collection::load_variables)
        .transpose()
        .context("could not load environment")?;
    if let Some(file) = &environment_file {
        options.environment = scope_of(&file.values);
        options.environment_name = file.name.clone();
    }
    for (key, value) in pairs(&args.env_var) {
        options.environment.set(key, value);
    }
    let globals_file: Option<VariableFile> = given(&args.globals)
        .map(collection::load_variables)
        .transpose()
        .context("could not load globals")?;
    if let Some(file) = &globals_file {
        options.globals = scope_of(&file.values);
    }
    for (key, value) in pairs(&args.global_var) {
        options.globals.set(key, value);
    }
    if let Some(path) = given(&args.iteration_data) {
        options.data = collection::load_data(path).context("could not load iteration data")?;
    }
    options.iterations = args.iteration_count.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    options.folders = args.folder.clone();
    // `--bail` alone or with `failure` stops at the first failure; with
    // `folder`, a request or script error ends the run as an error.
    let modifiers = args.bail.as_deref();
    options.bail = modifiers.is_some_and(|m| m.is_empty() || m.iter().any(|m| m == "failure"));
    options.abort_on_error = modifiers.is_some_and(|m| m.iter().any(|m| m == "folder"));
    options.delay = millis(args.delay_request).unwrap_or(Duration::ZERO);
    options.timeout = millis(args.timeout);
    options.timeout_request = millis(args.timeout_request);
    options.limits = Limits {
        timeout: millis(args.timeout_script).unwrap_or(Limits::default().timeout),
        ..Limits::default()
    };
    options.working_dir = given(&args.working_dir).map_or_else(|| PathBuf::from("."), Path::to_owned);
    options.insecure_file_read = !args.no_insecure_file_read;
    options.follow_redirects = !args.ignore_redirects;
    // Every entry must name something: a typo in one of several folders
    // must not pass by running the others.
    match runner::missing_folders(&collection, &args.folder).as_slice() {
        [] => {}
        [one] if args.folder.len() == 1 => {
            anyhow::bail!("runtime~extractRunnableItems: Unable to find a folder or request: {one:?}")
        }
        missing => anyhow::bail!(
            "runtime~extractRunnableItems: Invalid entrypoint: no folder or request named {}",
            missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
        ),
    }
    let transport = Http::with_tls(&tls(&args)?).context("the TLS options")?;
    let summary = runner::run(&collection, &options, &transport).await?;
    // A run error (`--bail folder`'s first request or script error, the
    // run's `--timeout`) ends the run as newman ends it: the error, and no
    // report or export.
    let run_error = summary
        .aborted
        .as_deref()
        .or(summary.run_failures.first().map(|f| f.message.as_str()));
    if let Some(error) = run_error {
        anyhow::bail!("{error}");
    }
    let at = crate::dynamic::iso(time::OffsetDateTime::now_utc());
    let symbols = if args.disable_unicode {
        Symbols::PlainText
    } else {
        Symbols::Unicode
    };
    // Every report and export is written even when one cannot be; the
    // failures are told at the end, as newman does.
    let mut failed: Vec<String> = Vec::new();
    let mut reporters = args.reporters.clone();
    reporters.dedup();
    for reporter in reporters.iter().filter(|r| !r.is_empty()) {
        let written = match reporter.as_str() {
            "cli" => {
                if !args.silent && !reporter_options.flag("cli", "silent") {
                    print!("{}", summary.to_cli_with(symbols));
                }
                Ok(())
            }
            "json" => serde_json::to_string_pretty(&summary.to_json())
                .map_err(anyhow::Error::from)
                .and_then(|text| {
                    let path = reporter_options.path("json", "export");
                    Ok(export::write(path.as_deref(), "newman-run-report.json", &text, &at).map(|_| ())?)
                }),
            "junit" => {
                let path = reporter_options.path("junit", "export");
                export::write(path.as_deref(), "newman-run-report.xml", &summary.to_junit(), &at)
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
            }
            other => {
                eprintln!("newman: could not find \"{other}\" reporter");
                eprintln!("  ensure that the reporter is installed in the same directory as newman");
                eprintln!("  please install reporter using npm");
                Ok(())
            }
        };
        failed.extend(written.err().map(|e| format!("{e:#}")));
    }
    for (path, export, content) in [
        (
            given(&args.export_environment),
            Export::Environment,
            export::scope_file(
                Export::Environment,
                environment_file.as_ref(),
                &summary.environment,
                &at,
            ),
        ),
        (
            given(&args.export_globals),
            Export::Globals,
            export::scope_file(Export::Globals, globals_file.as_ref(), &summary.globals, &at),
        ),
        (
            given(&args.export_collection),
            Export::Collection,
            export::collection_file(&raw_collection, &at),
        ),
    ] {
        if let Some(path) = path {
            failed.extend(
                export::write_json(Some(path), export, &content, &at)
                    .err()
                    .map(|e| e.to_string()),
            );
        }
    }
    for failure in &failed {
        eprintln!("error: {failure}");
    }
    Ok(if (summary.passed() && failed.is_empty()) || args.suppress_exit_code {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn reporter_options_are_read_as_newman_reads_them() {
        let argv = strings(&[
            "run",
            "c.json",
            "--reporter-json-export",
            "out.json",
            "--reporter-cli-no-success-assertions",
            "--reporter-junit-export=j.xml",
            "--reporter-htmlextra-title",
            "T",
            "-x",
        ]);
        assert_eq!(without_reporter_options(&argv), strings(&["run", "c.json", "-x"]));
        let reporters = strings(&["cli", "json", "junit"]);
        let options = ReporterOptions::parse(&argv, &reporters);
        assert_eq!(options.path("json", "export"), Some(PathBuf::from("out.json")));
        assert_eq!(options.path("junit", "export"), Some(PathBuf::from("j.xml")));
        assert!(options.flag("cli", "noSuccessAssertions"));
        // Not in the run's reporters: generic, given to every reporter.
        assert_eq!(options.get("cli", "htmlextraTitle"), Some(&Value::from("T")));
        let generic = ReporterOptions::parse(&strings(&["--reporter-export", "all.json"]), &reporters);
        assert_eq!(generic.path("json", "export"), Some(PathBuf::from("all.json")));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn integers_and_colours_follow_newmans_casts() {
        assert_eq!(positive("5"), Ok(5));
        for bad in ["0", "-1", "1.5", "x", ""] {
            assert_eq!(
                positive(bad),
                Err(String::from("The value must be a positive integer.")),
                "{bad}"
            );
        }
        assert!(color("on").is_ok() && color("purple").is_err());
        assert_eq!(camel_case("no-success-assertions"), "noSuccessAssertions");
    }
}
