//! A minimal Lambda Runtime API (`/2018-06-01/runtime/...`), enough to run a
//! real function binary locally and time its start: it hands out queued
//! events on `invocation/next` and collects `response` and `error` posts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::Error;

/// What the function answered.
#[derive(Debug)]
pub enum Outcome {
    /// A response body.
    Response(Bytes),
    /// An error report (the runtime's `invocation/{id}/error` or `init/error`).
    Error(Bytes),
}

/// A queued invocation: request id, event, the trace header Lambda would
/// hand over, and the invocation's deadline.
type Queued = (String, Bytes, Option<String>, SystemTime);

struct Shared {
    queue: Mutex<mpsc::Receiver<Queued>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    polls: mpsc::UnboundedSender<Instant>,
    init_error: Mutex<Option<oneshot::Sender<Outcome>>>,
}

/// A running Runtime API on 127.0.0.1.
pub struct RuntimeApi {
    addr: SocketAddr,
    events: mpsc::Sender<Queued>,
    shared: Arc<Shared>,
    polls: mpsc::UnboundedReceiver<Instant>,
    init_error: Option<oneshot::Receiver<Outcome>>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Starts the API on a free loopback port.
    pub async fn start() -> Result<Self, Error> {
        let (events, queue) = mpsc::channel(16);
        let (polls_tx, polls) = mpsc::unbounded_channel();
        let (init_tx, init_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            polls: polls_tx,
            init_error: Mutex::new(Some(init_tx)),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let (addr, server) = crate::serve_router(app).await?;
        Ok(Self {
            addr,
            events,
            shared,
            polls,
            init_error: Some(init_rx),
            server,
        })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API` (`127.0.0.1:port`).
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Starts `binary` as version `version` of `function` against this API,
    /// with Lambda's own variables and `env` (which may override them); its
    /// stdout is piped to the caller (Lambda sends it to CloudWatch Logs)
    /// and it is killed when the handle is dropped.
    pub fn spawn(
        &self,
        binary: &std::path::Path,
        function: &str,
        version: &str,
        env: &[(String, String)],
    ) -> Result<tokio::process::Child, Error> {
        Ok(tokio::process::Command::new(binary)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", version)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .envs(env.iter().cloned())
            .env("AWS_LAMBDA_RUNTIME_API", self.address())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?)
    }

    /// Waits for the function's next poll of `invocation/next`, or its init error.
    pub async fn next_poll(&mut self, limit: Duration) -> Result<Instant, Error> {
        let init_error = self.init_error.as_mut();
        tokio::select! {
            poll = self.polls.recv() => poll.ok_or_else(|| Error::Moto(String::from("runtime api stopped"))),
            Ok(Outcome::Error(body) | Outcome::Response(body)) = async { match init_error { Some(rx) => rx.await, None => std::future::pending().await } } => {
                Err(Error::Moto(format!("function failed to init: {}", String::from_utf8_lossy(&body))))
            }
            () = tokio::time::sleep(limit) => Err(Error::Moto(format!("no poll of invocation/next within {limit:?}"))),
        }
    }

    /// Queues one event and waits for its outcome. The function gets an
    /// unsampled trace header, as from a function without active tracing.
    pub async fn invoke(&self, event: Bytes, limit: Duration) -> Result<Outcome, Error> {
        self.invoke_traced(event, None, limit).await
    }

    /// As [`RuntimeApi::invoke`], handing the function `trace` as
    /// `Lambda-Runtime-Trace-Id` (`Root=…;Parent=<facade segment id>;Sampled=1`
    /// on Lambda with active tracing). `limit` is also the invocation's
    /// deadline (`Lambda-Runtime-Deadline-Ms`), as a function's timeout is.
    pub async fn invoke_traced(&self, event: Bytes, trace: Option<&str>, limit: Duration) -> Result<Outcome, Error> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().await.insert(id.clone(), tx);
        self.events
            .send((id, event, trace.map(str::to_owned), SystemTime::now() + limit))
            .await
            .map_err(|_| Error::Moto(String::from("runtime api stopped")))?;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(Error::Moto(String::from("invocation dropped"))),
            Err(_) => Err(Error::Moto(format!("no response within {limit:?}"))),
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let _ = shared.polls.send(Instant::now());
    let Some((id, event, trace, deadline)) = shared.queue.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Bytes::new());
    };
    let deadline = deadline.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut headers = HeaderMap::new();
    let pairs = [
        ("lambda-runtime-aws-request-id", id),
        ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            String::from("arn:aws:lambda:us-east-1:000000000000:function:local"),
        ),
        (
            "lambda-runtime-trace-id",
            trace.unwrap_or_else(|| String::from("Root=1-00000000-000000000000000000000000;Sampled=0")),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, event)
}

async fn settle(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.pending.lock().await.remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    settle(&shared, &id, Outcome::Response(body)).await
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    settle(&shared, &id, Outcome::Error(body)).await
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if let Some(tx) = shared.init_error.lock().await.take() {
        let _ = tx.send(Outcome::Error(body));
    }
    StatusCode::ACCEPTED
}
