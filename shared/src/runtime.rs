//! One entry point for both places a service runs: on Lambda, through the
//! Runtime API (`lambda_http`), when `AWS_LAMBDA_RUNTIME_API` is set; else as
//! a plain HTTP server on `BIND_ADDR` (default `127.0.0.1:0`, a port the OS
//! picks and the log line `listening` reports).
//!
//! A scheduled function ([`start_scheduled`]) runs the same two ways: on
//! Lambda, once per event its schedule (EventBridge) sends; locally, once
//! every `SCHEDULE_EVERY_MS`, as the schedule would invoke it. Either way a
//! run has the function's timeout, not the interval, to finish in.

use std::net::SocketAddr;

use axum::Router;
use axum::http::Uri;
use http_body_util::BodyExt;
use lambda_http::request::RequestContext;
use tower::ServiceExt;
use tower::util::BoxCloneService;

use crate::env;
use crate::http::Deadline;

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Lambda runtime loop failed.
    #[error("lambda runtime: {0}")]
    Lambda(lambda_http::Error),
    /// `BIND_ADDR` is not a socket address.
    #[error("{var}={value:?} is not an address like 127.0.0.1:8080")]
    BadAddress {
        /// The variable read.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The local listener failed.
    #[error("local server: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `APP_NAME` or `STAGE` is missing.
    #[error(transparent)]
    Deployment(#[from] crate::naming::MissingVar),
    /// The service's own init failed.
    #[error("init: {0}")]
    Init(Box<dyn std::error::Error + Send + Sync>),
    /// Serving failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A service's whole `main`: telemetry, the SDK configuration, the service's
/// own `init` (which returns its router and how long it waited on AWS), one
/// `initialized` log line with `sdk_config_ms`, `aws_wait_ms` and `init_ms`
/// (what `cargo xtask bench cold-start` reads), then [`run`].
pub async fn start<F, Fut, E>(service: &crate::ServiceInfo, init: F) -> Result<(), StartError>
where
    F: FnOnce(aws_config::SdkConfig, crate::naming::Deployment) -> Fut,
    Fut: Future<Output = Result<(Router, std::time::Duration), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let router = initialize(service, init).await?;
    run(router).await?;
    Ok(())
}

/// Telemetry, the SDK configuration and `init`, timed and logged.
async fn initialize<T, F, Fut, E>(service: &crate::ServiceInfo, init: F) -> Result<T, StartError>
where
    F: FnOnce(aws_config::SdkConfig, crate::naming::Deployment) -> Fut,
    Fut: Future<Output = Result<(T, std::time::Duration), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    crate::telemetry::init(service);
    let started = std::time::Instant::now();
    let sdk = crate::aws::sdk_config().await;
    let sdk_config_ms = started.elapsed().as_secs_f64() * 1000.0;
    let deployment = crate::naming::Deployment::from_env()?;
    let (value, aws_wait) = init(sdk, deployment).await.map_err(|e| StartError::Init(e.into()))?;
    tracing::info!(
        sdk_config_ms,
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        aws_wait_ms = aws_wait.as_secs_f64() * 1000.0,
        "initialized"
    );
    Ok(value)
}

/// A scheduled function's whole `main`: as [`start`], but `init` returns a
/// job, run once per scheduled event within the invocation's [`Deadline`].
/// On Lambda the job's result is the invocation's response (its error a
/// function error, which the schedule's retry policy sees); locally it runs
/// every `SCHEDULE_EVERY_MS` (default 60000), its result logged, until
/// Ctrl-C, each run within the function's timeout
/// (`LOCAL_INVOCATION_TIMEOUT_MS`, as a Lambda invocation's deadline) and
/// the next one started after it ends.
pub async fn start_scheduled<F, Fut, E, J, JFut, T, JE>(service: &crate::ServiceInfo, init: F) -> Result<(), StartError>
where
    F: FnOnce(aws_config::SdkConfig, crate::naming::Deployment) -> Fut,
    Fut: Future<Output = Result<(J, std::time::Duration), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    J: Fn(Deadline) -> JFut + Clone + Send + 'static,
    JFut: Future<Output = Result<T, JE>> + Send,
    T: serde::Serialize + std::fmt::Debug,
    JE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let job = initialize(service, init).await?;
    if env::var(env::AWS_LAMBDA_RUNTIME_API).is_some() {
        let handler = lambda_http::lambda_runtime::service_fn(
            move |event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| {
                let job = job.clone();
                async move { within(Deadline::at_epoch_millis(event.context.deadline), job).await }
            },
        );
        return lambda_http::lambda_runtime::run(handler)
            .await
            .map_err(|e| StartError::Run(RunError::Lambda(e)));
    }
    let every = env::var(env::SCHEDULE_EVERY_MS)
        .and_then(|v| v.parse().ok())
        .map_or(std::time::Duration::from_secs(60), std::time::Duration::from_millis);
    tracing::info!(every_ms = every.as_millis() as u64, "scheduled locally");
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            signal = tokio::signal::ctrl_c() => {
                if signal.is_ok() {
                    return Ok(());
                }
                std::future::pending::<()>().await;
            }
        }
        match within(Deadline::after(crate::http::local_invocation_timeout()), job.clone()).await {
            Ok(result) => tracing::debug!(?result, "scheduled run done"),
            Err(err) => tracing::error!(error = %err, "scheduled run failed"),
        }
    }
}

/// A scheduled run that ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("the scheduled run was stopped at its deadline; what it finished is kept, the next run carries on")]
pub struct OutOfTime;

/// Runs `job` and stops it just before `deadline`, whatever it waits on:
/// no invocation outlives its deadline.
async fn within<J, JFut, T, JE>(deadline: Deadline, job: J) -> Result<T, Box<dyn std::error::Error + Send + Sync>>
where
    J: Fn(Deadline) -> JFut,
    JFut: Future<Output = Result<T, JE>>,
    JE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let budget = deadline.remaining().saturating_sub(crate::http::DEADLINE_MARGIN);
    match tokio::time::timeout(budget, job(deadline)).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(Box::new(OutOfTime)),
    }
}

/// Serves `router` on Lambda or on a local port, until the runtime ends or Ctrl-C.
pub async fn run(router: Router) -> Result<(), RunError> {
    if env::var(env::AWS_LAMBDA_RUNTIME_API).is_some() {
        return lambda_http::run_concurrent(on_lambda(router))
            .await
            .map_err(RunError::Lambda);
    }
    let value = env::var(env::BIND_ADDR).unwrap_or_else(|| String::from("127.0.0.1:0"));
    let addr: SocketAddr = value.parse().map_err(|_| RunError::BadAddress {
        var: env::BIND_ADDR,
        value: value.clone(),
    })?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let address = listener.local_addr()?;
    tracing::info!(address = %format!("http://{address}"), "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            // Without a signal handler there is nothing to wait for but the process's end.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}

/// The router as Lambda runs it. API Gateway puts the stage in front of the
/// path (`/prod/accounts/…`); it is taken off before routing, so one router
/// answers the same on Lambda and on a local port. Bodies are collected into
/// `lambda_http::Body` (text when UTF-8 and not content-encoded, else binary).
pub fn on_lambda(
    router: Router,
) -> BoxCloneService<lambda_http::Request, http::Response<lambda_http::Body>, lambda_http::Error> {
    let service = ServiceExt::<lambda_http::Request>::map_request(router, strip_stage::<lambda_http::Body>).map_future(
        |response| async move {
            let response: http::Response<axum::body::Body> = match response.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let encoded = parts.headers.contains_key(http::header::CONTENT_ENCODING);
            let body = match std::str::from_utf8(&bytes) {
                Ok(text) if !encoded => lambda_http::Body::Text(text.to_owned()),
                _ => lambda_http::Body::Binary(bytes.to_vec()),
            };
            Ok::<_, lambda_http::Error>(http::Response::from_parts(parts, body))
        },
    );
    BoxCloneService::new(service)
}

fn strip_stage<B>(mut req: http::Request<B>) -> http::Request<B> {
    let stage = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default") else {
        return req;
    };
    let prefix = format!("/{stage}");
    let path = req.uri().path();
    let rest = match path.strip_prefix(&prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return req,
    };
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// A scheduled run whose work hangs (a stalled dependency) is stopped
    /// at its deadline, not when the work ends.
    #[tokio::test]
    async fn a_scheduled_run_never_outlives_its_deadline() {
        let started = Instant::now();
        let hung = |_: Deadline| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, std::io::Error>(())
        };
        let result = within(Deadline::after(Duration::from_millis(300)), hung).await;
        assert!(result.unwrap_err().is::<OutOfTime>());
        assert!(started.elapsed() < Duration::from_secs(5));
        let quick = |_: Deadline| async { Ok::<_, std::io::Error>(7) };
        assert_eq!(within(Deadline::after(Duration::from_secs(5)), quick).await.unwrap(), 7);
    }
}
