//! What a run did, and the reporters: `cli` (readable, like newman's),
//! `json` (newman's `run.stats` / `run.executions` / `run.failures` shape)
//! and `junit` (XML for CodeBuild reports).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::request::Prepared;
use crate::sandbox::{ConsoleLine, ScriptOutput, ScriptResponse};
use crate::variables::Scope;

/// One assertion (`pm.test`) result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assertion {
    /// The test's name.
    pub assertion: String,
    /// Skipped with `pm.test.skip`.
    pub skipped: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// One failure, as newman lists them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    /// `AssertionError`, `TypeError`, `RequestError`, …
    pub name: String,
    /// What happened.
    pub message: String,
    /// Where: `assertion`, `prerequest-script`, `test-script`, `request`.
    pub at: String,
    /// The test's name, for assertions.
    pub test: Option<String>,
}

/// One request item's run.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    /// Item id (or name).
    pub id: String,
    /// Item name.
    pub name: String,
    /// Zero-based iteration.
    pub iteration: usize,
    /// A unique id for this execution (`cursor.ref` in the JSON report).
    pub cursor_ref: String,
    /// Method and URL sent, if it got that far.
    pub request: Option<(String, String)>,
    /// Status code, reason and timing, if a response came.
    pub response: Option<ResponseSummary>,
    /// Assertions from every script of the item, in order.
    pub assertions: Vec<Assertion>,
    /// Failures: assertions, script errors, the request error.
    pub failures: Vec<Failure>,
    /// `console.*` output.
    pub console: Vec<ConsoleLine>,
    /// Scripts run: (event, had an error).
    pub scripts: Vec<(String, bool)>,
    /// Requests its scripts sent with `pm.sendRequest` (newman counts them as requests).
    pub script_requests: usize,
}

/// A response, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseSummary {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub status: String,
    /// Milliseconds.
    pub response_time: u64,
    /// Body bytes.
    pub response_size: usize,
}

impl Execution {
    /// An execution of item `id` named `name` in `iteration`.
    pub fn new(id: &str, name: &str, iteration: usize) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            iteration,
            cursor_ref: uuid::Uuid::new_v4().to_string(),
            request: None,
            response: None,
            assertions: Vec::new(),
            failures: Vec::new(),
            console: Vec::new(),
            scripts: Vec::new(),
            script_requests: 0,
        }
    }

    /// Records a script's results.
    pub fn script(&mut self, event: &str, out: ScriptOutput) {
        for test in &out.tests {
            let error = test.error.as_ref().filter(|_| !test.passed).map(|e| e.message.clone());
            if let Some(err) = &test.error
                && !test.passed
            {
                self.failures.push(Failure {
                    name: err.name.clone(),
                    message: err.message.clone(),
                    at: String::from("assertion"),
                    test: Some(test.name.clone()),
                });
            }
            self.assertions.push(Assertion {
                assertion: test.name.clone(),
                skipped: test.skipped,
                error,
            });
        }
        if let Some(err) = &out.error {
            self.failures.push(Failure {
                name: err.name.clone(),
                message: err.message.clone(),
                at: format!("{event}-script"),
                test: None,
            });
        }
        self.scripts.push((event.to_owned(), out.error.is_some()));
        self.console.extend(out.console);
    }

    /// Records the request sent.
    pub fn request(&mut self, request: &Prepared) {
        self.request = Some((request.method.clone(), request.url.clone()));
        self.console.extend(request.warnings.iter().map(|message| ConsoleLine {
            level: String::from("warn"),
            message: message.clone(),
        }));
    }

    /// Records the response.
    pub fn response(&mut self, response: &ScriptResponse) {
        self.response = Some(ResponseSummary {
            code: response.code,
            status: response.status.clone(),
            response_time: response.response_time,
            response_size: response.response_size,
        });
    }

    /// Records a `pm.sendRequest` of its scripts: newman counts it as a
    /// request, and one that got no response as a request failure.
    pub fn script_request(&mut self, outcome: Result<(), String>) {
        self.script_requests += 1;
        if let Err(message) = outcome {
            self.failures.push(Failure {
                name: String::from("Error"),
                message,
                at: String::from("request"),
                test: None,
            });
        }
    }

    /// Records a request that got no response.
    pub fn request_error(&mut self, message: String) {
        self.failures.push(Failure {
            name: String::from("RequestError"),
            message,
            at: String::from("request"),
            test: None,
        });
    }
}

/// Which symbols the CLI report uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Symbols {
    /// newman's default (✓, →, box drawing).
    #[default]
    Unicode,
    /// newman's `--disable-unicode` set (`Pass`, `Root`, `-` and `|`).
    PlainText,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Collection name.
    pub collection: String,
    /// Iterations run.
    pub iterations: usize,
    /// Every item run, in order.
    pub executions: Vec<Execution>,
    /// Failures outside any item (the run's timeout).
    pub run_failures: Vec<Failure>,
    /// Stopped early by `--bail`.
    pub bailed: bool,
    /// Ended as an error by `--bail folder`: the request or script error.
    pub aborted: Option<String>,
    /// Wall time.
    pub duration: Duration,
    /// The environment as the run left it (`--export-environment`).
    #[serde(skip)]
    pub environment: Scope,
    /// The globals as the run left them (`--export-globals`).
    #[serde(skip)]
    pub globals: Scope,
}

impl Summary {
    /// An empty summary.
    pub fn new(collection: &str, iterations: usize) -> Self {
        Self {
            collection: collection.to_owned(),
            iterations,
            executions: Vec::new(),
            run_failures: Vec::new(),
            bailed: false,
            aborted: None,
            duration: Duration::ZERO,
            environment: Scope::default(),
            globals: Scope::default(),
        }
    }

    /// Adds an item's run.
    pub fn record(&mut self, execution: Execution) {
        self.executions.push(execution);
    }

    /// A failure of the run itself.
    pub fn fail_run(&mut self, message: String) {
        self.run_failures.push(Failure {
            name: String::from("Error"),
            message,
            at: String::from("run"),
            test: None,
        });
    }

    /// Sets the wall time.
    pub fn finish(&mut self, duration: Duration) {
        self.duration = duration;
    }

    /// Keeps the scopes as the run left them.
    pub fn keep_scopes(&mut self, environment: Scope, globals: Scope) {
        self.environment = environment;
        self.globals = globals;
    }

    /// Every failure, in order.
    pub fn failures(&self) -> impl Iterator<Item = (&Execution, &Failure)> {
        self.executions
            .iter()
            .flat_map(|e| e.failures.iter().map(move |f| (e, f)))
    }

    /// Whether nothing failed (newman's exit code 0).
    pub fn passed(&self) -> bool {
        self.run_failures.is_empty() && self.failures().next().is_none()
    }

    fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for e in &self.executions {
            c.requests += usize::from(e.request.is_some()) + e.script_requests;
            c.failed_requests += e.failures.iter().filter(|f| f.at == "request").count();
            for (event, errored) in &e.scripts {
                let (total, failed) = if event == "test" {
                    (&mut c.test_scripts, &mut c.failed_test_scripts)
                } else {
                    (&mut c.prerequest_scripts, &mut c.failed_prerequest_scripts)
                };
                *total += 1;
                *failed += usize::from(*errored);
            }
            c.assertions += e.assertions.len();
            c.failed_assertions += e.assertions.iter().filter(|a| a.error.is_some()).count();
        }
        c
    }

    /// newman's JSON report shape.
    pub fn to_json(&self) -> Value {
        let c = self.counts();
        let stat = |total: usize, failed: usize| json!({"total": total, "pending": 0, "failed": failed});
        let executions: Vec<Value> = self
            .executions
            .iter()
            .map(|e| {
                json!({
                    "cursor": {"iteration": e.iteration, "ref": e.cursor_ref},
                    "item": {"id": e.id, "name": e.name},
                    "request": e.request.as_ref().map(|(m, u)| json!({"method": m, "url": u})),
                    "response": e.response.as_ref().map(|r| json!({"code": r.code, "status": r.status, "responseTime": r.response_time, "responseSize": r.response_size})),
                    "assertions": e.assertions.iter().map(|a| {
                        let mut v = json!({"assertion": a.assertion, "skipped": a.skipped});
                        if let Some(err) = &a.error {
                            v["error"] = json!({"name": "AssertionError", "message": err, "test": a.assertion});
                        }
                        v
                    }).collect::<Vec<_>>(),
                    "requestError": e.failures.iter().find(|f| f.at == "request").map(|f| json!({"message": f.message})),
                })
            })
            .collect();
        let failures: Vec<Value> = self
            .failures()
            .map(|(e, f)| {
                json!({
                    "error": {"name": f.name, "message": f.message, "test": f.test},
                    "at": f.at,
                    "source": {"id": e.id, "name": e.name},
                    "cursor": {"iteration": e.iteration, "ref": e.cursor_ref},
                })
            })
            .chain(
                self.run_failures
                    .iter()
                    .map(|f| json!({"error": {"name": f.name, "message": f.message}, "at": f.at})),
            )
            .collect();
        let times: Vec<u64> = self
            .executions
            .iter()
            .filter_map(|e| e.response.as_ref().map(|r| r.response_time))
            .collect();
        let average = if times.is_empty() {
            0.0
        } else {
            times.iter().sum::<u64>() as f64 / times.len() as f64
        };
        json!({
            "collection": {"info": {"name": self.collection}},
            "run": {
                "stats": {
                    "iterations": stat(self.iterations, 0),
                    "items": stat(self.executions.len(), self.executions.iter().filter(|e| !e.failures.is_empty()).count()),
                    "scripts": stat(c.test_scripts + c.prerequest_scripts, c.failed_test_scripts + c.failed_prerequest_scripts),
                    "prerequests": stat(self.executions.len(), 0),
                    "requests": stat(c.requests, c.failed_requests),
                    "tests": stat(self.executions.len(), 0),
                    "assertions": stat(c.assertions, c.failed_assertions),
                    "testScripts": stat(c.test_scripts, c.failed_test_scripts),
                    "prerequestScripts": stat(c.prerequest_scripts, c.failed_prerequest_scripts),
                },
                "timings": {"responseAverage": average, "duration": self.duration.as_millis() as u64},
                "executions": executions,
                "failures": failures,
            }
        })
    }

    /// The readable report newman's `cli` reporter prints.
    pub fn to_cli(&self) -> String {
        self.to_cli_with(Symbols::Unicode)
    }

    /// [`Summary::to_cli`] with `symbols` (`--disable-unicode`: newman's plain-text set).
    pub fn to_cli_with(&self, symbols: Symbols) -> String {
        let (root, ok, console) = match symbols {
            Symbols::Unicode => ("→", "✓ ", "┊"),
            Symbols::PlainText => ("Root", "Pass", "|"),
        };
        let (top, head, bottom, side) = match symbols {
            Symbols::Unicode => (
                "┌─────────────────────────┬──────────┬──────────┐",
                "│                         │ executed │   failed │",
                "└─────────────────────────┴──────────┴──────────┘",
                "│",
            ),
            Symbols::PlainText => (
                "---------------------------------------------------",
                "|                         | executed |   failed |",
                "---------------------------------------------------",
                "|",
            ),
        };
        let mut out = format!("{}\n", self.collection);
        let mut iteration = usize::MAX;
        let mut failure_number = 0;
        for e in &self.executions {
            if self.iterations > 1 && e.iteration != iteration {
                iteration = e.iteration;
                let _ = writeln!(out, "\nIteration {}/{}", iteration + 1, self.iterations);
            }
            let _ = writeln!(out, "\n{root} {}", e.name);
            if let Some((method, url)) = &e.request {
                let _ = match &e.response {
                    Some(r) => writeln!(
                        out,
                        "  {method} {url} [{} {}, {}B, {}ms]",
                        r.code, r.status, r.response_size, r.response_time
                    ),
                    None => writeln!(out, "  {method} {url}"),
                };
            }
            for line in &e.console {
                let _ = writeln!(out, "  {console} {}", line.message);
            }
            for a in &e.assertions {
                if a.skipped {
                    let _ = writeln!(out, "  - {} (skipped)", a.assertion);
                } else if a.error.is_some() {
                    failure_number += 1;
                    let _ = writeln!(out, "  {failure_number}. {}", a.assertion);
                } else {
                    let _ = writeln!(out, "  {ok} {}", a.assertion);
                }
            }
            for f in e.failures.iter().filter(|f| f.at != "assertion") {
                failure_number += 1;
                let _ = writeln!(out, "  {failure_number}⠄ {} in {}: {}", f.name, f.at, f.message);
            }
        }
        let c = self.counts();
        let _ = writeln!(out, "\n{top}");
        let _ = writeln!(out, "{head}");
        for (label, total, failed) in [
            ("iterations", self.iterations, 0),
            ("requests", c.requests, c.failed_requests),
            ("test-scripts", c.test_scripts, c.failed_test_scripts),
            ("prerequest-scripts", c.prerequest_scripts, c.failed_prerequest_scripts),
            ("assertions", c.assertions, c.failed_assertions),
        ] {
            let _ = writeln!(out, "{side} {label:>23} {side} {total:>8} {side} {failed:>8} {side}");
        }
        let _ = writeln!(out, "{bottom}");
        let _ = writeln!(out, "total run duration: {}ms", self.duration.as_millis());
        let failures: Vec<_> = self.failures().collect();
        if !failures.is_empty() || !self.run_failures.is_empty() {
            let _ = writeln!(out, "\n  #  failure           detail");
            for (n, (e, f)) in failures.iter().enumerate() {
                let what = f.test.as_deref().map(|t| format!("{t}: ")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    " {:>2}. {:<16}  {what}{}\n      at {} inside \"{}\"",
                    n + 1,
                    f.name,
                    f.message,
                    f.at,
                    e.name
                );
            }
            for f in &self.run_failures {
                let _ = writeln!(out, "     {:<16}  {}", f.name, f.message);
            }
        }
        out
    }

    /// JUnit XML: one test suite per item execution, one test case per assertion.
    pub fn to_junit(&self) -> String {
        let c = self.counts();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
            xml_escape(&self.collection),
            c.assertions,
            c.failed_assertions,
            self.duration.as_secs_f64()
        );
        for e in &self.executions {
            let failures = e.assertions.iter().filter(|a| a.error.is_some()).count();
            let errors = e.failures.iter().filter(|f| f.at != "assertion").count();
            let time = e
                .response
                .as_ref()
                .map(|r| r.response_time as f64 / 1000.0)
                .unwrap_or(0.0);
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" id=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
                xml_escape(&e.name),
                xml_escape(&e.id),
                e.assertions.len()
            );
            for a in &e.assertions {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\"",
                    xml_escape(&a.assertion),
                    xml_escape(&e.name)
                );
                if a.skipped {
                    let _ = writeln!(out, "><skipped/></testcase>");
                } else if let Some(err) = &a.error {
                    let _ = writeln!(
                        out,
                        "><failure type=\"AssertionError\" message=\"{}\"/></testcase>",
                        xml_escape(err)
                    );
                } else {
                    let _ = writeln!(out, "/>");
                }
            }
            for f in e.failures.iter().filter(|f| f.at != "assertion") {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\"><error type=\"{}\" message=\"{}\"/></testcase>",
                    xml_escape(&f.at),
                    xml_escape(&e.name),
                    xml_escape(&f.name),
                    xml_escape(&f.message)
                );
            }
            let _ = writeln!(out, "  </testsuite>");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// Per request: the item's name and its assertions as (name, passed, skipped)
/// — what a differential comparison with newman looks at.
pub type Outcome = Vec<(String, Vec<(String, bool, bool)>)>;

impl Summary {
    /// This run's [`Outcome`].
    pub fn outcome(&self) -> Outcome {
        self.executions
            .iter()
            .map(|e| {
                let assertions = e
                    .assertions
                    .iter()
                    .map(|a| (a.assertion.clone(), a.error.is_none(), a.skipped))
                    .collect();
                (e.name.clone(), assertions)
            })
            .collect()
    }
}

/// The [`Outcome`] of a newman JSON report (`-r json`). newman's reporter adds
/// an execution for each `pm.sendRequest` an item's scripts make, with the
/// item's cursor: the first per cursor is the item's own.
pub fn newman_outcome(report: &Value) -> Outcome {
    let mut seen = std::collections::HashSet::new();
    let executions = report["run"]["executions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    executions
        .iter()
        .filter(|e| seen.insert((e["item"]["id"].to_string(), e["cursor"]["ref"].to_string())))
        .map(|e| {
            let assertions = e["assertions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    let passed = a.get("error").is_none_or(Value::is_null);
                    (
                        a["assertion"].as_str().unwrap_or_default().to_owned(),
                        passed,
                        a["skipped"].as_bool().unwrap_or(false),
                    )
                })
                .collect();
            (e["item"]["name"].as_str().unwrap_or_default().to_owned(), assertions)
        })
        .collect()
}

#[derive(Default)]
struct Counts {
    requests: usize,
    failed_requests: usize,
    test_scripts: usize,
    failed_test_scripts: usize,
    prerequest_scripts: usize,
    failed_prerequest_scripts: usize,
    assertions: usize,
    failed_assertions: usize,
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
