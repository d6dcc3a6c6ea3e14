//! Synthetic records: what the deployment's own checks write, kept apart
//! from customers' data.
//!
//! The traffic hooks run each service's Postman folders against the version
//! being deployed, as a customer: the client-credentials token of one of the
//! deployment's machine clients (`AUTH_SERVICE_CLIENT_IDS`), whose subject is
//! the client's id. That subject is the reserved owner: no user of the pool
//! can have it (a user's token naming it is refused, [`crate::auth`]), so
//! every record opened for it, and everything written on its behalf, is
//! synthetic ([`Records::Synthetic`]):
//!
//! - each item carries the marker attribute [`MARKER`] (`true`) and
//!   [`EXPIRATION`], the table's time-to-live attribute, [`RETENTION`] after
//!   it was written, so DynamoDB deletes it;
//! - a write for one kind of records never changes an item of the other
//!   ([`Records::condition`] is part of every conditional write): money
//!   never moves between a synthetic account and a customer's, and the back
//!   office acting for no one never touches synthetic records;
//! - reads of the other kind answer as if the item did not exist, and
//!   audits of the customers' ledger leave synthetic items out (time to live
//!   deletes them one by one, in no order).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

/// The attribute that marks a synthetic item (`BOOL true`).
pub const MARKER: &str = "synthetic";

/// The time-to-live attribute of every table a service writes synthetic
/// items to (the registry's `ttl_attribute`): epoch seconds.
pub const EXPIRATION: &str = "expiration";

/// How long a synthetic item is kept: long enough to look into a failed
/// check over a weekend, short enough that tables do not fill with them.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whose records a request reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Records {
    /// Customers' (and the back office's): kept and audited.
    #[default]
    Customers,
    /// The deployment's own checks': marked, expiring after [`RETENTION`],
    /// never mixed with customers'.
    Synthetic,
}

impl Records {
    /// The attributes a new item of these records carries: none for
    /// customers'; [`MARKER`] and [`EXPIRATION`] for synthetic ones.
    pub fn attributes(self) -> Vec<(&'static str, AttributeValue)> {
        match self {
            Records::Customers => Vec::new(),
            Records::Synthetic => vec![
                (MARKER, AttributeValue::Bool(true)),
                (EXPIRATION, AttributeValue::N(expiration(SystemTime::now()).to_string())),
            ],
        }
    }

    /// The condition an existing item must meet to be one of these records,
    /// for a condition expression (it names [`MARKER`] directly).
    pub fn condition(self) -> &'static str {
        match self {
            Records::Customers => "attribute_not_exists(synthetic)",
            Records::Synthetic => "attribute_exists(synthetic)",
        }
    }

    /// Which records a stored item is.
    pub fn of(item: &HashMap<String, AttributeValue>) -> Records {
        if item.contains_key(MARKER) {
            Records::Synthetic
        } else {
            Records::Customers
        }
    }

    /// Whether these are synthetic records.
    pub fn is_synthetic(self) -> bool {
        self == Records::Synthetic
    }
}

/// When an item written at `now` expires: epoch seconds, [`RETENTION`] later.
pub fn expiration(now: SystemTime) -> u64 {
    (now + RETENTION)
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_items_carry_the_marker_and_an_expiration_a_week_out() {
        assert!(Records::Customers.attributes().is_empty());
        let item: HashMap<String, AttributeValue> = Records::Synthetic
            .attributes()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(item.get(MARKER), Some(&AttributeValue::Bool(true)));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let expires: u64 = item[EXPIRATION].as_n().unwrap().parse().unwrap();
        assert!((now + RETENTION.as_secs()..now + RETENTION.as_secs() + 5).contains(&expires));
        assert_eq!(Records::of(&item), Records::Synthetic);
        assert_eq!(Records::of(&HashMap::new()), Records::Customers);
    }
}
