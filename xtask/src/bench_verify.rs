//! `cargo xtask bench verify`: what checking a bearer token costs a warm
//! function. A verifier loaded from a local issuer (`local_aws::oidc`, RS256
//! keys as Cognito's) checks one valid access token again and again (the
//! signing key cached, as after the first request); then the same token
//! goes through a whole service edge (`shared::http::service`) on a scoped
//! route and, for comparison, on a public one. Medians and p99 of each.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::routing::get;
use shared::auth::{Access, Gate, Routes, Verifier};
use tower::ServiceExt;

const SCOPE: &str = "bench/read";

pub async fn run(runs: usize) -> anyhow::Result<ExitCode> {
    let issuer = local_aws::oidc::Issuer::start().await?;
    let verifier = Arc::new(Verifier::load(issuer.settings(), reqwest::Client::new()).await);
    let token = local_aws::oidc::token("bench-customer", &[SCOPE]);
    verifier.verify(&token).await.context("the bench token verifies")?;

    let mut direct = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let customer = verifier.verify(&token).await;
        direct.push(started.elapsed());
        if customer.is_err() {
            bail!("the token stopped verifying: {customer:?}");
        }
    }
    if issuer.fetches() != 1 {
        bail!("the keys were fetched {} times, not once", issuer.fetches());
    }

    let service = shared::ServiceInfo::new("bench", env!("CARGO_PKG_VERSION"));
    let routes = Routes::new(Gate::new(verifier.clone(), &service))
        .route("/scoped", get(|| async { "ok" }), Access::Scope(SCOPE))
        .route("/open", get(|| async { "ok" }), Access::Public);
    // The bench measures the gate, not the metrics output.
    let mut metrics = shared::metrics::MetricsConfig::from_env(service.name, Arc::new(shared::telemetry::Stdout));
    metrics.enabled = false;
    let router = shared::http::service_with_metrics(&service, routes, metrics);
    let scoped = through(&router, "/scoped", Some(&token), runs).await?;
    let open = through(&router, "/open", None, runs).await?;

    println!("{runs} runs each, one core's worth of work per call (no concurrency).\n");
    println!("| what | median | p99 |");
    println!("|---|---|---|");
    row("`Verifier::verify` (RS256, key cached)", &mut direct);
    let (scoped_median, open_median) = (median(&scoped), median(&open));
    row(
        "a request through the edge, scoped route (token checked)",
        &mut scoped.clone(),
    );
    row("a request through the edge, public route (no token)", &mut open.clone());
    println!(
        "\nThe gate adds {} µs a request at the median.",
        scoped_median.saturating_sub(open_median).as_micros()
    );
    Ok(ExitCode::SUCCESS)
}

/// `runs` requests for `path` through `router`, each timed.
async fn through(router: &axum::Router, path: &str, token: Option<&str>, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut request = axum::http::Request::builder().uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(axum::body::Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        times.push(started.elapsed());
        if !response.status().is_success() {
            bail!("{path} answered {}", response.status());
        }
    }
    Ok(times)
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn row(what: &str, times: &mut [Duration]) {
    times.sort();
    let p99 = times
        .get((times.len() * 99 / 100).min(times.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    println!("| {what} | {} µs | {} µs |", median(times).as_micros(), p99.as_micros());
}
