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
    /// The customer who created it (the token's subject): the only one who
    /// may read it.
    pub owner: String,
    /// The name it is held in.
    pub holder: String,
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
    /// The customer creating it.
    pub owner: String,
    /// The name it is held in (trimmed, 1 to 200 characters).
    pub holder: String,
    /// The currency of its limit.
    pub currency: Currency,
    /// Its limit in minor units, 1 to the configured maximum.
    pub limit_minor: u64,
}

impl NewRecord {
    /// Validates the fields of `owner`'s create request; `max_amount_minor`
    /// is the configured largest limit.
    pub fn parse(
        owner: &str,
        holder: &str,
        currency: &str,
        limit_minor: u64,
        max_amount_minor: u64,
    ) -> Result<Self, DomainError> {
        let holder = holder.trim();
        if holder.is_empty() || holder.chars().count() > 200 {
            return Err(DomainError::invalid("holder", "expected 1 to 200 characters"));
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
            holder: holder.to_owned(),
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
        let new = NewRecord::parse("sub-1", "  Ada  ", "EUR", 500, 1_000).unwrap();
        assert_eq!(new.holder, "Ada");
        assert_eq!(new.currency.as_str(), "EUR");
        assert_eq!(new.limit_minor, 500);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(NewRecord::parse("sub-1", " ", "EUR", 1, 10).unwrap_err()), "holder");
        assert_eq!(field_of(NewRecord::parse("sub-1", &"x".repeat(201), "EUR", 1, 10).unwrap_err()), "holder");
        assert_eq!(field_of(NewRecord::parse("sub-1", "Ada", "EURO", 1, 10).unwrap_err()), "currency");
        assert_eq!(field_of(NewRecord::parse("sub-1", "Ada", "EUR", 0, 10).unwrap_err()), "limit_minor");
        assert_eq!(field_of(NewRecord::parse("sub-1", "Ada", "EUR", 11, 10).unwrap_err()), "limit_minor");
        assert_eq!(field_of(RecordId::parse("not-a-uuid").unwrap_err()), "id");
    }

    #[test]
    fn the_limit_bounds_are_inclusive() {
        assert!(NewRecord::parse("sub-1", "Ada", "EUR", 1, 10).is_ok());
        assert!(NewRecord::parse("sub-1", "Ada", "EUR", 10, 10).is_ok());
    }
}
