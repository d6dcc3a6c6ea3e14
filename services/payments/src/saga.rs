//! Runs a payment to a final state, one recorded step at a time.
//!
//! Each step is a call to accounts followed by a conditional write of the
//! payment with the step and the status it leads to. A runner that crashes
//! leaves the payment at its last recorded status; [`run`] started again on it
//! (`POST /payments/{id}/resume`) repeats at most the last call, which the
//! posting references make harmless.

use crate::AppState;
use crate::accounts_client::Posting;
use crate::domain::{Action, Outcome, Payment, Status};
use crate::store::{StoreError, Versioned};

/// Advances a payment until it is final, or stuck compensating because
/// accounts cannot be reached (it can be resumed later).
pub async fn run(state: &AppState, mut current: Versioned, correlation: &str) -> Result<Versioned, StoreError> {
    loop {
        let payment = &current.payment;
        let mut next = payment.clone();
        match payment.status {
            Status::Completed | Status::Failed => return Ok(current),
            Status::Pending => {
                let answer = state
                    .accounts
                    .post(
                        Posting::Debit,
                        payment.from_account,
                        payment,
                        &payment.debit_reference(),
                        correlation,
                    )
                    .await;
                let status = match answer.outcome {
                    Outcome::Succeeded => Status::Debited,
                    Outcome::Refused => Status::Failed,
                    Outcome::Unknown => Status::Compensating,
                };
                next.record(Action::Debit, answer.outcome, answer.detail, status);
            }
            Status::Debited => {
                let answer = state
                    .accounts
                    .post(
                        Posting::Credit,
                        payment.to_account,
                        payment,
                        &payment.credit_reference(),
                        correlation,
                    )
                    .await;
                let status = match answer.outcome {
                    Outcome::Succeeded => Status::Completed,
                    Outcome::Refused | Outcome::Unknown => Status::Compensating,
                };
                next.record(Action::Credit, answer.outcome, answer.detail, status);
            }
            Status::Compensating => {
                let voided_credit = payment
                    .steps
                    .iter()
                    .any(|s| s.action == Action::VoidCredit && s.outcome == Outcome::Succeeded);
                let (action, account, reference) = if payment.credit_attempted() && !voided_credit {
                    (Action::VoidCredit, payment.to_account, payment.credit_reference())
                } else {
                    (Action::VoidDebit, payment.from_account, payment.debit_reference())
                };
                let answer = state.accounts.void(account, &reference, correlation).await;
                let status = match (action, answer.outcome) {
                    (Action::VoidDebit, Outcome::Succeeded) => Status::Failed,
                    _ => Status::Compensating,
                };
                let stuck = answer.outcome != Outcome::Succeeded;
                next.record(action, answer.outcome, answer.detail, status);
                if stuck {
                    let version = state.store.save(&next, Some(current.version)).await?;
                    tracing::error!(payment = %next.id, "compensation could not finish; resume the payment later");
                    return Ok(Versioned { payment: next, version });
                }
            }
        }
        let version = state.store.save(&next, Some(current.version)).await?;
        tracing::info!(payment = %next.id, status = ?next.status, "payment advanced");
        current = Versioned { payment: next, version };
    }
}

/// Creates a payment and runs it.
pub async fn start(state: &AppState, payment: Payment, correlation: &str) -> Result<Versioned, StoreError> {
    let version = state.store.save(&payment, None).await?;
    run(state, Versioned { payment, version }, correlation).await
}
