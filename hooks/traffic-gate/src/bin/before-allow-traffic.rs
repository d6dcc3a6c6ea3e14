//! The CodeDeploy `BeforeAllowTraffic` hook function.

static HOOK: shared::ServiceInfo = shared::ServiceInfo::new("before-allow-traffic", env!("CARGO_PKG_VERSION"));

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    traffic_gate::lambda::run(traffic_gate::Phase::BeforeAllowTraffic, &HOOK).await
}
