//! The AppSpec of a Lambda deployment (`revision.appSpecContent.content`
//! or the older `revision.string.content`), in its JSON form: one
//! `AWS::Lambda::Function` resource with `Name`, `Alias`, `CurrentVersion`
//! and `TargetVersion`, and optional `BeforeAllowTraffic` /
//! `AfterAllowTraffic` hooks naming functions. The user guide spells the
//! keys both in PascalCase and in lower case, so both are read.

use std::collections::BTreeMap;

use super::LambdaTarget;

/// A Lambda AppSpec, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// What is deployed.
    pub target: LambdaTarget,
    /// The function run before traffic shifts.
    pub before_allow_traffic: Option<String>,
    /// The function run after all traffic has shifted.
    pub after_allow_traffic: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(alias = "Version")]
    version: serde_json::Value,
    #[serde(rename = "Resources", alias = "resources")]
    resources: Vec<BTreeMap<String, Resource>>,
    #[serde(rename = "Hooks", alias = "hooks", default)]
    hooks: Vec<BTreeMap<String, String>>,
}

#[derive(serde::Deserialize)]
struct Resource {
    #[serde(rename = "Type", alias = "type")]
    kind: String,
    #[serde(rename = "Properties", alias = "properties")]
    properties: Properties,
}

#[derive(serde::Deserialize)]
struct Properties {
    #[serde(rename = "Name", alias = "name")]
    name: String,
    #[serde(rename = "Alias", alias = "alias")]
    alias: String,
    #[serde(rename = "CurrentVersion", alias = "currentversion", alias = "currentVersion")]
    current_version: String,
    #[serde(rename = "TargetVersion", alias = "targetversion", alias = "targetVersion")]
    target_version: String,
}

/// Why an AppSpec cannot be deployed; CodeDeploy answers `InvalidRevisionException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the AppSpec content is not valid: {0}")]
pub struct InvalidAppSpec(pub String);

/// A positive integer written as a string, as `CurrentVersion` and `TargetVersion` must be.
fn version(field: &str, value: &str) -> Result<(), InvalidAppSpec> {
    match value.parse::<u64>() {
        Ok(1..) if value.bytes().all(|b| b.is_ascii_digit()) && !value.starts_with('0') => Ok(()),
        _ => Err(InvalidAppSpec(format!(
            "{field} is {value:?}; it must be a published version, a positive integer like \"2\""
        ))),
    }
}

impl AppSpec {
    /// Parses and checks `content`.
    pub fn parse(content: &str) -> Result<Self, InvalidAppSpec> {
        let wire: Wire = serde_json::from_str(content).map_err(|err| {
            InvalidAppSpec(format!(
                "{err} (this stand-in reads the JSON form of the AppSpec, as CloudFormation and CDK send it)"
            ))
        })?;
        let version_ok = match &wire.version {
            serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
            serde_json::Value::String(s) => s == "0.0",
            _ => false,
        };
        if !version_ok {
            return Err(InvalidAppSpec(format!(
                "version is {}; the only allowed value is 0.0",
                wire.version
            )));
        }
        let mut resources: Vec<(String, Resource)> = wire.resources.into_iter().flatten().collect();
        if resources.len() != 1 {
            return Err(InvalidAppSpec(format!(
                "Resources lists {} functions; an AppSpec deploys exactly one Lambda function version",
                resources.len()
            )));
        }
        let (logical, resource) = resources.remove(0);
        if resource.kind != "AWS::Lambda::Function" {
            return Err(InvalidAppSpec(format!(
                "Resources.{logical}.Type is {:?}; expected AWS::Lambda::Function",
                resource.kind
            )));
        }
        let p = resource.properties;
        version("CurrentVersion", &p.current_version)?;
        version("TargetVersion", &p.target_version)?;
        if p.current_version == p.target_version {
            return Err(InvalidAppSpec(format!(
                "CurrentVersion and TargetVersion are both {}; a deployment moves traffic between two versions",
                p.current_version
            )));
        }
        let mut before_allow_traffic = None;
        let mut after_allow_traffic = None;
        for (event, function) in wire.hooks.into_iter().flatten() {
            let slot = match event.as_str() {
                "BeforeAllowTraffic" => &mut before_allow_traffic,
                "AfterAllowTraffic" => &mut after_allow_traffic,
                other => {
                    return Err(InvalidAppSpec(format!(
                        "Hooks names {other:?}; a Lambda deployment has only BeforeAllowTraffic and AfterAllowTraffic"
                    )));
                }
            };
            if slot.replace(function).is_some() {
                return Err(InvalidAppSpec(format!(
                    "Hooks names {event} twice; each hook runs once"
                )));
            }
        }
        Ok(Self {
            target: LambdaTarget {
                function_name: p.name,
                alias: p.alias,
                current_version: p.current_version,
                target_version: p.target_version,
            },
            before_allow_traffic,
            after_allow_traffic,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON example of the user guide's "AppSpec File example" page.
    const USER_GUIDE: &str = r#"{
        "version": 0.0,
        "Resources": [{"myLambdaFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Name": "myLambdaFunction", "Alias": "myLambdaFunctionAlias", "CurrentVersion": "1", "TargetVersion": "2"}}}],
        "Hooks": [{"BeforeAllowTraffic": "LambdaFunctionToValidateBeforeTrafficShift"},
                  {"AfterAllowTraffic": "LambdaFunctionToValidateAfterTrafficShift"}]
    }"#;

    #[test]
    fn the_user_guide_example_parses() {
        let spec = AppSpec::parse(USER_GUIDE).unwrap();
        assert_eq!(spec.target.function_name, "myLambdaFunction");
        assert_eq!(spec.target.alias, "myLambdaFunctionAlias");
        assert_eq!(
            (
                spec.target.current_version.as_str(),
                spec.target.target_version.as_str()
            ),
            ("1", "2")
        );
        assert_eq!(
            spec.before_allow_traffic.as_deref(),
            Some("LambdaFunctionToValidateBeforeTrafficShift")
        );
        assert_eq!(
            spec.after_allow_traffic.as_deref(),
            Some("LambdaFunctionToValidateAfterTrafficShift")
        );
    }

    #[test]
    fn lower_case_keys_and_no_hooks_parse() {
        let spec = AppSpec::parse(
            r#"{"version": "0.0", "resources": [{"f": {"type": "AWS::Lambda::Function", "properties":
                {"name": "f", "alias": "live", "currentversion": "3", "targetversion": "4"}}}]}"#,
        )
        .unwrap();
        assert_eq!(spec.target.target_version, "4");
        assert_eq!(spec.before_allow_traffic, None);
    }

    #[test]
    fn bad_appspecs_name_the_field() {
        let with = |from: &str, to: &str| USER_GUIDE.replace(from, to);
        for (content, says) in [
            (with("\"version\": 0.0", "\"version\": 1.0"), "0.0"),
            (
                with("\"TargetVersion\": \"2\"", "\"TargetVersion\": \"$LATEST\""),
                "TargetVersion",
            ),
            (with("\"TargetVersion\": \"2\"", "\"TargetVersion\": \"1\""), "both 1"),
            (
                with("\"TargetVersion\": \"2\"", "\"TargetVersion\": \"+2\""),
                "TargetVersion",
            ),
            (with("AWS::Lambda::Function", "AWS::ECS::Service"), "Type"),
            (with("AfterAllowTraffic", "ApplicationStart"), "ApplicationStart"),
            (with("AfterAllowTraffic", "BeforeAllowTraffic"), "twice"),
            (with("\"Alias\": \"myLambdaFunctionAlias\",", ""), "Alias"),
            (String::from("version: 0.0"), "JSON form"),
        ] {
            let err = AppSpec::parse(&content).unwrap_err();
            assert!(err.to_string().contains(says), "{says}: {err}");
        }
    }
}
