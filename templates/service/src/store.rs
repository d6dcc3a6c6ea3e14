//! The DynamoDB adapter: one item per record, keyed `{{table_key}}` (the
//! record id). A record is written once, with a condition that no item has
//! its key, and read strongly consistent. Its id comes from the request's
//! Idempotency-Key, so a request run again (after a crash or a 5xx) finds
//! the record the first run wrote instead of writing a second. A synthetic
//! record (the traffic hooks', [`shared::synthetic`]) carries the marker and
//! the table's time to live, and is no one else's to read.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::dynamo::{Failure, Item, Malformed, failure, now};
use shared::synthetic::Records;

use crate::domain::{DomainError, NewRecord, Record, RecordId};

/// The table's partition key attribute.
pub const KEY: &str = "{{table_key}}";

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request broke a domain rule.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// DynamoDB failed or was unreachable.
    #[error(transparent)]
    Dynamo(#[from] Failure),
    /// An item does not have the shape this code writes.
    #[error(transparent)]
    Corrupt(#[from] Malformed),
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn record(item: &Item, id: RecordId) -> Result<Record, StoreError> {
    Ok(Record {
        id,
        owner: item.string("owner")?,
        holder: item.string("holder")?,
        currency: item.currency("currency")?,
        limit_minor: item.number("limit_minor")?,
        created_at: item.string("created_at")?,
    })
}

/// The records table.
#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// The store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Writes a new record of `records` under `id`, or returns the one already there.
    pub async fn create(&self, id: RecordId, new: NewRecord, records: Records) -> Result<Record, StoreError> {
        let record = Record {
            id,
            owner: new.owner,
            holder: new.holder,
            currency: new.currency,
            limit_minor: new.limit_minor,
            created_at: now(),
        };
        let mut put = self.client.put_item().table_name(&self.table);
        for (name, value) in records.attributes() {
            put = put.item(name, value);
        }
        let written = put
            .item(KEY, s(&record.id.to_string()))
            .item("owner", s(&record.owner))
            .item("holder", s(&record.holder))
            .item("currency", s(record.currency.as_str()))
            .item("limit_minor", AttributeValue::N(record.limit_minor.to_string()))
            .item("created_at", s(&record.created_at))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY)
            .send()
            .await;
        match written {
            Ok(_) => Ok(record),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.get(id, Some(&record.owner), records).await
            }
            Err(err) => Err(failure("PutItem")(err).into()),
        }
    }

    /// Reads a record of `records` (strongly consistent).
    /// Another owner's record, or one of the other records, is not found,
    /// exactly as one that does not exist (nothing tells them apart); `None`
    /// reads any owner's (a service acting for no one).
    pub async fn get(&self, id: RecordId, owner: Option<&str>, records: Records) -> Result<Record, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(&id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure("GetItem"))?;
        match output.item {
            Some(item) => {
                let record = record(&Item(&item), id)?;
                if owner.is_none_or(|o| o == record.owner) && Records::of(&item) == records {
                    Ok(record)
                } else {
                    Err(DomainError::NotFound(id).into())
                }
            }
            None => Err(DomainError::NotFound(id).into()),
        }
    }
}
