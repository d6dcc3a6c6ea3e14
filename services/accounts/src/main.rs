//! Wiring only: telemetry, config and secret at init, then serve.

use shared::naming::Deployment;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init(&accounts::SERVICE);
    let started = std::time::Instant::now();
    let sdk = shared::aws::sdk_config().await;
    let sdk_config_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (state, aws_wait) = accounts::init(&sdk, &Deployment::from_env()?).await?;
    tracing::info!(
        sdk_config_ms,
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        aws_wait_ms = aws_wait.as_secs_f64() * 1000.0,
        "initialized"
    );
    shared::runtime::run(accounts::app(state)).await?;
    Ok(())
}
