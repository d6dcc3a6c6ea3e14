//! Aliases as Lambda keeps them: a primary version and, while traffic
//! shifts, at most one additional version with the weight it receives
//! (`RoutingConfig.AdditionalVersionWeights`). The checks and messages
//! follow Lambda's (docs/aws-codedeploy-lambda.md, section 8).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// One alias of one function.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// The alias's name (`live`).
    pub name: String,
    /// The primary version, which receives the residual weight.
    pub function_version: String,
    /// The additional version and the share of invocations it receives (0–1).
    pub additional: Option<(String, f64)>,
    /// Free text.
    pub description: String,
    /// Changes on every update; an update naming another one is refused.
    pub revision_id: String,
}

impl Alias {
    /// The version one invocation runs, for a uniform `draw` in [0, 1): the
    /// additional version when `draw` falls under its weight, else the primary.
    pub fn pick(&self, draw: f64) -> &str {
        match &self.additional {
            Some((version, weight)) if draw < *weight => version,
            _ => &self.function_version,
        }
    }

    /// The share of invocations `version` receives.
    pub fn weight_of(&self, version: &str) -> f64 {
        match &self.additional {
            Some((additional, weight)) if additional == version => *weight,
            Some((_, weight)) if self.function_version == version => 1.0 - weight,
            None if self.function_version == version => 1.0,
            _ => 0.0,
        }
    }

    /// The `AliasConfiguration` Lambda answers with.
    pub fn configuration(&self, function_arn: &str) -> AliasConfiguration {
        AliasConfiguration {
            alias_arn: format!("{function_arn}:{}", self.name),
            name: self.name.clone(),
            function_version: self.function_version.clone(),
            description: self.description.clone(),
            routing_config: self.additional.as_ref().map(|(version, weight)| RoutingConfig {
                additional_version_weights: Some(BTreeMap::from([(version.clone(), *weight)])),
            }),
            revision_id: self.revision_id.clone(),
        }
    }
}

/// `AliasRoutingConfiguration` on the wire.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingConfig {
    /// Version → weight; at most one entry.
    pub additional_version_weights: Option<BTreeMap<String, f64>>,
}

/// `AliasConfiguration` on the wire.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasConfiguration {
    /// `arn:aws:lambda:<region>:<account>:function:<name>:<alias>`.
    pub alias_arn: String,
    /// The alias.
    pub name: String,
    /// The primary version.
    pub function_version: String,
    /// Free text.
    pub description: String,
    /// Present while an additional version receives traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<RoutingConfig>,
    /// The current revision.
    pub revision_id: String,
}

/// `CreateAlias`'s body.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAlias {
    /// The alias.
    pub name: String,
    /// The primary version.
    pub function_version: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The additional version, if any.
    pub routing_config: Option<RoutingConfig>,
}

/// `UpdateAlias`'s body: what is absent stays as it is.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAlias {
    /// The new primary version.
    pub function_version: Option<String>,
    /// The new description.
    pub description: Option<String>,
    /// The new routing; `{"AdditionalVersionWeights": {}}` clears it.
    pub routing_config: Option<RoutingConfig>,
    /// The revision the caller last saw.
    pub revision_id: Option<String>,
}

/// Why Lambda refused an alias call, with the error type the SDK matches on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AliasError {
    /// 404 `ResourceNotFoundException`: no such function, version or alias.
    #[error("{0}")]
    NotFound(String),
    /// 400 `InvalidParameterValueException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// 400 `ValidationException`: a value outside its constraint.
    #[error("{0}")]
    Validation(String),
    /// 409 `ResourceConflictException`: the alias exists.
    #[error("{0}")]
    Conflict(String),
    /// 412 `PreconditionFailedException`: the revision id is stale.
    #[error("{0}")]
    PreconditionFailed(String),
}

impl IntoResponse for AliasError {
    fn into_response(self) -> Response {
        // The model's member casing: `Message` on ResourceNotFound, `message` elsewhere.
        let (status, kind, key) = match &self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "ResourceNotFoundException", "Message"),
            Self::InvalidParameter(_) => (StatusCode::BAD_REQUEST, "InvalidParameterValueException", "message"),
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationException", "message"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "ResourceConflictException", "message"),
            Self::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailedException",
                "message",
            ),
        };
        let body = serde_json::json!({"Type": "User", key: self.to_string()});
        (
            status,
            [("x-amzn-errortype", kind), ("content-type", "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// Checks an alias name against Lambda's pattern, `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`,
/// 1–128 characters: a name of digits alone would read as a version.
pub fn check_name(name: &str) -> Result<(), AliasError> {
    let valid = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.bytes().all(|b| b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(AliasError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )))
    }
}

/// Checks `routing` for an alias whose primary is `primary`, as Lambda
/// does: at most one additional version, not the primary, published, with a
/// weight in [0, 1]; an empty map means no additional version.
pub fn additional_version(
    primary: &str,
    routing: Option<RoutingConfig>,
    published: impl Fn(&str) -> bool,
) -> Result<Option<(String, f64)>, AliasError> {
    let weights = routing.and_then(|r| r.additional_version_weights).unwrap_or_default();
    if weights.len() > 1 {
        return Err(AliasError::InvalidParameter(String::from(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        )));
    }
    let Some((version, weight)) = weights.into_iter().next() else {
        return Ok(None);
    };
    if !(0.0..=1.0).contains(&weight) {
        return Err(AliasError::Validation(format!(
            "1 validation error detected: Value '{{{version}={weight}}}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]"
        )));
    }
    if primary == "$LATEST" {
        return Err(AliasError::InvalidParameter(String::from(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        )));
    }
    if version == primary {
        return Err(AliasError::InvalidParameter(format!(
            "Invalid function version {version}. Function version {version} is already included in routing configuration."
        )));
    }
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AliasError::Validation(format!(
            "1 validation error detected: Value '{version}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]+]"
        )));
    }
    if !published(&version) {
        return Err(AliasError::InvalidParameter(format!(
            "Function version {version} does not exist."
        )));
    }
    Ok(Some((version, weight)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(pairs: &[(&str, f64)]) -> Option<RoutingConfig> {
        Some(RoutingConfig {
            additional_version_weights: Some(pairs.iter().map(|(v, w)| ((*v).to_owned(), *w)).collect()),
        })
    }

    #[test]
    fn routing_is_checked_as_lambda_checks_it() {
        let published = |v: &str| v == "1" || v == "2";
        assert_eq!(
            additional_version("1", routing(&[("2", 0.1)]), published),
            Ok(Some((String::from("2"), 0.1)))
        );
        assert_eq!(additional_version("1", routing(&[]), published), Ok(None));
        assert_eq!(additional_version("1", None, published), Ok(None));
        assert!(matches!(
            additional_version("1", routing(&[("2", 0.1), ("3", 0.1)]), published),
            Err(AliasError::InvalidParameter(_))
        ));
        assert!(matches!(
            additional_version("1", routing(&[("1", 0.1)]), published),
            Err(AliasError::InvalidParameter(_))
        ));
        assert!(matches!(
            additional_version("1", routing(&[("2", 1.5)]), published),
            Err(AliasError::Validation(_))
        ));
        assert!(matches!(
            additional_version("1", routing(&[("2", -0.1)]), published),
            Err(AliasError::Validation(_))
        ));
        assert!(matches!(
            additional_version("1", routing(&[("9", 0.1)]), published),
            Err(AliasError::InvalidParameter(_))
        ));
        assert!(matches!(
            additional_version("$LATEST", routing(&[("2", 0.1)]), published),
            Err(AliasError::InvalidParameter(_))
        ));
    }

    #[test]
    fn the_additional_version_gets_the_draws_under_its_weight() {
        let alias = Alias {
            name: String::from("live"),
            function_version: String::from("1"),
            additional: Some((String::from("2"), 0.25)),
            description: String::new(),
            revision_id: String::from("r"),
        };
        assert_eq!(alias.pick(0.0), "2");
        assert_eq!(alias.pick(0.2499), "2");
        assert_eq!(alias.pick(0.25), "1");
        assert_eq!(alias.pick(0.99), "1");
        assert!((alias.weight_of("1") - 0.75).abs() < 1e-9);
        assert!((alias.weight_of("2") - 0.25).abs() < 1e-9);
        assert_eq!(alias.weight_of("3"), 0.0);
    }
}
