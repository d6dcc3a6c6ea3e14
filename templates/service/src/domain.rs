//! The {{project-name}} domain: types and the rules that hold whatever the
//! store. No AWS types here.

use serde::Serialize;
pub use shared::money::Currency;

/// A record's id (a UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RecordId(pub uuid::Uuid);

impl RecordId {
    /// Parses the `{id}` path segment.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        uuid::Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| DomainError::invalid("id", "expected a record id (a UUID)"))
    }
}

impl std::fmt::Display for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A record as stored. Amounts are integer minor units (cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Its id.
    pub id: RecordId,
    /// Who owns it.
    pub owner: String,
    /// The currency of its limit.
    pub currency: Currency,
    /// Its limit in minor units.
    pub limit_minor: u64,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A validated request to create a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Who owns it (trimmed, 1 to 200 characters).
    pub owner: String,
    /// The currency of its limit.
    pub currency: Currency,
    /// Its limit in minor units, 1 to the configured maximum.
    pub limit_minor: u64,
}

impl NewRecord {
    /// Validates the fields of a create request; `max_amount_minor` is the
    /// configured largest limit.
    pub fn parse(owner: &str, currency: &str, limit_minor: u64, max_amount_minor: u64) -> Result<Self, DomainError> {
        let owner = owner.trim();
        if owner.is_empty() || owner.chars().count() > 200 {
            return Err(DomainError::invalid("owner", "expected 1 to 200 characters"));
        }
        let currency = Currency::parse(currency).map_err(|e| DomainError::invalid("currency", e.to_string()))?;
        if limit_minor == 0 || limit_minor > max_amount_minor {
            return Err(DomainError::invalid(
                "limit_minor",
                format!("expected an integer amount in minor units from 1 to {max_amount_minor}"),
            ));
        }
        Ok(Self {
            owner: owner.to_owned(),
            currency,
            limit_minor,
        })
    }
}

/// Why a request breaks the domain's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// No such record.
    #[error("record {0} does not exist")]
    NotFound(RecordId),
}

impl DomainError {
    /// A field error.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: DomainError) -> &'static str {
        match err {
            DomainError::Invalid { field, .. } => field,
            other => panic!("expected a field error, got {other}"),
        }
    }

    #[test]
    fn a_valid_request_is_trimmed_and_kept() {
        let new = NewRecord::parse("  Ada  ", "EUR", 500, 1_000).unwrap();
        assert_eq!(new.owner, "Ada");
        assert_eq!(new.currency.as_str(), "EUR");
        assert_eq!(new.limit_minor, 500);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(NewRecord::parse(" ", "EUR", 1, 10).unwrap_err()), "owner");
        assert_eq!(field_of(NewRecord::parse(&"x".repeat(201), "EUR", 1, 10).unwrap_err()), "owner");
        assert_eq!(field_of(NewRecord::parse("Ada", "EURO", 1, 10).unwrap_err()), "currency");
        assert_eq!(field_of(NewRecord::parse("Ada", "EUR", 0, 10).unwrap_err()), "limit_minor");
        assert_eq!(field_of(NewRecord::parse("Ada", "EUR", 11, 10).unwrap_err()), "limit_minor");
        assert_eq!(field_of(RecordId::parse("not-a-uuid").unwrap_err()), "id");
    }

    #[test]
    fn the_limit_bounds_are_inclusive() {
        assert!(NewRecord::parse("Ada", "EUR", 1, 10).is_ok());
        assert!(NewRecord::parse("Ada", "EUR", 10, 10).is_ok());
    }
}
