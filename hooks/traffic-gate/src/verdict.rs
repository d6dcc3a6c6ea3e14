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

/// Time kept free before the deadline for the last attempt to finish.
const LAST_CALL: Duration = Duration::from_millis(250);

/// Sends `passed` as `Succeeded` or `Failed` for `event`.
pub async fn report(
    client: &aws_sdk_codedeploy::Client,
    event: &HookEvent,
    passed: bool,
    deadline: Instant,
) -> Reported {
    let status = if passed {
        LifecycleEventStatus::Succeeded
    } else {
        LifecycleEventStatus::Failed
    };
    let until = deadline.checked_sub(LAST_CALL).unwrap_or(deadline);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let call = client
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&event.deployment_id)
            .lifecycle_event_hook_execution_id(&event.lifecycle_event_hook_execution_id)
            .status(status.clone())
            .send();
        let result = match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), call).await {
            Ok(result) => result,
            Err(_) => {
                return Reported::NotReported {
                    error: String::from("no answer from CodeDeploy before the deadline"),
                };
            }
        };
        match result {
            Ok(_) => return Reported::Accepted { attempts: attempt },
            Err(err) => {
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_lifecycle_event_already_completed_exception())
                {
                    return Reported::AlreadyCompleted;
                }
                let message = aws_sdk_codedeploy::error::DisplayErrorContext(&err).to_string();
                if !shared::aws::is_transient(&err) || !crate::backoff(attempt - 1, until).await {
                    return Reported::NotReported { error: message };
                }
                tracing::warn!(error = %message, attempt, "reporting the verdict failed; retrying");
            }
        }
    }
}
