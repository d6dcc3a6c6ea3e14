//! The DynamoDB adapter: one item per record, keyed `{{table_key}}` (the
//! record id). A record is written once, with a condition that no item has
//! its key, and read strongly consistent.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{Currency, DomainError, NewRecord, Record, RecordId};

/// The table's partition key attribute.
pub const KEY: &str = "{{table_key}}";

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request broke a domain rule.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// DynamoDB failed or was unreachable.
    #[error("dynamodb {operation}: {message}")]
    Dynamo {
        /// The operation that failed.
        operation: &'static str,
        /// The SDK error with its causes.
        message: String,
        /// Whether retrying later may succeed.
        transient: bool,
    },
    /// An item does not have the shape this code writes.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

fn dynamo<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: shared::aws::HasStatus + std::fmt::Debug + Send + Sync + 'static,
{
    move |err| StoreError::Dynamo {
        operation,
        transient: shared::aws::is_transient(&err),
        message: aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Reads the attributes of a stored record.
struct Item<'a>(&'a HashMap<String, AttributeValue>);

impl Item<'_> {
    fn string(&self, name: &str) -> Result<String, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(StoreError::Corrupt(format!("attribute {name} is not a string"))),
        }
    }

    fn record(&self, id: RecordId) -> Result<Record, StoreError> {
        let limit_minor = match self.0.get("limit_minor") {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| StoreError::Corrupt(String::from("attribute limit_minor is not a u64")))?,
            _ => return Err(StoreError::Corrupt(String::from("attribute limit_minor is not a number"))),
        };
        Ok(Record {
            id,
            owner: self.string("owner")?,
            currency: Currency::parse(&self.string("currency")?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            limit_minor,
            created_at: self.string("created_at")?,
        })
    }
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

    /// Writes a new record under a fresh id.
    pub async fn create(&self, new: NewRecord) -> Result<Record, StoreError> {
        let record = Record {
            id: RecordId::new(),
            owner: new.owner,
            currency: new.currency,
            limit_minor: new.limit_minor,
            created_at: now(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY, s(&record.id.to_string()))
            .item("owner", s(&record.owner))
            .item("currency", s(record.currency.as_str()))
            .item("limit_minor", AttributeValue::N(record.limit_minor.to_string()))
            .item("created_at", s(&record.created_at))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY)
            .send()
            .await
            .map_err(dynamo("PutItem"))?;
        Ok(record)
    }

    /// Reads a record (strongly consistent).
    pub async fn get(&self, id: RecordId) -> Result<Record, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(&id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem"))?;
        match output.item {
            Some(item) => Item(&item).record(id),
            None => Err(DomainError::NotFound(id).into()),
        }
    }
}
