//! A fault-injecting HTTP proxy: put it in front of a service or of the
//! local AWS endpoint, point the caller at it (a service's `CONFIG_<X>_URL`,
//! or `AWS_ENDPOINT_URL_DYNAMODB`), and switch faults on and off while the
//! caller runs. Nothing in the caller knows: the faults are what it would
//! meet in AWS — a dependency that stalls, answers 5xx, is gone, or a
//! DynamoDB table that throttles (`ProvisionedThroughputExceededException`,
//! in DynamoDB's JSON 1.0 error shape, which the SDK retries as throttling).
//!
//! Requests that no rule picks are forwarded unchanged (method, path, query,
//! headers including `Host` and the SigV4 `Authorization`, body), and so is
//! the answer. A forwarded call runs to its end even when the caller has
//! stopped waiting (a stalled call lands late, as on Lambda). When the
//! upstream cannot be reached the proxy answers 502, as a gateway in front
//! of a dead backend does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::RwLock;

use crate::Error;

/// What a rule does to the requests it picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then forward (a slow dependency).
    Stall(Duration),
    /// Answer this status without forwarding (a dependency failing fast).
    Status(u16),
    /// Answer DynamoDB's throttling error without forwarding.
    Throttle,
}

/// Which requests a rule may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Every request.
    Any,
    /// Requests whose path starts with this.
    PathPrefix(String),
    /// AWS JSON requests whose `X-Amz-Target` starts with this (e.g. `DynamoDB_20120810.TransactWriteItems`).
    Target(String),
}

/// A fault for a share of the matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The requests it applies to.
    pub only: Match,
    /// What it does.
    pub fault: Fault,
    /// Of the matching requests, how many in a hundred it picks (spread
    /// evenly: 30 picks 3 of every 10, in a fixed pattern, so a run repeats).
    pub percent: u8,
}

impl Rule {
    /// The fault for every request.
    pub fn always(fault: Fault) -> Self {
        Self {
            only: Match::Any,
            fault,
            percent: 100,
        }
    }

    fn matches(&self, path: &str, headers: &HeaderMap) -> bool {
        match &self.only {
            Match::Any => true,
            Match::PathPrefix(prefix) => path.starts_with(prefix.as_str()),
            Match::Target(prefix) => headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with(prefix.as_str())),
        }
    }
}

struct Shared {
    upstream: RwLock<String>,
    rules: RwLock<Vec<Rule>>,
    seen: AtomicU64,
    injected: AtomicU64,
    http: reqwest::Client,
}

/// A running proxy on 127.0.0.1; stops when dropped.
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:port`) on a free port.
    pub async fn start(upstream: &str) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            upstream: RwLock::new(upstream.trim_end_matches('/').to_owned()),
            rules: RwLock::new(Vec::new()),
            seen: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .map_err(|e| Error::Process(format!("proxy client: {e}")))?,
        });
        let app = axum::Router::new().fallback(proxy).with_state(shared.clone());
        let (addr, server) = crate::serve_router(app).await?;
        Ok(Self {
            url: format!("http://{addr}"),
            shared,
            server,
        })
    }

    /// The proxy's base URL, for the caller.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the rules; the first that matches and picks a request applies.
    pub async fn set(&self, rules: Vec<Rule>) {
        *self.shared.rules.write().await = rules;
    }

    /// Removes every rule: everything is forwarded again.
    pub async fn clear(&self) {
        self.set(Vec::new()).await;
    }

    /// Points the proxy at a new upstream (a restarted process on another port).
    pub async fn set_upstream(&self, upstream: &str) {
        *self.shared.upstream.write().await = upstream.trim_end_matches('/').to_owned();
    }

    /// How many requests a rule has applied to so far.
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Whether the `n`-th matching request (from 0) is picked at `percent`.
fn picks(n: u64, percent: u8) -> bool {
    let p = u64::from(percent.min(100));
    (n + 1) * p / 100 > n * p / 100
}

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#;

async fn proxy(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let n = shared.seen.fetch_add(1, Ordering::Relaxed);
    let fault = shared
        .rules
        .read()
        .await
        .iter()
        .find(|rule| rule.matches(parts.uri.path(), &parts.headers) && picks(n, rule.percent))
        .map(|rule| rule.fault.clone());
    if fault.is_some() {
        shared.injected.fetch_add(1, Ordering::Relaxed);
    }
    let stall = match fault {
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (status, "fault injected by local_aws::faults").into_response();
        }
        Some(Fault::Throttle) => {
            return (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.0")],
                THROTTLED,
            )
                .into_response();
        }
        Some(Fault::Stall(delay)) => delay,
        None => Duration::ZERO,
    };
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", shared.upstream.read().await);
    let mut request = shared.http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        request = request.header(name, value);
    }
    // The forwarded call runs to its end even when the caller stops waiting,
    // as a Lambda invocation behind API Gateway does: a stalled call lands late.
    let forwarded = tokio::spawn(async move {
        tokio::time::sleep(stall).await;
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, bytes))
    });
    let (status, headers, bytes) = match forwarded.await {
        Ok(Ok(answer)) => answer,
        _ => return (StatusCode::BAD_GATEWAY, "upstream unreachable").into_response(),
    };
    let mut answer = Response::new(Body::from(bytes));
    *answer.status_mut() = status;
    for (name, value) in &headers {
        if name != "transfer-encoding" && name != "connection" {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::picks;

    #[test]
    fn percentages_pick_evenly() {
        for percent in [0u8, 1, 10, 30, 50, 99, 100] {
            let picked = (0..1000).filter(|n| picks(*n, percent)).count();
            assert_eq!(picked, usize::from(percent) * 10, "{percent}%");
        }
        let pattern: Vec<bool> = (0..10).map(|n| picks(n, 30)).collect();
        assert_eq!(pattern.iter().filter(|p| **p).count(), 3);
    }
}
