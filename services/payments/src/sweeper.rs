//! Finishes payments a request could not: the scheduled function
//! (`payments-sweeper`, every minute on AWS; every few seconds under `cargo
//! xtask dev`) reads the sparse `open` index, advances every payment whose
//! next call is due within its own invocation's time, and reports how many
//! are still open and how many have been open longer than
//! `Config::stuck_after_seconds` (`PaymentsStuck`, the metric a deployment
//! rolls back on).

use std::sync::Arc;

use serde::Serialize;
use shared::http::Deadline;
use shared::metrics::{InvocationMetrics, MetricsConfig, Unit};
use time::OffsetDateTime;

use crate::AppState;
use crate::domain::Status;
use crate::store::{Open, SWEEP_SHARDS, StoreError};

/// How many payments one sweep advances at once.
const CONCURRENCY: usize = 8;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Payments not final when the sweep started.
    pub open: usize,
    /// Of those, how many were due and advanced.
    pub advanced: usize,
    /// Advanced to `completed`.
    pub completed: usize,
    /// Advanced to `failed`.
    pub failed: usize,
    /// Not final after `stuck_after_seconds`.
    pub stuck: usize,
    /// Payments the sweep could not read or write (DynamoDB errors).
    pub errors: usize,
}

/// One sweep, within `deadline`.
pub async fn sweep(state: &AppState, deadline: Deadline, metrics: &MetricsConfig) -> Result<Sweep, StoreError> {
    let now = OffsetDateTime::now_utc();
    let mut open: Vec<Open> = Vec::new();
    for shard in 0..SWEEP_SHARDS {
        open.extend(state.store.open(shard).await?);
    }
    let stuck_after = time::Duration::seconds(i64::try_from(state.config.stuck_after_seconds).unwrap_or(i64::MAX));
    let mut report = Sweep {
        open: open.len(),
        stuck: open.iter().filter(|p| now - p.created_at >= stuck_after).count(),
        ..Sweep::default()
    };
    let due: Vec<Open> = open.into_iter().filter(|p| p.due_at <= now).collect();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for payment in due {
        let (state, permits) = (state.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let correlation = format!("sweep-{}", payment.id);
            // The index lags the table: read the payment itself, and leave
            // one that another runner finished since.
            let current = state.store.get(payment.id).await?;
            if current.payment.status.is_final() {
                return Ok(None);
            }
            state
                .advance(current, deadline, &correlation)
                .await
                .map(|v| Some(v.payment.status))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(status))) => {
                report.advanced += 1;
                match status {
                    Status::Completed => report.completed += 1,
                    Status::Failed => report.failed += 1,
                    Status::Pending | Status::Cancelling => {}
                }
            }
            Ok(Err(err)) => {
                report.errors += 1;
                tracing::warn!(error = %err, "sweep could not advance a payment");
            }
            Err(err) => {
                report.errors += 1;
                tracing::error!(error = %err, "sweep task failed");
            }
        }
    }
    let emf = InvocationMetrics::default();
    emf.add("PaymentsSwept", Unit::Count, report.advanced as f64);
    emf.add("PaymentsOpen", Unit::Count, report.open as f64);
    emf.add("PaymentsStuck", Unit::Count, report.stuck as f64);
    emf.add("PaymentsCompleted", Unit::Count, report.completed as f64);
    emf.add("PaymentsFailed", Unit::Count, report.failed as f64);
    emf.flush(metrics);
    tracing::info!(?report, "sweep done");
    Ok(report)
}
