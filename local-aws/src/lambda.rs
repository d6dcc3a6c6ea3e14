//! A Lambda endpoint for one machine, in the REST-JSON wire format
//! `aws-sdk-lambda` speaks, in front of real function binaries, each
//! published version running under its own [`RuntimeApi`]:
//!
//! - `Invoke` (`POST /2015-03-31/functions/{FunctionName}/invocations`),
//!   with `X-Amz-Invocation-Type` `RequestResponse` (200, the payload and
//!   `X-Amz-Executed-Version`), `Event` (202 at once; the invocation runs in
//!   the background and a function error is retried as Lambda retries
//!   asynchronous invocations, twice, after 1 and 2 minutes unless
//!   [`LambdaInvoke::set_async_retry_delays`] says otherwise) and `DryRun`
//!   (204). `Qualifier` picks a version or an alias; without one, the latest
//!   version answers. A function error comes back as Lambda sends it: status
//!   200, `X-Amz-Function-Error: Unhandled` and the error document.
//! - `CreateAlias`, `GetAlias`, `UpdateAlias` with
//!   `RoutingConfig.AdditionalVersionWeights`: an invocation of a weighted
//!   alias runs the additional version with the probability of its weight.
//! - Faults on one version, as Fault Injection Service's Lambda actions
//!   inject them ([`fault`]).
//! - One [`metrics::Invocation`] record per invocation, what Lambda's own
//!   `Invocations`, `Errors` and `Duration` metrics are computed from.
//! - Each function's stdout, line by line, as CloudWatch Logs keeps it
//!   ([`LambdaInvoke::logs`]).
//!
//! An `X-Amzn-Trace-Id` on the request is handed to the function as its
//! trace header (Lambda would insert its facade segment between the caller
//! and the function).

pub mod alias;
pub mod fault;
pub mod metrics;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::process::Child;
use tokio::sync::Mutex;

use crate::Error;
use crate::runtime_api::{Outcome, RuntimeApi};
use alias::{Alias, AliasError};
use fault::{Fault, Injection};
use metrics::{Ending, Invocation};

/// How long a published version may take to reach its first `invocation/next`.
const INIT_LIMIT: Duration = Duration::from_secs(30);

/// The most stdout lines kept per function.
const LOG_LINES: usize = 10_000;

/// A function's timeout unless [`LambdaInvoke::set_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The account the local stand-ins answer for.
pub const ACCOUNT: &str = "000000000000";

/// `arn:aws:lambda:<region>:<account>:function:<name>`.
pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{}:{ACCOUNT}:function:{name}", crate::moto::REGION)
}

struct Version {
    api: RuntimeApi,
    _process: Child,
}

#[derive(Default)]
struct Function {
    /// version → running binary.
    versions: HashMap<String, Arc<Version>>,
    /// Versions in publish order.
    order: Vec<String>,
    /// alias name → alias.
    aliases: HashMap<String, Alias>,
    /// version → the faults its invocations suffer, each sampled on its own.
    faults: HashMap<String, Vec<Injection>>,
    /// The `X-Amzn-Trace-Id` of each invoke, in order.
    traces: Vec<Option<String>>,
    timeout: Option<Duration>,
    /// Every alias as it was set, in order, with when.
    alias_history: Vec<(SystemTime, Alias)>,
    /// Its versions' stdout lines, oldest first, at most [`LOG_LINES`].
    logs: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

impl Function {
    fn set_alias(&mut self, alias: Alias) {
        self.alias_history.push((SystemTime::now(), alias.clone()));
        self.aliases.insert(alias.name.clone(), alias);
    }
}

struct Functions {
    functions: HashMap<String, Function>,
    invocations: Vec<Invocation>,
    async_retry_delays: Vec<Duration>,
    /// Where Lambda's metrics and the functions' EMF lines also go.
    metrics: Option<Arc<crate::cloudwatch::store::Store>>,
}

type Shared = Arc<Mutex<Functions>>;

/// A running Lambda endpoint on 127.0.0.1.
pub struct LambdaInvoke {
    endpoint: String,
    functions: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl LambdaInvoke {
    /// Starts the endpoint on a free loopback port.
    pub async fn start() -> Result<Self, Error> {
        let functions = Arc::new(Mutex::new(Functions {
            functions: HashMap::new(),
            invocations: Vec::new(),
            async_retry_delays: vec![Duration::from_secs(60), Duration::from_secs(120)],
            metrics: None,
        }));
        let app = Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .route("/2015-03-31/functions/{function}/aliases", post(create_alias))
            .route(
                "/2015-03-31/functions/{function}/aliases/{alias}",
                get(get_alias).put(update_alias),
            )
            .with_state(functions.clone())
            .layer(axum::middleware::map_response(crate::with_request_id));
        let (address, server) = crate::serve_router(app).await?;
        let endpoint = format!("http://{address}");
        Ok(Self {
            endpoint,
            functions,
            server,
        })
    }

    /// The value for `AWS_ENDPOINT_URL_LAMBDA`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Runs `binary` as version `version` of `function` with Lambda's own
    /// variables and `env` (which may override them, e.g. to make a version
    /// misreport itself) and waits until it polls for its first event.
    pub async fn publish(
        &self,
        function: &str,
        version: &str,
        binary: &Path,
        env: &[(String, String)],
    ) -> Result<(), Error> {
        let mut api = RuntimeApi::start().await?;
        let mut process = api.spawn(binary, function, version, env)?;
        let logs = self.with_function(function, |f| f.logs.clone()).await;
        let metrics = self.functions.lock().await.metrics.clone();
        if let Some(stdout) = process.stdout.take() {
            tokio::spawn(keep_lines(stdout, logs, metrics));
        }
        api.next_poll(INIT_LIMIT).await?;
        let mut functions = self.functions.lock().await;
        let entry = functions.functions.entry(function.to_owned()).or_default();
        entry
            .versions
            .insert(version.to_owned(), Arc::new(Version { api, _process: process }));
        entry.order.push(version.to_owned());
        Ok(())
    }

    /// Runs `change` on `function`'s state, creating it if needed.
    async fn with_function<T>(&self, function: &str, change: impl FnOnce(&mut Function) -> T) -> T {
        change(
            self.functions
                .lock()
                .await
                .functions
                .entry(function.to_owned())
                .or_default(),
        )
    }

    /// Sets `function`'s timeout: each invocation's deadline, after which it
    /// fails as a timed-out invocation does.
    pub async fn set_timeout(&self, function: &str, timeout: Duration) {
        self.with_function(function, |f| f.timeout = Some(timeout)).await;
    }

    /// The waits before each retry of an asynchronous invocation that ended
    /// in a function error (Lambda's are 1 and 2 minutes; a rehearsal
    /// scales them with its clock).
    pub async fn set_async_retry_delays(&self, delays: Vec<Duration>) {
        self.functions.lock().await.async_retry_delays = delays;
    }

    /// The `X-Amzn-Trace-Id` header of every invoke of `function` so far, in order.
    pub async fn trace_headers(&self, function: &str) -> Vec<Option<String>> {
        let functions = self.functions.lock().await;
        functions
            .functions
            .get(function)
            .map(|f| f.traces.clone())
            .unwrap_or_default()
    }

    /// Points `alias` of `function` at `version` alone, creating it if needed.
    pub async fn alias(&self, function: &str, alias: &str, version: &str) {
        let alias = Alias {
            name: alias.to_owned(),
            function_version: version.to_owned(),
            additional: None,
            description: String::new(),
            revision_id: uuid::Uuid::new_v4().to_string(),
        };
        self.with_function(function, |f| f.set_alias(alias)).await;
    }

    /// Every state `alias` of `function` has been set to (`CreateAlias`,
    /// `UpdateAlias`, [`LambdaInvoke::alias`]), in order, with when.
    pub async fn alias_history(&self, function: &str, alias: &str) -> Vec<(SystemTime, Alias)> {
        let functions = self.functions.lock().await;
        functions
            .functions
            .get(function)
            .map(|f| {
                f.alias_history
                    .iter()
                    .filter(|(_, a)| a.name == alias)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The alias as it stands, if it exists.
    pub async fn get_alias(&self, function: &str, alias: &str) -> Option<Alias> {
        let functions = self.functions.lock().await;
        functions.functions.get(function)?.aliases.get(alias).cloned()
    }

    /// From now on, `injection` also applies to the invocations of
    /// `version` of `function` (beside any injected before, as FIS runs
    /// several actions on one function).
    pub async fn inject(&self, function: &str, version: &str, injection: Injection) {
        self.with_function(function, |f| {
            f.faults.entry(version.to_owned()).or_default().push(injection)
        })
        .await;
    }

    /// Removes every fault on `version` of `function`.
    pub async fn clear_faults(&self, function: &str, version: &str) {
        if let Some(entry) = self.functions.lock().await.functions.get_mut(function) {
            entry.faults.remove(version);
        }
    }

    /// `function`'s stdout lines so far (every version's), oldest first.
    pub async fn logs(&self, function: &str) -> Vec<String> {
        let functions = self.functions.lock().await;
        functions
            .functions
            .get(function)
            .map(|f| f.logs.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// From now on, Lambda's metrics of every invocation and the EMF lines
    /// of versions published after this call go to `store`, as Lambda and
    /// CloudWatch Logs publish them.
    pub async fn publish_metrics(&self, store: Arc<crate::cloudwatch::store::Store>) {
        self.functions.lock().await.metrics = Some(store);
    }

    /// Every invocation so far, in the order they started.
    pub async fn invocations(&self) -> Vec<Invocation> {
        self.functions.lock().await.invocations.clone()
    }
}

impl Drop for LambdaInvoke {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Reads a process's stdout into `logs` (and its EMF into `metrics`) until it closes.
async fn keep_lines(
    stdout: tokio::process::ChildStdout,
    logs: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    metrics: Option<Arc<crate::cloudwatch::store::Store>>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(store) = &metrics {
            store.put_log_line(&line);
        }
        if let Ok(mut logs) = logs.lock() {
            if logs.len() == LOG_LINES {
                logs.pop_front();
            }
            logs.push_back(line);
        }
    }
}

#[derive(serde::Deserialize)]
struct InvokeQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

fn not_found(message: String) -> Response {
    AliasError::NotFound(message).into_response()
}

/// `name`, `name:qualifier` or an ARN (`arn:aws:lambda:…:function:name[:qualifier]`).
fn split_function(function: &str) -> (String, Option<String>) {
    let tail = function.split(":function:").nth(1).unwrap_or(function);
    match tail.split_once(':') {
        Some((name, qualifier)) => (name.to_owned(), Some(qualifier.to_owned())),
        None => (tail.to_owned(), None),
    }
}

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

/// One invocation, resolved to the version that runs it.
struct Call {
    function: String,
    qualifier: Option<String>,
    version: String,
    running: Arc<Version>,
    injections: Vec<Injection>,
    trace: Option<String>,
    timeout: Duration,
    payload: Bytes,
}

async fn invoke(
    State(functions): State<Shared>,
    UrlPath(function): UrlPath<String>,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let invocation_type = match headers
        .get("x-amz-invocation-type")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("Event") => InvocationType::Event,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return AliasError::InvalidParameter(format!(
                "InvocationType {other:?} is not one of RequestResponse, Event, DryRun"
            ))
            .into_response();
        }
    };
    let trace = headers
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (name, in_name) = split_function(&function);
    let qualifier = query.qualifier.or(in_name);
    let call = {
        let mut all = functions.lock().await;
        let Some(entry) = all.functions.get_mut(&name).filter(|f| !f.versions.is_empty()) else {
            return not_found(format!("Function not found: {}", function_arn(&name)));
        };
        entry.traces.push(trace.clone());
        let version = match qualifier.as_deref() {
            None | Some("$LATEST") => entry.order.last().cloned(),
            Some(q) if entry.versions.contains_key(q) => Some(q.to_owned()),
            Some(q) => entry.aliases.get(q).map(|a| a.pick(rand::random::<f64>()).to_owned()),
        };
        let Some((version, running)) = version.and_then(|v| entry.versions.get(&v).map(|r| (v, r.clone()))) else {
            return not_found(format!(
                "Function not found: {}:{}",
                function_arn(&name),
                qualifier.unwrap_or_default()
            ));
        };
        Call {
            injections: entry.faults.get(&version).cloned().unwrap_or_default(),
            timeout: entry.timeout.unwrap_or(DEFAULT_TIMEOUT),
            function: name,
            qualifier,
            version,
            running,
            trace,
            payload,
        }
    };
    match invocation_type {
        InvocationType::DryRun => StatusCode::NO_CONTENT.into_response(),
        InvocationType::Event => {
            let delays = functions.lock().await.async_retry_delays.clone();
            tokio::spawn(invoke_async(functions, call, delays));
            StatusCode::ACCEPTED.into_response()
        }
        InvocationType::RequestResponse => match execute(&functions, &call).await {
            Ok(Outcome::Response(body)) => {
                (StatusCode::OK, [("x-amz-executed-version", call.version)], body).into_response()
            }
            Ok(Outcome::Error(body)) => (
                StatusCode::OK,
                [
                    ("x-amz-executed-version", call.version),
                    ("x-amz-function-error", String::from("Unhandled")),
                ],
                body,
            )
                .into_response(),
            Err(err) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("x-amzn-errortype", "ServiceException")],
                serde_json::json!({"Type": "Service", "Message": err.to_string()}).to_string(),
            )
                .into_response(),
        },
    }
}

/// An asynchronous invocation: run, and on a function error or a failed
/// run, again after each of `delays`, as Lambda's event queue does.
async fn invoke_async(functions: Shared, call: Call, delays: Vec<Duration>) {
    let mut delays = delays.into_iter();
    loop {
        let failed = !matches!(execute(&functions, &call).await, Ok(Outcome::Response(_)));
        match delays.next() {
            Some(delay) if failed => tokio::time::sleep(delay).await,
            _ => return,
        }
    }
}

/// Runs `call` (or the fault sampled for it) and records it.
async fn execute(functions: &Shared, call: &Call) -> Result<Outcome, Error> {
    let at = SystemTime::now();
    let started = Instant::now();
    // Each fault is sampled on its own; delays add up, and a sampled error
    // or status answers instead of the function.
    let mut delay = Duration::ZERO;
    let mut instead = None;
    for injection in &call.injections {
        if injection.samples(call.qualifier.as_deref(), rand::random::<f64>()) {
            match injection.fault {
                Fault::Delay(d) => delay += d,
                fault => instead = instead.or(Some(fault)),
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay.min(call.timeout)).await;
    }
    let outcome = match instead {
        Some(Fault::Error) => Ok(Outcome::Error(Bytes::from(
            serde_json::json!({
                "errorType": "FaultInjectionError",
                "errorMessage": "An invocation error was injected (aws:lambda:invocation-error)"
            })
            .to_string(),
        ))),
        Some(Fault::HttpStatus(status)) => Ok(Outcome::Response(Bytes::from(
            serde_json::json!({
                "statusCode": status,
                "headers": {"content-type": "application/json"},
                "body": "",
                "isBase64Encoded": false
            })
            .to_string(),
        ))),
        Some(Fault::Delay(_)) | None => run(call, call.timeout.saturating_sub(delay), started).await,
    };
    let ending = match &outcome {
        Ok(Outcome::Response(_)) => Ending::Answered,
        Ok(Outcome::Error(_)) | Err(_) => Ending::FunctionError,
    };
    let invocation = Invocation {
        at,
        function: call.function.clone(),
        qualifier: call.qualifier.clone(),
        executed_version: call.version.clone(),
        ending,
        duration: started.elapsed(),
    };
    let mut functions = functions.lock().await;
    if let Some(store) = &functions.metrics {
        store.put(crate::cloudwatch::store::lambda(&invocation));
    }
    functions.invocations.push(invocation);
    outcome
}

/// Runs `call` in what is left of its timeout. An invocation that outlives
/// the timeout, or whose sandbox fails, ends as Lambda ends it: a function
/// error.
async fn run(call: &Call, within: Duration, started: Instant) -> Result<Outcome, Error> {
    let error = |error_type: &str, message: String| {
        Ok(Outcome::Error(Bytes::from(
            serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string(),
        )))
    };
    if within.is_zero() {
        return error("Sandbox.Timedout", timed_out(call.timeout));
    }
    match call
        .running
        .api
        .invoke_traced(call.payload.clone(), call.trace.as_deref(), within)
        .await
    {
        Ok(outcome) => Ok(outcome),
        Err(_) if started.elapsed() >= call.timeout => error("Sandbox.Timedout", timed_out(call.timeout)),
        Err(err) => error("Runtime.ExitError", format!("The function's runtime failed: {err}")),
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())
}

fn published(functions: &Functions, function: &str) -> Result<(), AliasError> {
    if functions
        .functions
        .get(function)
        .is_some_and(|f| !f.versions.is_empty())
    {
        Ok(())
    } else {
        Err(AliasError::NotFound(format!(
            "Function not found: {}",
            function_arn(function)
        )))
    }
}

fn check_version(entry: &Function, function: &str, version: &str) -> Result<(), AliasError> {
    if entry.versions.contains_key(version) {
        Ok(())
    } else {
        Err(AliasError::NotFound(format!(
            "Function not found: {}:{version}",
            function_arn(function)
        )))
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, AliasError> {
    serde_json::from_slice(body)
        .map_err(|err| AliasError::InvalidParameter(format!("The request body is not valid: {err}")))
}

async fn create_alias(State(functions): State<Shared>, UrlPath(function): UrlPath<String>, body: Bytes) -> Response {
    let result = async {
        let request: alias::CreateAlias = parse(&body)?;
        alias::check_name(&request.name)?;
        let (name, _) = split_function(&function);
        let mut all = functions.lock().await;
        published(&all, &name)?;
        let entry = all.functions.entry(name.clone()).or_default();
        check_version(entry, &name, &request.function_version)?;
        if entry.aliases.contains_key(&request.name) {
            return Err(AliasError::Conflict(format!(
                "Alias already exists: {}:{}",
                function_arn(&name),
                request.name
            )));
        }
        let additional = alias::additional_version(&request.function_version, request.routing_config, |v| {
            entry.versions.contains_key(v)
        })?;
        let created = Alias {
            name: request.name.clone(),
            function_version: request.function_version,
            additional,
            description: request.description,
            revision_id: uuid::Uuid::new_v4().to_string(),
        };
        entry.set_alias(created.clone());
        Ok::<_, AliasError>(created.configuration(&function_arn(&name)))
    }
    .await;
    match result {
        Ok(configuration) => (StatusCode::CREATED, axum::Json(configuration)).into_response(),
        Err(err) => err.into_response(),
    }
}

fn missing_alias(function: &str, alias: &str) -> AliasError {
    AliasError::NotFound(format!("Cannot find alias arn: {}:{alias}", function_arn(function)))
}

async fn get_alias(State(functions): State<Shared>, UrlPath((function, alias)): UrlPath<(String, String)>) -> Response {
    let (name, _) = split_function(&function);
    let all = functions.lock().await;
    match all.functions.get(&name).and_then(|f| f.aliases.get(&alias)) {
        Some(found) => axum::Json(found.configuration(&function_arn(&name))).into_response(),
        None => missing_alias(&name, &alias).into_response(),
    }
}

async fn update_alias(
    State(functions): State<Shared>,
    UrlPath((function, alias)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    let result = async {
        let request: alias::UpdateAlias = parse(&body)?;
        let (name, _) = split_function(&function);
        let mut all = functions.lock().await;
        let entry = all.functions.get_mut(&name).ok_or_else(|| missing_alias(&name, &alias))?;
        let current = entry.aliases.get(&alias).ok_or_else(|| missing_alias(&name, &alias))?;
        if request.revision_id.as_ref().is_some_and(|r| *r != current.revision_id) {
            return Err(AliasError::PreconditionFailed(String::from(
                "The Revision Id provided does not match the latest Revision Id. Call the GetAlias API to retrieve the latest Revision Id",
            )));
        }
        let primary = request.function_version.unwrap_or_else(|| current.function_version.clone());
        check_version(entry, &name, &primary)?;
        let additional = match request.routing_config {
            Some(routing) => alias::additional_version(&primary, Some(routing), |v| entry.versions.contains_key(v))?,
            None => current.additional.clone().filter(|(version, _)| *version != primary),
        };
        let updated = Alias {
            name: alias.clone(),
            function_version: primary,
            additional,
            description: request.description.unwrap_or_else(|| current.description.clone()),
            revision_id: uuid::Uuid::new_v4().to_string(),
        };
        entry.set_alias(updated.clone());
        Ok::<_, AliasError>(updated.configuration(&function_arn(&name)))
    }
    .await;
    match result {
        Ok(configuration) => axum::Json(configuration).into_response(),
        Err(err) => err.into_response(),
    }
}
