//! What every DynamoDB store repeats: an SDK error as a [`Failure`] that
//! names the operation and says whether retrying may help, typed reads of a
//! stored item's attributes whose errors name the attribute ([`Item`]), and
//! the timestamp format items carry ([`now`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::HasStatus;
use crate::money::Currency;

/// A DynamoDB call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dynamodb {operation}: {message}")]
pub struct Failure {
    /// The operation, e.g. `PutItem`.
    pub operation: &'static str,
    /// The SDK error with its causes.
    pub message: String,
    /// Whether retrying later may succeed (throttling, timeouts, 5xx).
    pub transient: bool,
}

/// Turns the SDK error of `operation` into a [`Failure`]:
/// `.map_err(shared::dynamo::failure("GetItem"))?`.
pub fn failure<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> Failure
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: HasStatus + std::fmt::Debug + Send + Sync + 'static,
{
    move |err| Failure {
        operation,
        transient: crate::aws::is_transient(&err),
        message: aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
    }
}

/// A stored item that does not have the shape the code writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored item is malformed: {0}")]
pub struct Malformed(pub String);

/// Typed reads of a stored item's attributes.
pub struct Item<'a>(pub &'a HashMap<String, AttributeValue>);

impl Item<'_> {
    /// String attribute `name`.
    pub fn string(&self, name: &str) -> Result<String, Malformed> {
        match self.0.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(Malformed(format!("attribute {name} is not a string"))),
        }
    }

    /// String attribute `name` when present; an attribute of another type is malformed.
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, Malformed> {
        match self.0.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(Malformed(format!("attribute {name} is not a string"))),
        }
    }

    /// Number attribute `name`, a `u64` (amounts in minor units, counts).
    pub fn number(&self, name: &str) -> Result<u64, Malformed> {
        match self.0.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| Malformed(format!("attribute {name} is not a u64"))),
            _ => Err(Malformed(format!("attribute {name} is not a number"))),
        }
    }

    /// String attribute `name`, an ISO 4217 code.
    pub fn currency(&self, name: &str) -> Result<Currency, Malformed> {
        Currency::parse(&self.string(name)?).map_err(|e| Malformed(format!("attribute {name}: {e}")))
    }
}

/// Now, RFC 3339 in UTC: how items record when they were written.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_the_attribute_that_is_wrong() {
        let item: HashMap<String, AttributeValue> = [
            (String::from("owner"), AttributeValue::S(String::from("Ada"))),
            (String::from("balance"), AttributeValue::N(String::from("250"))),
            (String::from("negative"), AttributeValue::N(String::from("-1"))),
            (String::from("currency"), AttributeValue::S(String::from("EUR"))),
            (String::from("bad_currency"), AttributeValue::S(String::from("EURO"))),
        ]
        .into();
        let item = Item(&item);
        assert_eq!(item.string("owner"), Ok(String::from("Ada")));
        assert_eq!(item.number("balance"), Ok(250));
        assert_eq!(
            item.currency("currency").map(|c| c.as_str().to_owned()),
            Ok(String::from("EUR"))
        );
        assert_eq!(
            item.string("balance"),
            Err(Malformed(String::from("attribute balance is not a string")))
        );
        assert_eq!(
            item.number("owner"),
            Err(Malformed(String::from("attribute owner is not a number")))
        );
        assert_eq!(
            item.number("negative"),
            Err(Malformed(String::from("attribute negative is not a u64")))
        );
        assert_eq!(
            item.string("missing"),
            Err(Malformed(String::from("attribute missing is not a string")))
        );
        assert!(
            item.currency("bad_currency")
                .unwrap_err()
                .0
                .starts_with("attribute bad_currency: ")
        );
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let now = now();
        assert!(
            time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339).is_ok(),
            "{now}"
        );
        assert!(now.ends_with('Z'), "{now}");
    }
}
