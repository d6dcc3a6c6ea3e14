//! A Lambda Invoke endpoint for one machine: `POST
//! /2015-03-31/functions/{FunctionName}/invocations` in the REST-JSON wire
//! format `aws-sdk-lambda` speaks, in front of real function binaries, each
//! published version running under its own [`RuntimeApi`]. `Qualifier` picks
//! a version or an alias; without one, the latest version answers. A function
//! error comes back as Lambda sends it: status 200, `X-Amz-Function-Error:
//! Unhandled` and the error document as the payload. An `X-Amzn-Trace-Id`
//! on the request is handed to the function as its trace header (Lambda
//! would insert its facade segment between the caller and the function).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::process::Child;
use tokio::sync::Mutex;

use crate::Error;
use crate::runtime_api::{Outcome, RuntimeApi};

/// How long a published version may take to reach its first `invocation/next`.
const INIT_LIMIT: Duration = Duration::from_secs(30);

struct Version {
    api: RuntimeApi,
    _process: Child,
}

#[derive(Default)]
struct Functions {
    /// function → version → running binary.
    versions: HashMap<String, HashMap<String, Arc<Version>>>,
    /// function → alias → version.
    aliases: HashMap<String, HashMap<String, String>>,
    /// function → versions in publish order.
    order: HashMap<String, Vec<String>>,
    /// function → the `X-Amzn-Trace-Id` of each invoke, in order.
    traces: HashMap<String, Vec<Option<String>>>,
}

/// A running Invoke endpoint on 127.0.0.1.
pub struct LambdaInvoke {
    endpoint: String,
    functions: Arc<Mutex<Functions>>,
    server: tokio::task::JoinHandle<()>,
}

impl LambdaInvoke {
    /// Starts the endpoint on a free loopback port.
    pub async fn start() -> Result<Self, Error> {
        let functions = Arc::new(Mutex::new(Functions::default()));
        let app = Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
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
        let process = api.spawn(binary, function, version, env)?;
        api.next_poll(INIT_LIMIT).await?;
        let mut functions = self.functions.lock().await;
        functions
            .versions
            .entry(function.to_owned())
            .or_default()
            .insert(version.to_owned(), Arc::new(Version { api, _process: process }));
        functions
            .order
            .entry(function.to_owned())
            .or_default()
            .push(version.to_owned());
        Ok(())
    }

    /// The `X-Amzn-Trace-Id` header of every invoke of `function` so far, in order.
    pub async fn trace_headers(&self, function: &str) -> Vec<Option<String>> {
        let functions = self.functions.lock().await;
        functions.traces.get(function).cloned().unwrap_or_default()
    }

    /// Points `alias` of `function` at `version`.
    pub async fn alias(&self, function: &str, alias: &str, version: &str) {
        let mut functions = self.functions.lock().await;
        functions
            .aliases
            .entry(function.to_owned())
            .or_default()
            .insert(alias.to_owned(), version.to_owned());
    }
}

impl Drop for LambdaInvoke {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(serde::Deserialize)]
struct InvokeQuery {
    #[serde(rename = "Qualifier")]
    qualifier: Option<String>,
}

fn not_found(message: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            ("x-amzn-errortype", "ResourceNotFoundException"),
            ("content-type", "application/json"),
        ],
        serde_json::json!({"Type": "User", "message": message}).to_string(),
    )
        .into_response()
}

/// `name`, `name:qualifier` or an ARN (`arn:aws:lambda:…:function:name[:qualifier]`).
fn split_function(function: &str) -> (String, Option<String>) {
    let tail = function.split(":function:").nth(1).unwrap_or(function);
    match tail.split_once(':') {
        Some((name, qualifier)) => (name.to_owned(), Some(qualifier.to_owned())),
        None => (tail.to_owned(), None),
    }
}

async fn invoke(
    State(functions): State<Arc<Mutex<Functions>>>,
    UrlPath(function): UrlPath<String>,
    Query(query): Query<InvokeQuery>,
    headers: axum::http::HeaderMap,
    payload: Bytes,
) -> Response {
    let trace = headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok());
    let (name, in_name) = split_function(&function);
    let qualifier = query.qualifier.or(in_name);
    let target = {
        let mut functions = functions.lock().await;
        functions
            .traces
            .entry(name.clone())
            .or_default()
            .push(trace.map(str::to_owned));
        let Some(versions) = functions.versions.get(&name) else {
            return not_found(format!("Function not found: {name}"));
        };
        let version = match qualifier.as_deref() {
            None | Some("$LATEST") => functions.order.get(&name).and_then(|o| o.last()).cloned(),
            Some(q) if versions.contains_key(q) => Some(q.to_owned()),
            Some(q) => functions.aliases.get(&name).and_then(|a| a.get(q)).cloned(),
        };
        match version.and_then(|v| versions.get(&v).map(|running| (v, running.clone()))) {
            Some(found) => found,
            None => return not_found(format!("Function not found: {name}:{}", qualifier.unwrap_or_default())),
        }
    };
    let (version, running) = target;
    match running.api.invoke_traced(payload, trace, Duration::from_secs(30)).await {
        Ok(Outcome::Response(body)) => (StatusCode::OK, [("x-amz-executed-version", version)], body).into_response(),
        Ok(Outcome::Error(body)) => (
            StatusCode::OK,
            [
                ("x-amz-executed-version", version),
                ("x-amz-function-error", String::from("Unhandled")),
            ],
            body,
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-amzn-errortype", "ServiceException")],
            serde_json::json!({"message": err.to_string()}).to_string(),
        )
            .into_response(),
    }
}
