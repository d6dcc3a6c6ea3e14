//! Runs a payment's state machine ([`crate::domain`]) against the ledger and
//! the store: the thin, impure part. Each step asks the machine for its
//! command, makes the one call it names within the time left, and writes the
//! result conditionally on the version it read. It stops when the payment is
//! final or when the invocation has no time left for another call, so no
//! request outlives its function; the sweeper ([`crate::sweeper`]) carries on
//! from the recorded state.

use std::time::Duration;

use shared::http::Deadline;
use time::OffsetDateTime;

use crate::accounts_client::{CallContext, Ledger};
use crate::domain::{Command, Outcome, Policy, command, next};
use crate::store::{Store, StoreError, Versioned};

/// Time kept back at the end of an invocation to record the last outcome and answer.
pub const RESERVE: Duration = Duration::from_millis(300);

/// The shortest call worth starting.
const MIN_CALL: Duration = Duration::from_millis(50);

/// The most steps one run takes (a transfer, its retries, a cancel).
const MAX_STEPS: usize = 32;

/// Advances `current` until it is final or `deadline` (less [`RESERVE`])
/// leaves no time for the next call; returns it as recorded.
pub async fn advance<L: Ledger>(
    store: &Store,
    ledger: &L,
    policy: &Policy,
    mut current: Versioned,
    deadline: Deadline,
    correlation: &str,
) -> Result<Versioned, StoreError> {
    for _ in 0..MAX_STEPS {
        let budget = deadline.remaining().saturating_sub(RESERVE);
        let now = OffsetDateTime::now_utc();
        let outcome = match command(&current.payment, now) {
            Command::Done => return Ok(current),
            Command::WaitUntil(at) => {
                let wait = Duration::try_from(at - now).unwrap_or_default();
                if wait + MIN_CALL > budget {
                    return Ok(current);
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            _ if budget < MIN_CALL => return Ok(current),
            Command::Transfer => {
                ledger
                    .transfer(&current.payment, CallContext { budget, correlation })
                    .await
            }
            Command::Cancel => {
                ledger
                    .cancel(&current.payment, CallContext { budget, correlation })
                    .await
            }
        };
        current = record(store, policy, current, outcome).await?;
    }
    Ok(current)
}

/// Writes what `outcome` makes of the payment. When another runner changed
/// it first, its version is read back and carries on: the call just made
/// was the same call (same reference), so nothing is lost by dropping it.
async fn record(store: &Store, policy: &Policy, current: Versioned, outcome: Outcome) -> Result<Versioned, StoreError> {
    let after = next(&current.payment, outcome, OffsetDateTime::now_utc(), policy);
    match store.save(&after, &current).await {
        Ok(saved) => {
            tracing::info!(payment = %after.id, status = ?after.status, ?outcome, "payment advanced");
            Ok(saved)
        }
        Err(StoreError::Conflict(id)) => store.get(id).await,
        Err(err) => Err(err),
    }
}
