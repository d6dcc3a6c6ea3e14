//! The payments table: one item per payment (`pk = PAYMENT#<id>`), holding
//! the payment as JSON with its status and a version. Every change is a
//! conditional write on the version it read, so two runners (a request and
//! a resume) never both advance one payment.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::Payment;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such payment.
    #[error("payment {0} does not exist")]
    NotFound(uuid::Uuid),
    /// Someone else changed the payment since it was read.
    #[error("payment {0} was changed by another runner")]
    Conflict(uuid::Uuid),
    /// DynamoDB failed.
    #[error(transparent)]
    Dynamo(#[from] shared::dynamo::Failure),
    /// An item does not have the shape this code writes.
    #[error("stored payment is malformed: {0}")]
    Corrupt(String),
}

/// A payment as read, with the version a write must match.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The payment.
    pub payment: Payment,
    /// Its version.
    pub version: u64,
}

/// The payments table.
#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

fn pk(id: uuid::Uuid) -> AttributeValue {
    AttributeValue::S(format!("PAYMENT#{id}"))
}

impl Store {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Writes a payment: a new one when `expected` is `None`, else only if it
    /// is still at version `expected`. Returns the new version.
    pub async fn save(&self, payment: &Payment, expected: Option<u64>) -> Result<u64, StoreError> {
        let doc = serde_json::to_string(payment).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let version = expected.map_or(1, |v| v + 1);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(payment.id))
            .item(
                "status",
                AttributeValue::S(
                    serde_json::to_value(payment.status)
                        .map(|v| v.as_str().unwrap_or_default().to_owned())
                        .unwrap_or_default(),
                ),
            )
            .item("version", AttributeValue::N(version.to_string()))
            .item("doc", AttributeValue::S(doc));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        match put.send().await {
            Ok(_) => Ok(version),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict(payment.id))
            }
            Err(err) => Err(shared::dynamo::failure("PutItem")(err).into()),
        }
    }

    /// Reads a payment (strongly consistent).
    pub async fn get(&self, id: uuid::Uuid) -> Result<Versioned, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(shared::dynamo::failure("GetItem"))?;
        let item = output.item.ok_or(StoreError::NotFound(id))?;
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(String::from("no doc")))?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Corrupt(String::from("no version")))?;
        let payment = serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Versioned { payment, version })
    }
}
