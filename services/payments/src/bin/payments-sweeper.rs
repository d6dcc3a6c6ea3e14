//! Wiring only: the sweeper as a scheduled function (EventBridge on AWS,
//! `SCHEDULE_EVERY_MS` locally) over payments' own init.

use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), shared::runtime::StartError> {
    shared::runtime::start_scheduled(&payments::SWEEPER, |sdk, deployment| async move {
        let identity = shared::auth::IdentitySettings::from_env()?;
        let (state, aws_wait) = payments::init(&sdk, &deployment, identity).await?;
        // Its metrics carry the service's name, which the registry's alarms watch.
        let metrics = Arc::new(shared::metrics::MetricsConfig::from_env(
            payments::SERVICE.name,
            Arc::new(shared::telemetry::Stdout),
        ));
        let job = move |deadline| {
            let (state, metrics) = (state.clone(), metrics.clone());
            async move { payments::sweeper::sweep(&state, deadline, &metrics).await }
        };
        Ok::<_, anyhow::Error>((job, aws_wait))
    })
    .await
}
