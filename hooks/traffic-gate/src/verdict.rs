//! Reporting the verdict: `PutLifecycleEventHookExecutionStatus`, retried on
//! throttling and 5xx with backoff until the deadline. CodeDeploy invokes
//! hooks asynchronously and retries them, so a hook may run after it already
//! answered: `LifecycleEventAlreadyCompletedException` means done.

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::LifecycleEventStatus;

use crate::HookEvent;

/// How the verdict reached CodeDeploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Reported {
    /// Accepted (after this many attempts).
    Accepted {
        /// Attempts made.
        attempts: u32,
    },
    /// The hook had already been answered (an earlier invocation did it).
    AlreadyCompleted,
    /// Not accepted before the deadline, or refused.
    NotReported {
        /// The last error.
        error: String,
    },
}

/// Time kept free before the deadline for the invocation to return once
/// the last call has ended.
pub const LAST_CALL: Duration = Duration::from_millis(250);

/// Sends `passed` as `Succeeded` or `Failed` for `event`. Each attempt has
/// a time limit, `attempt_timeout` the first time and growing with each
/// retry (a stalled call is retried like a throttled one; a slow one is
/// waited for longer; the last one that fits gets all the time left); a
/// retry starts only when at least `attempt_timeout` is left before
/// [`LAST_CALL`] ahead of `deadline`, and no attempt runs past that.
pub async fn report(
    client: &aws_sdk_codedeploy::Client,
    event: &HookEvent,
    passed: bool,
    deadline: Instant,
    attempt_timeout: Duration,
) -> Reported {
    let status = if passed {
        LifecycleEventStatus::Succeeded
    } else {
        LifecycleEventStatus::Failed
    };
    let end = deadline.checked_sub(LAST_CALL).unwrap_or_else(Instant::now);
    let last_start = end.checked_sub(attempt_timeout).unwrap_or_else(Instant::now);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let limit = crate::attempt_limit(attempt_timeout, attempt, end.saturating_duration_since(Instant::now()));
        let call = client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&event.deployment_id)
            .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
            .status(status.clone())
            .send();
        let message = match tokio::time::timeout(limit, call).await {
            Ok(Ok(_)) => return Reported::Accepted { attempts: attempt },
            Ok(Err(err)) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_lifecycle_event_already_completed_exception())
                {
                    return Reported::AlreadyCompleted;
                }
                let message = aws_sdk_codedeploy::error::DisplayErrorContext(&err).to_string();
                if !shared::aws::is_transient(&err) {
                    return Reported::NotReported { error: message };
                }
                message
            }
            Err(_) => format!("CodeDeploy gave no answer within {} ms", limit.as_millis()),
        };
        if !crate::backoff(attempt - 1, last_start).await {
            return Reported::NotReported {
                error: format!("{message} (attempt {attempt}, no time left for another)"),
            };
        }
        tracing::warn!(error = %message, attempt, "reporting the verdict failed; retrying");
    }
}
