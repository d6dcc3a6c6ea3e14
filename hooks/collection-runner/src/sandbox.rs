//! Runs prerequest and test scripts in an embedded QuickJS engine with the
//! Postman sandbox (`sandbox/pm.js`) and a chai-compatible `expect`
//! (`sandbox/chai.js`). One engine per run; each script gets a time budget
//! (interrupt handler) and the engine a memory limit. A script error fails
//! that script's tests, never the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use rquickjs::{Context, Function, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use crate::variables::{self, Scope};

const CHAI: &str = include_str!("sandbox/chai.js");
const PM: &str = include_str!("sandbox/pm.js");

/// Why the engine could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// QuickJS failed to start or to load the sandbox.
    #[error("script engine: {0}")]
    Engine(String),
}

/// The variable scopes a script sees and may change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Scopes {
    /// `pm.variables` (local to the run).
    pub local: Vec<(String, Value)>,
    /// `pm.iterationData` (read-only).
    pub data: Vec<(String, Value)>,
    /// `pm.environment`.
    pub environment: Vec<(String, Value)>,
    /// `pm.collectionVariables`.
    pub collection: Vec<(String, Value)>,
    /// `pm.globals`.
    pub globals: Vec<(String, Value)>,
}

/// The request as scripts see it (and as prerequest scripts may change it).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScriptRequest {
    /// Item id.
    #[serde(default)]
    pub id: Option<String>,
    /// Item name.
    #[serde(default)]
    pub name: Option<String>,
    /// Method.
    pub method: String,
    /// Resolved URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<Header>,
    /// Body (`{mode, raw, …}`), if any.
    #[serde(default)]
    pub body: Option<Value>,
}

/// A header.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
}

/// A response as scripts see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScriptResponse {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub status: String,
    /// Headers in order.
    pub headers: Vec<Header>,
    /// Body text.
    pub body: String,
    /// Milliseconds from send to the full body.
    pub response_time: u64,
    /// Body size in bytes.
    pub response_size: usize,
}

/// `pm.info`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptInfo {
    /// `prerequest` or `test`.
    pub event_name: String,
    /// Zero-based iteration.
    pub iteration: usize,
    /// Number of iterations.
    pub iteration_count: usize,
    /// The item's name.
    pub request_name: String,
    /// The item's id.
    pub request_id: String,
}

/// Everything one script run needs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptInput {
    /// The source.
    pub code: String,
    /// Scopes before the script.
    pub scopes: Scopes,
    /// `pm.environment.name`.
    pub environment_name: Option<String>,
    /// The request.
    pub request: ScriptRequest,
    /// The response (test scripts only).
    pub response: Option<ScriptResponse>,
    /// `pm.info`.
    pub info: ScriptInfo,
    /// `pm.cookies`: the cookies held for the request's URL after its response.
    pub cookies: Vec<Header>,
}

/// A `pm.sendRequest` waiting for its response.
#[derive(Debug, Clone, Deserialize)]
pub struct PendingRequest {
    /// Which callback gets the response.
    pub id: u64,
    /// What to send: `{url, method, header: [{key, value}], body}`.
    pub request: Value,
}

/// The answer to a [`PendingRequest`].
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The pending request's id.
    pub id: u64,
    /// The response, when it arrived.
    pub response: Option<ScriptResponse>,
    /// The error, when it did not.
    pub error: Option<String>,
}

/// One `pm.test` (or legacy `tests[…]`) result.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// `pm.test.skip`.
    pub skipped: bool,
    /// Why it failed.
    pub error: Option<ScriptError>,
}

/// An error thrown by a script or an assertion.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ScriptError {
    /// `AssertionError`, `TypeError`, …
    pub name: String,
    /// The message.
    pub message: String,
}

/// A `console.*` line.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ConsoleLine {
    /// `log`, `info`, `warn`, `error`, `debug`.
    pub level: String,
    /// The formatted arguments.
    pub message: String,
}

/// What `pm.execution.setNextRequest` asked for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct NextRequest {
    /// A request name or id; `null` ends the run.
    pub value: Option<String>,
}

/// The result of one script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptOutput {
    /// Tests, in order.
    pub tests: Vec<TestResult>,
    /// Console output.
    pub console: Vec<ConsoleLine>,
    /// The uncaught error, if the script threw.
    pub error: Option<ScriptError>,
    /// A `setNextRequest` call, if any.
    pub next_request: Option<NextRequest>,
    /// `pm.execution.skipRequest()` was called.
    pub skip_request: bool,
    /// Scopes after the script.
    pub scopes: Scopes,
    /// The request after the script (prerequest scripts may change it).
    pub request: ScriptRequest,
}

/// Limits for scripts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time per script, callbacks included.
    pub timeout: Duration,
    /// Memory for the engine.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            memory_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A QuickJS engine loaded with the sandbox.
pub struct Sandbox {
    // Dropped after the context.
    context: Context,
    _runtime: Runtime,
    /// Deadline for the running script, in microseconds since `epoch`; 0 = none.
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    limits: Limits,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn engine<E: std::fmt::Display>(err: E) -> SandboxError {
    SandboxError::Engine(err.to_string())
}

impl Sandbox {
    /// Starts an engine with `limits`.
    pub fn new(limits: Limits) -> Result<Self, SandboxError> {
        let runtime = Runtime::new().map_err(engine)?;
        runtime.set_memory_limit(limits.memory_bytes);
        let deadline = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        let watch = Arc::clone(&deadline);
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let limit = watch.load(Ordering::Relaxed);
            limit != 0 && epoch.elapsed().as_micros() as u64 > limit
        })));
        let context = Context::full(&runtime).map_err(engine)?;
        context
            .with(|ctx| -> rquickjs::Result<()> {
                let globals = ctx.globals();
                globals.set(
                    "__host_resolve",
                    Function::new(ctx.clone(), |template: String, layers: String| {
                        host_resolve(&template, &layers)
                    })?,
                )?;
                globals.set(
                    "__host_digest",
                    Function::new(ctx.clone(), |alg: String, data: String, key: String| {
                        host_digest(&alg, &data, &key)
                    })?,
                )?;
                globals.set(
                    "__host_uuid",
                    Function::new(ctx.clone(), || uuid::Uuid::new_v4().to_string())?,
                )?;
                globals.set(
                    "__host_xml2json",
                    Function::new(ctx.clone(), |xml: String| crate::xml::to_json(&xml))?,
                )?;
                ctx.eval::<(), _>(CHAI)?;
                ctx.eval::<(), _>(PM)?;
                Ok(())
            })
            .map_err(engine)?;
        Ok(Self {
            context,
            _runtime: runtime,
            deadline,
            epoch,
            limits,
        })
    }

    fn call(&self, function: &str, argument: Option<String>) -> Result<String, ScriptError> {
        self.context.with(|ctx| {
            let result = (|| -> rquickjs::Result<String> {
                let f: Function = ctx.globals().get(function)?;
                match argument {
                    Some(arg) => f.call((arg,)),
                    None => f.call(()),
                }
            })();
            result.map_err(|err| {
                let thrown = ctx.catch();
                let message = thrown
                    .as_exception()
                    .and_then(|e| e.message())
                    .or_else(|| thrown.as_string().and_then(|s| s.to_string().ok()))
                    .unwrap_or_else(|| err.to_string());
                let interrupted = self.deadline.load(Ordering::Relaxed) != 0
                    && self.epoch.elapsed().as_micros() as u64 > self.deadline.load(Ordering::Relaxed);
                if interrupted {
                    ScriptError {
                        name: String::from("TimeoutError"),
                        message: format!("script ran longer than {} ms", self.limits.timeout.as_millis()),
                    }
                } else {
                    ScriptError {
                        name: String::from("Error"),
                        message,
                    }
                }
            })
        })
    }

    fn arm(&self) {
        let limit = (self.epoch.elapsed() + self.limits.timeout).as_micros() as u64;
        self.deadline.store(limit.max(1), Ordering::Relaxed);
    }

    /// Starts a script; returns the `pm.sendRequest` calls it made.
    pub fn start(&self, input: &ScriptInput) -> Result<Vec<PendingRequest>, ScriptError> {
        let json = serde_json::to_string(input).map_err(|e| ScriptError {
            name: "Error".into(),
            message: e.to_string(),
        })?;
        self.arm();
        self.pending(self.call("__execute", Some(json)))
    }

    /// Hands responses to the waiting callbacks; returns any new requests they made.
    pub fn deliver(&self, deliveries: &[Delivery]) -> Result<Vec<PendingRequest>, ScriptError> {
        let json = serde_json::to_string(deliveries).map_err(|e| ScriptError {
            name: "Error".into(),
            message: e.to_string(),
        })?;
        self.pending(self.call("__deliver", Some(json)))
    }

    fn pending(&self, out: Result<String, ScriptError>) -> Result<Vec<PendingRequest>, ScriptError> {
        #[derive(Deserialize)]
        struct Pending {
            pending: Vec<PendingRequest>,
        }
        let text = out?;
        serde_json::from_str::<Pending>(&text)
            .map(|p| p.pending)
            .map_err(|e| ScriptError {
                name: "Error".into(),
                message: e.to_string(),
            })
    }

    /// Ends the script and returns its results. `failure` (a timeout or an
    /// engine error from an earlier step) is reported as the script's error.
    pub fn finish(&self, input: &ScriptInput, failure: Option<ScriptError>) -> ScriptOutput {
        self.deadline.store(0, Ordering::Relaxed);
        let finished = self.call("__finish", None).and_then(|text| {
            serde_json::from_str::<ScriptOutput>(&text).map_err(|e| ScriptError {
                name: "Error".into(),
                message: e.to_string(),
            })
        });
        match finished {
            Ok(mut out) => {
                if failure.is_some() {
                    out.error = failure;
                }
                out
            }
            Err(err) => ScriptOutput {
                tests: Vec::new(),
                console: Vec::new(),
                error: Some(failure.unwrap_or(err)),
                next_request: None,
                skip_request: false,
                scopes: input.scopes.clone(),
                request: input.request.clone(),
            },
        }
    }
}

fn host_resolve(template: &str, layers: &str) -> String {
    let layers: Vec<Vec<(String, Value)>> = serde_json::from_str(layers).unwrap_or_default();
    let scopes: Vec<Scope> = layers.into_iter().map(Scope::from_pairs).collect();
    let refs: Vec<&Scope> = scopes.iter().collect();
    variables::resolve(template, &refs)
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash (or, with a key, HMAC) of hex-encoded data, hex-encoded; `""` for an unknown algorithm.
fn host_digest(alg: &str, data: &str, key: &str) -> String {
    let data = from_hex(data);
    let key = from_hex(key);
    let keyed = !key.is_empty();
    macro_rules! digest {
        ($d:ty) => {
            if keyed {
                let mut mac =
                    <hmac::SimpleHmac<$d> as KeyInit>::new_from_slice(&key).expect("HMAC takes any key length");
                mac.update(&data);
                mac.finalize().into_bytes().to_vec()
            } else {
                <$d as Digest>::digest(&data).to_vec()
            }
        };
    }
    let out = match alg {
        "md5" => digest!(md5::Md5),
        "sha1" => digest!(sha1::Sha1),
        "sha224" => digest!(sha2::Sha224),
        "sha256" => digest!(sha2::Sha256),
        "sha384" => digest!(sha2::Sha384),
        "sha512" => digest!(sha2::Sha512),
        _ => return String::new(),
    };
    to_hex(&out)
}
