//! The payments table: one item per payment (`pk = PAYMENT#<id>`), the
//! payment as a map attribute with its status, version and the fingerprint
//! of the request that made it. Every change is a conditional write on the
//! version it read, so two runners (a request and the sweeper) never both
//! advance one payment from the same state.
//!
//! A payment that is not final also carries `sweep` (one of
//! [`SWEEP_SHARDS`] partitions, `open#<n>`) and `due` (when its next call
//! may be made, epoch milliseconds zero-padded so they sort as text): the
//! keys of the sparse index `open` the sweeper reads. A final payment drops
//! both, and leaves the index.
//!
//! A synthetic payment (made by the deployment's own checks,
//! [`shared::synthetic`]) carries the marker and `expiration`, the table's
//! time to live.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Payment, PaymentId, Status};
use shared::synthetic::Records;

/// The sparse index of payments that are not final.
pub const OPEN_INDEX: &str = "open";

/// Partitions of the open index: the sweeper reads each; a single
/// partition key would be one hot key at scale.
pub const SWEEP_SHARDS: u32 = 8;

/// The most pages one listing reads.
const MAX_PAGES: usize = 100;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such payment.
    #[error("payment {0} does not exist")]
    NotFound(PaymentId),
    /// Someone else changed the payment since it was read.
    #[error("payment {0} was changed by another runner")]
    Conflict(PaymentId),
    /// DynamoDB failed.
    #[error(transparent)]
    Dynamo(#[from] shared::dynamo::Failure),
    /// An item does not have the shape this code writes.
    #[error("stored payment is malformed: {0}")]
    Corrupt(#[source] serde_dynamo::Error),
}

/// A payment as read, with the version a write must match.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The payment.
    pub payment: Payment,
    /// Its version.
    pub version: u64,
    /// The fingerprint of the request that created it.
    pub fingerprint: String,
    /// Customers' or synthetic.
    pub records: Records,
}

/// What creating a payment found.
#[derive(Debug, Clone)]
pub enum Created {
    /// It is new.
    New(Versioned),
    /// A payment with this id existed already (a retry of its request).
    Existing(Versioned),
}

/// The stored item.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    pk: String,
    status: Status,
    version: u64,
    fingerprint: String,
    payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due: Option<String>,
    /// [`shared::synthetic::MARKER`]: present on synthetic payments only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    synthetic: Option<bool>,
    /// [`shared::synthetic::EXPIRATION`], the time to live of a synthetic payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiration: Option<u64>,
}

fn pk(id: PaymentId) -> String {
    format!("PAYMENT#{id}")
}

/// The `sweep` partition of a payment.
fn shard(id: PaymentId) -> String {
    format!("open#{}", id.0.as_u128() % u128::from(SWEEP_SHARDS))
}

/// A time as a `due` value.
fn due(at: OffsetDateTime) -> String {
    let millis = (at.unix_timestamp_nanos() / 1_000_000).max(0);
    format!("{millis:016}")
}

impl Record {
    fn new(payment: &Payment, version: u64, fingerprint: &str, records: Records) -> Self {
        let open = !payment.status.is_final();
        let synthetic = records.is_synthetic();
        Self {
            pk: pk(payment.id),
            status: payment.status,
            version,
            fingerprint: fingerprint.to_owned(),
            payment: payment.clone(),
            sweep: open.then(|| shard(payment.id)),
            due: open.then(|| due(payment.next_attempt_at.unwrap_or(payment.updated_at))),
            synthetic: synthetic.then_some(true),
            expiration: synthetic.then(|| shared::synthetic::expiration(std::time::SystemTime::now())),
        }
    }

    fn versioned(self) -> Versioned {
        Versioned {
            payment: self.payment,
            version: self.version,
            fingerprint: self.fingerprint,
            records: if self.synthetic.is_some() {
                Records::Synthetic
            } else {
                Records::Customers
            },
        }
    }
}

/// The payments table.
#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(err: &E) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

impl Store {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn put(&self, record: &Record, condition: Option<u64>) -> Result<(), PutError> {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record).map_err(StoreError::Corrupt)?;
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let put = match condition {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(version) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(version.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(is_condition_failure) => Err(PutError::Condition),
            Err(err) => Err(StoreError::from(shared::dynamo::failure("PutItem")(err)).into()),
        }
    }

    /// Records a new payment of `records` created by a request with
    /// `fingerprint`, or returns the one that exists with its id.
    pub async fn create(&self, payment: &Payment, fingerprint: &str, records: Records) -> Result<Created, StoreError> {
        let record = Record::new(payment, 1, fingerprint, records);
        match self.put(&record, None).await {
            Ok(()) => Ok(Created::New(record.versioned())),
            Err(PutError::Condition) => self.get(payment.id).await.map(Created::Existing),
            Err(PutError::Store(err)) => Err(err),
        }
    }

    /// Writes the payment if it is still at version `expected`; returns it
    /// at its new version.
    pub async fn save(&self, payment: &Payment, current: &Versioned) -> Result<Versioned, StoreError> {
        let record = Record::new(payment, current.version + 1, &current.fingerprint, current.records);
        match self.put(&record, Some(current.version)).await {
            Ok(()) => Ok(record.versioned()),
            Err(PutError::Condition) => Err(StoreError::Conflict(payment.id)),
            Err(PutError::Store(err)) => Err(err),
        }
    }

    /// Reads a payment (strongly consistent).
    pub async fn get(&self, id: PaymentId) -> Result<Versioned, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(shared::dynamo::failure("GetItem"))?;
        let item = output.item.ok_or(StoreError::NotFound(id))?;
        let record: Record = serde_dynamo::from_item(item).map_err(StoreError::Corrupt)?;
        Ok(record.versioned())
    }

    /// Payments that are not final in sweep partition `shard`, with when
    /// their next call is due (the index is eventually consistent: read
    /// each again before acting on it).
    pub async fn open(&self, shard: u32) -> Result<Vec<Open>, StoreError> {
        let mut open = Vec::new();
        let mut start = None;
        for _ in 0..MAX_PAGES {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(OPEN_INDEX)
                .key_condition_expression("sweep = :s")
                .expression_attribute_values(":s", AttributeValue::S(format!("open#{shard}")))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(shared::dynamo::failure("Query"))?;
            for item in output.items() {
                let record: Record = serde_dynamo::from_item(item.clone()).map_err(StoreError::Corrupt)?;
                open.push(Open {
                    id: record.payment.id,
                    created_at: record.payment.created_at,
                    due_at: record.payment.next_attempt_at.unwrap_or(record.payment.updated_at),
                });
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(open)
    }
}

/// A payment the open index lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Its id.
    pub id: PaymentId,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When its next call may be made.
    pub due_at: OffsetDateTime,
}

enum PutError {
    Condition,
    Store(StoreError),
}

impl From<StoreError> for PutError {
    fn from(err: StoreError) -> Self {
        PutError::Store(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_sorts_as_text_in_time_order() {
        let t = time::macros::datetime!(2026-12-01 08:00 UTC);
        let later = t + time::Duration::milliseconds(1);
        assert!(due(t) < due(later));
        assert_eq!(due(t).len(), 16);
        assert!(due(time::macros::datetime!(2286-11-20 17:46:40 UTC)).len() == 16);
    }

    #[test]
    fn a_payment_round_trips_through_its_item() {
        use crate::domain::{NewPayment, Outcome, Policy, next};
        let request = NewPayment {
            from_account: crate::domain::AccountId(uuid::Uuid::from_u128(1)),
            to_account: crate::domain::AccountId(uuid::Uuid::from_u128(2)),
            amount_minor: 1234,
            currency: shared::money::Currency::parse("EUR").unwrap(),
            reference: String::from("invoice 7"),
        };
        let t = time::macros::datetime!(2026-12-01 08:00 UTC);
        let open = Payment::new(PaymentId(uuid::Uuid::from_u128(9)), "customer-9", &request, t);
        let policy = Policy {
            give_up_after: std::time::Duration::from_secs(60),
            retry_base: std::time::Duration::from_millis(100),
            retry_max: std::time::Duration::from_secs(1),
        };
        let unknown = next(
            &open,
            Outcome::Unknown(crate::domain::Cause::ServerError { status: 503 }),
            t,
            &policy,
        );
        let failed = next(&unknown, Outcome::Cancelled, t, &policy);
        for (payment, records) in [
            (open, Records::Customers),
            (unknown, Records::Synthetic),
            (failed, Records::Synthetic),
        ] {
            let record = Record::new(&payment, 3, "fp", records);
            assert_eq!(record.sweep.is_some(), !payment.status.is_final());
            let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&record).unwrap();
            assert_eq!(Records::of(&item), records);
            assert_eq!(item.contains_key(shared::synthetic::EXPIRATION), records.is_synthetic());
            let back: Record = serde_dynamo::from_item(item).unwrap();
            assert_eq!(back.payment, payment);
            assert_eq!((back.version, back.fingerprint.as_str()), (3, "fp"));
            assert_eq!(back.versioned().records, records);
        }
    }
}
