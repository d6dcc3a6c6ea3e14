//! Runs prerequest and test scripts in an embedded QuickJS engine on
//! postman-sandbox itself (`sandbox/postman-sandbox.js`, generated from the
//! npm package newman installs: its pm API, legacy globals and libraries),
//! hosted as postman-runtime hosts it (`sandbox/host.js`). One engine per
//! run; each script gets a time budget (the sandbox's own timeout, and an
//! interrupt handler for code that never yields) and the engine a memory
//! limit. A script error fails that script's tests, never the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rquickjs::{Context, Ctx, Function, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const HOST: &str = include_str!("sandbox/host.js");
/// `sandbox/postman-sandbox.js` as QuickJS bytecode, compiled by `build.rs`.
const POSTMAN_SANDBOX: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/postman-sandbox.qjsbc"));

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
    /// The body's bytes, as received (scripts see them as `pm.response.stream`).
    pub body: Vec<u8>,
    /// Milliseconds from send to the full body.
    pub response_time: u64,
    /// Body size in bytes.
    pub response_size: usize,
}

impl ScriptResponse {
    /// The body as text (invalid UTF-8 replaced), as `pm.response.text()` reads it.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
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
#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// Time per script, callbacks and timers included (newman's `--timeout-script`).
    pub timeout: Duration,
    /// Memory for the engine, postman-sandbox's libraries included.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            memory_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Where a started script stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// It waits on these `pm.sendRequest` calls: answer them with [`Sandbox::deliver`].
    Requests(Vec<PendingRequest>),
    /// It waits on a timer due in this long: call [`Sandbox::deliver`] with nothing then.
    Timer(Duration),
    /// It has finished: collect it with [`Sandbox::finish`].
    Done,
}

/// Runs a global script compiled to bytecode by `build.rs`.
#[allow(
    unsafe_code,
    reason = "rquickjs reads bytecode only through QuickJS's C API; these bytes are build.rs's, from the same QuickJS"
)]
fn run_bytecode(ctx: &Ctx<'_>, bytecode: &[u8]) -> rquickjs::Result<()> {
    use rquickjs::qjs;
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `raw` is the context `ctx` borrows; JS_ReadObject copies from the
    // slice, JS_EvalFunction takes ownership of the function it is given, and
    // its result is freed once. An exception is left for `Ctx::catch`.
    unsafe {
        let function = qjs::JS_ReadObject(
            raw,
            bytecode.as_ptr(),
            bytecode.len() as _,
            qjs::JS_READ_OBJ_BYTECODE as i32,
        );
        if qjs::JS_VALUE_GET_TAG(function) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        let result = qjs::JS_EvalFunction(raw, function);
        if qjs::JS_VALUE_GET_TAG(result) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        qjs::JS_FreeValue(raw, result);
    }
    Ok(())
}

/// What the host glue answers to `execute` and `deliver`.
#[derive(Debug, Deserialize)]
struct Step {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    requests: Vec<PendingRequest>,
    #[serde(default)]
    wait: Option<f64>,
    #[serde(default)]
    stalled: bool,
}

/// What the host glue answers to `finish`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finished {
    tests: Vec<TestResult>,
    console: Vec<ConsoleLine>,
    error: Option<ScriptError>,
    next_request: Option<NextRequest>,
    skip_request: bool,
    scopes: Option<ChangedScopes>,
    request: Option<ScriptRequest>,
}

/// The scopes a script may change (iteration data is read-only).
#[derive(Debug, Deserialize)]
struct ChangedScopes {
    local: Vec<(String, Value)>,
    environment: Vec<(String, Value)>,
    collection: Vec<(String, Value)>,
    globals: Vec<(String, Value)>,
}

/// The `execute` message postman-runtime's event command sends the sandbox.
#[derive(Debug, Serialize)]
struct Execute<'a> {
    id: String,
    event: Event<'a>,
    context: RuntimeContext<'a>,
    options: ExecuteOptions<'a>,
}

#[derive(Debug, Serialize)]
struct Event<'a> {
    listen: &'a str,
    script: Script<'a>,
}

#[derive(Debug, Serialize)]
struct Script<'a> {
    exec: [&'a str; 1],
}

/// `SAFE_CONTEXT_VARIABLES` of postman-runtime, in postman-collection's JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeContext<'a> {
    #[serde(rename = "_variables")]
    variables: VariableScope<'a>,
    environment: VariableScope<'a>,
    collection_variables: VariableScope<'a>,
    globals: VariableScope<'a>,
    data: serde_json::Map<String, Value>,
    cookies: Vec<Cookie<'a>>,
    request: RequestJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseJson<'a>>,
}

#[derive(Debug, Serialize)]
struct VariableScope<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    values: Vec<Variable<'a>>,
}

impl<'a> VariableScope<'a> {
    fn of(pairs: &'a [(String, Value)], name: Option<&'a str>) -> Self {
        Self {
            name,
            // `any` keeps each value in its JSON type, as newman keeps them.
            values: pairs
                .iter()
                .map(|(key, value)| Variable {
                    key,
                    value,
                    kind: "any",
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Variable<'a> {
    key: &'a str,
    value: &'a Value,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct Cookie<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct RequestJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    url: &'a str,
    method: &'a str,
    header: &'a [Header],
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
}

impl<'a> From<&'a ScriptRequest> for RequestJson<'a> {
    fn from(request: &'a ScriptRequest) -> Self {
        Self {
            id: request.id.as_deref(),
            name: request.name.as_deref(),
            url: &request.url,
            method: &request.method,
            header: &request.headers,
            body: request.body.as_ref(),
        }
    }
}

/// A response as postman-collection's `Response` JSON: the body as the
/// serialised Buffer (`stream`) newman hands the sandbox.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseJson<'a> {
    code: u16,
    status: &'a str,
    header: &'a [Header],
    stream: Buffer<'a>,
    response_time: u64,
    response_size: usize,
}

impl<'a> From<&'a ScriptResponse> for ResponseJson<'a> {
    fn from(response: &'a ScriptResponse) -> Self {
        Self {
            code: response.code,
            status: &response.status,
            header: &response.headers,
            stream: Buffer {
                kind: "Buffer",
                data: &response.body,
            },
            response_time: response.response_time,
            response_size: response.response_size,
        }
    }
}

#[derive(Debug, Serialize)]
struct Buffer<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a [u8],
}

#[derive(Debug, Serialize)]
struct ExecuteOptions<'a> {
    cursor: Cursor,
    timeout: u128,
    legacy: Legacy<'a>,
}

#[derive(Debug, Serialize)]
struct Cursor {
    #[serde(rename = "ref")]
    reference: String,
    iteration: usize,
    cycles: usize,
}

#[derive(Debug, Serialize)]
struct Legacy<'a> {
    #[serde(rename = "_itemId")]
    item_id: &'a str,
    #[serde(rename = "_itemName")]
    item_name: &'a str,
}

/// A delivery as the host glue hands it on: the response in postman-collection's JSON.
#[derive(Debug, Serialize)]
struct DeliveryJson<'a> {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// A QuickJS engine running postman-sandbox.
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

fn script_error(message: impl std::fmt::Display) -> ScriptError {
    ScriptError {
        name: String::from("Error"),
        message: message.to_string(),
    }
}

impl Sandbox {
    /// Starts an engine with `limits` and boots postman-sandbox in it.
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
        let sandbox = Self {
            context,
            _runtime: runtime,
            deadline,
            epoch,
            limits,
        };
        sandbox
            .context
            .with(|ctx| -> rquickjs::Result<()> {
                ctx.eval::<(), _>(HOST)?;
                run_bytecode(&ctx, POSTMAN_SANDBOX)
            })
            .map_err(|err| SandboxError::Engine(sandbox.thrown(err).message))?;
        #[derive(Deserialize)]
        struct Attached {
            initialized: Value,
        }
        let attached: Attached = sandbox
            .call("attach", None)
            .and_then(|text| serde_json::from_str(&text).map_err(script_error))
            .map_err(|err| SandboxError::Engine(err.message))?;
        if attached.initialized != Value::Bool(true) {
            return Err(SandboxError::Engine(format!(
                "postman-sandbox did not initialize: {}",
                attached.initialized
            )));
        }
        Ok(sandbox)
    }

    /// What a failed engine call threw, as a script error.
    fn thrown(&self, err: rquickjs::Error) -> ScriptError {
        self.context.with(|ctx| {
            let thrown = ctx.catch();
            let message = thrown
                .as_exception()
                .and_then(|e| e.message())
                .or_else(|| thrown.as_string().and_then(|s| s.to_string().ok()))
                .unwrap_or_else(|| err.to_string());
            let limit = self.deadline.load(Ordering::Relaxed);
            if limit != 0 && self.epoch.elapsed().as_micros() as u64 > limit {
                ScriptError {
                    name: String::from("TimeoutError"),
                    message: format!("script ran longer than {} ms", self.limits.timeout.as_millis()),
                }
            } else {
                script_error(message)
            }
        })
    }

    fn call(&self, function: &str, argument: Option<String>) -> Result<String, ScriptError> {
        let result = self.context.with(|ctx| -> rquickjs::Result<String> {
            let host: rquickjs::Object = ctx.globals().get("__host")?;
            let f: Function = host.get(function)?;
            match argument {
                Some(arg) => f.call((arg,)),
                None => f.call(()),
            }
        });
        result.map_err(|err| self.thrown(err))
    }

    fn arm(&self) {
        let limit = (self.epoch.elapsed() + self.limits.timeout).as_micros() as u64;
        self.deadline.store(limit.max(1), Ordering::Relaxed);
    }

    /// Starts a script, as postman-runtime hands one to the sandbox.
    pub fn start(&self, input: &ScriptInput) -> Result<Progress, ScriptError> {
        let message = Execute {
            id: uuid::Uuid::new_v4().to_string(),
            event: Event {
                listen: &input.info.event_name,
                script: Script { exec: [&input.code] },
            },
            context: RuntimeContext {
                variables: VariableScope::of(&input.scopes.local, None),
                environment: VariableScope::of(&input.scopes.environment, input.environment_name.as_deref()),
                collection_variables: VariableScope::of(&input.scopes.collection, None),
                globals: VariableScope::of(&input.scopes.globals, None),
                data: input.scopes.data.iter().cloned().collect(),
                cookies: input
                    .cookies
                    .iter()
                    .map(|c| Cookie {
                        name: &c.key,
                        value: &c.value,
                    })
                    .collect(),
                request: RequestJson::from(&input.request),
                response: input.response.as_ref().map(ResponseJson::from),
            },
            options: ExecuteOptions {
                cursor: Cursor {
                    reference: uuid::Uuid::new_v4().to_string(),
                    iteration: input.info.iteration,
                    cycles: input.info.iteration_count,
                },
                timeout: self.limits.timeout.as_millis(),
                legacy: Legacy {
                    item_id: &input.info.request_id,
                    item_name: &input.info.request_name,
                },
            },
        };
        let json = serde_json::to_string(&message).map_err(script_error)?;
        self.arm();
        self.step(self.call("execute", Some(json)))
    }

    /// Hands responses to the waiting callbacks (none when a timer is due)
    /// and runs the script on.
    pub fn deliver(&self, deliveries: &[Delivery]) -> Result<Progress, ScriptError> {
        let deliveries: Vec<DeliveryJson<'_>> = deliveries
            .iter()
            .map(|d| DeliveryJson {
                id: d.id,
                response: d.response.as_ref().map(ResponseJson::from),
                error: d.error.as_deref(),
            })
            .collect();
        let json = serde_json::to_string(&deliveries).map_err(script_error)?;
        self.step(self.call("deliver", Some(json)))
    }

    fn step(&self, answer: Result<String, ScriptError>) -> Result<Progress, ScriptError> {
        let step: Step = serde_json::from_str(&answer?).map_err(script_error)?;
        if step.done {
            Ok(Progress::Done)
        } else if !step.requests.is_empty() {
            Ok(Progress::Requests(step.requests))
        } else if let Some(ms) = step.wait {
            Ok(Progress::Timer(Duration::from_secs_f64(ms.max(0.0) / 1000.0)))
        } else {
            debug_assert!(step.stalled);
            Err(script_error("the script waits on something this runner never answers"))
        }
    }

    /// Ends the script and returns its results. `failure` (a timeout or an
    /// engine error from an earlier step) is reported as the script's error.
    pub fn finish(&self, input: &ScriptInput, failure: Option<ScriptError>) -> ScriptOutput {
        self.deadline.store(0, Ordering::Relaxed);
        let finished = self
            .call("finish", None)
            .and_then(|text| serde_json::from_str::<Finished>(&text).map_err(script_error));
        match finished {
            Ok(out) => {
                let scopes = match out.scopes {
                    Some(changed) => Scopes {
                        local: changed.local,
                        data: input.scopes.data.clone(),
                        environment: changed.environment,
                        collection: changed.collection,
                        globals: changed.globals,
                    },
                    None => input.scopes.clone(),
                };
                let request = out.request.map_or_else(
                    || input.request.clone(),
                    |changed| ScriptRequest {
                        id: input.request.id.clone(),
                        name: input.request.name.clone(),
                        ..changed
                    },
                );
                ScriptOutput {
                    tests: out.tests,
                    console: out.console,
                    error: failure.or(out.error),
                    next_request: out.next_request,
                    skip_request: out.skip_request,
                    scopes,
                    request,
                }
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
