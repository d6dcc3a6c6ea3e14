//! The run loop, with newman's semantics: iterations, folder selection,
//! scripts collection → folders → request (prerequest, then test),
//! `setNextRequest`, `--bail`, delays and timeouts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collection::{Auth, Collection, Event, Item, ProtocolProfileBehavior, RequestSpec, scope_of};
use crate::report::{Execution, Summary};
use crate::request::{prepare, script_request};
use crate::sandbox::{
    Delivery, Limits, Progress, Sandbox, SandboxError, Scopes, ScriptError, ScriptInfo, ScriptInput, ScriptOutput,
    ScriptRequest,
};
use crate::transport::Transport;
use crate::variables::Scope;
use tracing::Instrument;

/// Run settings (the `newman run` options).
#[derive(Debug, Clone)]
pub struct Options {
    /// Iterations (`-n`); default: the number of data rows, or 1.
    pub iterations: Option<usize>,
    /// Iteration data rows (`-d`).
    pub data: Vec<Scope>,
    /// Only these folders or requests, by name or id (`--folder`).
    pub folders: Vec<String>,
    /// Stop at the first failure (`--bail`).
    pub bail: bool,
    /// End the run as an error at the first request or script error (`--bail folder`).
    pub abort_on_error: bool,
    /// Pause between requests (`--delay-request`).
    pub delay: Duration,
    /// Time for the whole run (`--timeout`).
    pub timeout: Option<Duration>,
    /// Time per request (`--timeout-request`).
    pub timeout_request: Option<Duration>,
    /// Script limits (`--timeout-script`).
    pub limits: Limits,
    /// Environment (`-e`).
    pub environment: Scope,
    /// Its name.
    pub environment_name: Option<String>,
    /// Globals (`-g`).
    pub globals: Scope,
    /// Where body files are found (`--working-dir`).
    pub working_dir: PathBuf,
    /// Whether body files outside the working directory may be read
    /// (newman's default; `--no-insecure-file-read` turns it off).
    pub insecure_file_read: bool,
    /// Whether redirects are followed where the collection does not say
    /// (`--ignore-redirects` turns it off).
    pub follow_redirects: bool,
}

impl Options {
    /// Where body files are read from.
    pub fn files(&self) -> crate::request::Files<'_> {
        crate::request::Files {
            dir: &self.working_dir,
            outside: self.insecure_file_read,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            iterations: None,
            data: Vec::new(),
            folders: Vec::new(),
            bail: false,
            abort_on_error: false,
            delay: Duration::ZERO,
            timeout: None,
            timeout_request: None,
            limits: Limits::default(),
            environment: Scope::default(),
            environment_name: None,
            globals: Scope::default(),
            working_dir: PathBuf::from("."),
            insecure_file_read: true,
            follow_redirects: true,
        }
    }
}

/// A request item with the folders above it.
struct Flat<'a> {
    item: &'a Item,
    spec: &'a RequestSpec,
    ancestors: Vec<&'a Item>,
}

fn flatten<'a>(items: &'a [Item], ancestors: &mut Vec<&'a Item>, out: &mut Vec<Flat<'a>>) {
    for item in items {
        if let Some(children) = &item.item {
            ancestors.push(item);
            flatten(children, ancestors, out);
            ancestors.pop();
        } else if let Some(spec) = &item.request {
            out.push(Flat {
                item,
                spec,
                ancestors: ancestors.clone(),
            });
        }
    }
}

/// The first item, breadth-first, named or identified `wanted` (as
/// postman-runtime's `multipleIdOrName` lookup finds an entry point).
fn find<'a>(items: &'a [Item], wanted: &str) -> Option<&'a Item> {
    let mut level: Vec<&Item> = items.iter().collect();
    while !level.is_empty() {
        if let Some(found) = level
            .iter()
            .find(|item| item.name == wanted || item.id.as_deref() == Some(wanted))
        {
            return Some(found);
        }
        level = level.iter().flat_map(|item| item.item.iter().flatten()).collect();
    }
    None
}

/// The `--folder` entries no item answers to.
pub fn missing_folders(collection: &Collection, folders: &[String]) -> Vec<String> {
    folders
        .iter()
        .filter(|f| find(&collection.item, f).is_none())
        .cloned()
        .collect()
}

fn select<'a>(items: &'a [Item], folders: &[String]) -> Vec<Flat<'a>> {
    let mut all = Vec::new();
    flatten(items, &mut Vec::new(), &mut all);
    if folders.is_empty() {
        return all;
    }
    let chosen: Vec<&Item> = folders.iter().filter_map(|f| find(items, f)).collect();
    let matches = |item: &Item| chosen.iter().any(|c| std::ptr::eq(*c, item));
    all.into_iter()
        .filter(|flat| matches(flat.item) || flat.ancestors.iter().any(|a| matches(a)))
        .collect()
}

fn scripts<'a>(events: &'a [Event], listen: &str) -> impl Iterator<Item = String> + 'a {
    let listen = listen.to_owned();
    events
        .iter()
        .filter(move |e| e.listen == listen && !e.disabled)
        .filter_map(|e| e.script.as_ref().map(|s| s.source()))
        .filter(|s| !s.trim().is_empty())
}

/// State carried through a run.
struct State {
    scopes: Scopes,
}

impl State {
    fn layers(&self) -> [Scope; 5] {
        let s = &self.scopes;
        [
            Scope::from_pairs(s.local.clone()),
            Scope::from_pairs(s.data.clone()),
            Scope::from_pairs(s.environment.clone()),
            Scope::from_pairs(s.collection.clone()),
            Scope::from_pairs(s.globals.clone()),
        ]
    }
}

/// Runs `collection` and returns what happened. Only a script engine that
/// cannot start is an error; failing requests, assertions and scripts are in the summary.
pub async fn run(
    collection: &Collection,
    options: &Options,
    transport: &dyn Transport,
) -> Result<Summary, SandboxError> {
    let sandbox = Sandbox::new(options.limits)?;
    Ok(run_in(&sandbox, collection, options, transport).await)
}

/// [`run`] on a sandbox already booted (booting postman-sandbox is most of a
/// short run's cost). What scripts leave in the sandbox's shared scope
/// persists into the next run in it, as it does between the items of one
/// newman run: use one sandbox per run where runs must not see each other.
pub async fn run_in(
    sandbox: &Sandbox,
    collection: &Collection,
    options: &Options,
    transport: &dyn Transport,
) -> Summary {
    let items = select(&collection.item, &options.folders);
    let iterations = options.iterations.unwrap_or(options.data.len().max(1));
    let mut summary = Summary::new(&collection.info.name, iterations);
    let mut state = State {
        scopes: Scopes {
            local: Vec::new(),
            data: Vec::new(),
            environment: options.environment.entries().to_vec(),
            collection: scope_of(&collection.variable).entries().to_vec(),
            globals: options.globals.entries().to_vec(),
        },
    };
    let started = Instant::now();
    // The run's own default (`--ignore-redirects`) under whatever the collection says.
    let defaults = ProtocolProfileBehavior {
        follow_redirects: Some(options.follow_redirects),
        ..ProtocolProfileBehavior::default()
    };
    let collection_behavior = collection
        .protocol_profile_behavior
        .clone()
        .unwrap_or_default()
        .over(&defaults);
    'iterations: for iteration in 0..iterations {
        state.scopes.data = options
            .data
            .get(iteration.min(options.data.len().saturating_sub(1)))
            .map(|row| row.entries().to_vec())
            .unwrap_or_default();
        let mut index = 0;
        while index < items.len() {
            // postman-runtime waits before every item, the first included;
            // the run's timeout runs through the wait.
            if !options.delay.is_zero() {
                tokio::time::sleep(options.delay).await;
            }
            if options.timeout.is_some_and(|t| started.elapsed() > t) {
                summary.fail_run(format!(
                    "callback timed out after {} ms",
                    options.timeout.unwrap_or_default().as_millis()
                ));
                break 'iterations;
            }
            let flat = &items[index];
            let outcome = run_item(
                collection,
                flat,
                sandbox,
                &mut state,
                options,
                transport,
                iteration,
                iterations,
                &collection_behavior,
            )
            .await;
            let failed = outcome.execution.as_ref().is_some_and(|e| !e.failures.is_empty());
            // `--bail folder` (postman-runtime's abortOnError): a request or
            // script error ends the run as an error.
            let error = outcome
                .execution
                .as_ref()
                .and_then(|e| e.failures.iter().find(|f| f.at != "assertion"))
                .map(|f| f.message.clone());
            if let (true, Some(error)) = (options.abort_on_error, error) {
                if let Some(execution) = outcome.execution {
                    summary.record(execution);
                }
                summary.aborted = Some(error);
                break 'iterations;
            }
            if let Some(execution) = outcome.execution {
                summary.record(execution);
            }
            if failed && options.bail {
                summary.bailed = true;
                break 'iterations;
            }
            index = match outcome.next {
                None => index + 1,
                Some(None) => break,
                Some(Some(target)) => match items
                    .iter()
                    .position(|f| f.item.name == target || f.item.id.as_deref() == Some(target.as_str()))
                {
                    Some(position) => position,
                    None => break,
                },
            };
        }
    }
    summary.finish(started.elapsed());
    let scopes = state.scopes;
    summary.keep_scopes(Scope::from_pairs(scopes.environment), Scope::from_pairs(scopes.globals));
    summary
}

struct ItemOutcome {
    /// `None` when the request was skipped.
    execution: Option<Execution>,
    /// `None`: go on; `Some(None)`: stop this iteration; `Some(Some(name))`: jump.
    next: Option<Option<String>>,
}

#[allow(clippy::too_many_arguments)]
async fn run_item(
    collection: &Collection,
    flat: &Flat<'_>,
    sandbox: &Sandbox,
    state: &mut State,
    options: &Options,
    transport: &dyn Transport,
    iteration: usize,
    iterations: usize,
    collection_behavior: &ProtocolProfileBehavior,
) -> ItemOutcome {
    let id = flat.item.id.clone().unwrap_or_else(|| flat.item.name.clone());
    let name = flat.item.name.clone();
    let mut execution = Execution::new(&id, &name, iteration);
    let mut next = None;
    let info = |event: &str| ScriptInfo {
        event_name: event.to_owned(),
        iteration,
        iteration_count: iterations,
        request_name: name.clone(),
        request_id: id.clone(),
    };
    let chain = |listen: &str| -> Vec<String> {
        let mut all: Vec<String> = scripts(&collection.event, listen).collect();
        for folder in &flat.ancestors {
            all.extend(scripts(&folder.event, listen));
        }
        all.extend(scripts(&flat.item.event, listen));
        all
    };

    let (request, skip) = run_event(
        (sandbox, transport, options),
        state,
        (&mut execution, &mut next),
        chain("prerequest"),
        script_request(flat.spec, &id, &name),
        None,
        info("prerequest"),
    )
    .await;
    if skip {
        // newman lists no execution for a skipped request.
        return ItemOutcome { execution: None, next };
    }

    let original = match flat.spec {
        RequestSpec::Full(r) => Some(r.as_ref()),
        RequestSpec::Url(_) => None,
    };
    let auth = effective_auth(collection, flat);
    let behavior = flat
        .ancestors
        .iter()
        .rev()
        .filter_map(|a| a.protocol_profile_behavior.as_ref())
        .fold(
            flat.item.protocol_profile_behavior.clone().unwrap_or_default(),
            |acc, outer| acc.over(outer),
        )
        .over(collection_behavior);
    let layers = state.layers();
    let refs: Vec<&Scope> = layers.iter().collect();
    let prepared = match prepare(&request, original, auth, &refs, options.files()) {
        Ok(prepared) => prepared,
        Err(err) => {
            execution.request_error(err.to_string());
            return ItemOutcome {
                execution: Some(execution),
                next,
            };
        }
    };
    execution.request(&prepared);
    let span = request_span(&name, &prepared);
    let mut result = transport
        .send(&prepared, &behavior, options.timeout_request)
        .instrument(span.clone())
        .await;
    let retry = match (&result, auth) {
        (Ok(first), Some(auth)) => {
            let resolve = |s: &str| crate::variables::resolve(s, &refs);
            crate::auth::digest_retry(&crate::auth::Params::new(auth, &resolve), &prepared, first)
        }
        _ => None,
    };
    if let Some(retry) = retry {
        result = transport
            .send(&retry, &behavior, options.timeout_request)
            .instrument(span.clone())
            .await;
    }
    match &result {
        Ok(response) => {
            span.record("http.response.status_code", response.code);
        }
        Err(err) => {
            span.record("otel.status_code", "error");
            span.in_scope(|| tracing::error!(error = %err, request = %name, "request failed"));
        }
    }
    drop(span);
    // As in newman, test scripts run after a request error too, with an empty `pm.response`.
    let response = match result {
        Ok(response) => {
            execution.response(&response);
            Some(response)
        }
        Err(err) => {
            execution.request_error(err.to_string());
            None
        }
    };
    let sent = ScriptRequest {
        id: Some(id.clone()),
        name: Some(name.clone()),
        method: prepared.method.clone(),
        url: prepared.url.clone(),
        headers: prepared
            .headers
            .iter()
            .map(|(key, value)| crate::sandbox::Header {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        body: request.body.clone(),
    };
    run_event(
        (sandbox, transport, options),
        state,
        (&mut execution, &mut next),
        chain("test"),
        sent,
        response,
        info("test"),
    )
    .await;
    ItemOutcome {
        execution: Some(execution),
        next,
    }
}

/// Auth for a request: its own, else the nearest folder's, else the collection's.
fn effective_auth<'a>(collection: &'a Collection, flat: &Flat<'a>) -> Option<&'a Auth> {
    let own = match flat.spec {
        RequestSpec::Full(r) => r.auth.as_ref(),
        RequestSpec::Url(_) => None,
    };
    own.or_else(|| flat.ancestors.iter().rev().find_map(|a| a.auth.as_ref()))
        .or(collection.auth.as_ref())
        .filter(|a| a.kind != "noauth" && a.kind != "inherit")
}

/// Runs one event's scripts (collection → folders → request) in order, each
/// seeing the request as the previous one left it; records them in the
/// execution and any `setNextRequest` in `next`. Returns the request as the
/// last script left it and whether one asked to skip it.
async fn run_event(
    (sandbox, transport, options): (&Sandbox, &dyn Transport, &Options),
    state: &mut State,
    (execution, next): (&mut Execution, &mut Option<Option<String>>),
    codes: Vec<String>,
    mut request: ScriptRequest,
    response: Option<crate::sandbox::ScriptResponse>,
    info: ScriptInfo,
) -> (ScriptRequest, bool) {
    let mut skip = false;
    for code in codes {
        let out = run_script(
            sandbox,
            transport,
            state,
            options,
            execution,
            code,
            request.clone(),
            response.clone(),
            info.clone(),
        )
        .await;
        request = out.request.clone();
        skip |= out.skip_request;
        if let Some(n) = &out.next_request {
            *next = Some(n.value.clone());
        }
        execution.script(&info.event_name, out);
    }
    (request, skip)
}

#[allow(clippy::too_many_arguments)]
async fn run_script(
    sandbox: &Sandbox,
    transport: &dyn Transport,
    state: &mut State,
    options: &Options,
    execution: &mut Execution,
    code: String,
    request: ScriptRequest,
    response: Option<crate::sandbox::ScriptResponse>,
    info: ScriptInfo,
) -> ScriptOutput {
    let cookies = if response.is_some() {
        transport
            .cookies(&request.url)
            .into_iter()
            .map(|(key, value)| crate::sandbox::Header { key, value })
            .collect()
    } else {
        Vec::new()
    };
    let input = ScriptInput {
        cookies,
        code,
        scopes: state.scopes.clone(),
        environment_name: options.environment_name.clone(),
        request,
        response,
        info,
    };
    let mut failure: Option<ScriptError> = None;
    let mut progress = sandbox.start(&input);
    loop {
        progress = match progress {
            Ok(Progress::Done) => break,
            Err(err) => {
                failure = Some(err);
                break;
            }
            Ok(Progress::Timer(due)) => {
                tokio::time::sleep(due).await;
                sandbox.deliver(&[])
            }
            Ok(Progress::Requests(calls)) => {
                let mut deliveries = Vec::new();
                for call in calls {
                    let sent = send_from_script(&call.request, transport, options).await;
                    execution.script_request(sent.as_ref().map(|_| ()).map_err(Clone::clone));
                    deliveries.push(match sent {
                        Ok(response) => Delivery {
                            id: call.id,
                            response: Some(response),
                            error: None,
                        },
                        Err(error) => Delivery {
                            id: call.id,
                            response: None,
                            error: Some(error),
                        },
                    });
                }
                sandbox.deliver(&deliveries)
            }
        };
    }
    let out = sandbox.finish(&input, failure);
    state.scopes = out.scopes.clone();
    out
}

/// A `pm.sendRequest` request, sent through the same transport.
async fn send_from_script(
    spec: &serde_json::Value,
    transport: &dyn Transport,
    options: &Options,
) -> Result<crate::sandbox::ScriptResponse, String> {
    let mut item: crate::collection::Request = serde_json::from_value(spec.clone()).map_err(|e| e.to_string())?;
    if item.method.is_none() {
        item.method = Some(String::from("GET"));
    }
    let request = script_request(&RequestSpec::Full(Box::new(item.clone())), "", "");
    let prepared = prepare(&request, Some(&item), None, &[], options.files()).map_err(|e| e.to_string())?;
    transport
        .send(&prepared, &ProtocolProfileBehavior::default(), options.timeout_request)
        .await
        .map_err(|e| e.to_string())
}

/// How many requests `folders` selects in `collection` (0: the names match nothing).
pub fn count(collection: &Collection, folders: &[String]) -> usize {
    select(&collection.item, folders).len()
}

/// A request's span (an X-Ray subsegment when the process exports traces):
/// named after the item, with the method and URL; the caller records the status.
fn request_span(name: &str, prepared: &crate::request::Prepared) -> tracing::Span {
    // X-Ray drops a subsegment whose name has other characters, or whose URL is over 250.
    let segment_name: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() || "_.:/%&#=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let url = (prepared.url.len() <= 250).then_some(prepared.url.as_str());
    tracing::info_span!(
        "request",
        otel.name = segment_name.as_str(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = prepared.method.as_str(),
        url.full = url,
        http.response.status_code = tracing::field::Empty,
    )
}
