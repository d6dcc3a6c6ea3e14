//! The service registry: each service's `[package.metadata.service]` table,
//! read with `cargo metadata`. Nothing else lists the services.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::Error;

/// One service and what it needs from AWS.
#[derive(Debug, Clone)]
pub struct Service {
    /// The package name, which is also the Lambda function name.
    pub name: String,
    /// The folder holding its `Cargo.toml`.
    pub dir: PathBuf,
    /// Its registry entry.
    pub spec: ServiceSpec,
    /// What `cargo lambda deploy` gives its function (`[package.metadata.lambda.deploy]`).
    pub deploy: DeploySpec,
}

/// The parts of `[package.metadata.lambda.deploy]` the local stack follows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeploySpec {
    /// Memory in MB.
    pub memory: Option<u64>,
    /// The function's timeout in seconds: a local request's deadline.
    pub timeout: Option<u64>,
}

/// A service's `[package.metadata.service]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The API route prefix, e.g. `/accounts`.
    pub route_prefix: String,
    /// The team that owns it (infra/ tags its resources `team`).
    pub team: Option<String>,
    /// The logical name of the secret it reads (see `shared::naming`).
    pub secret: Option<String>,
    /// The value the local stack seeds that secret with.
    #[serde(default)]
    pub secret_value: Option<serde_json::Value>,
    /// The services it calls.
    #[serde(default)]
    pub calls: Vec<String>,
    /// Its DynamoDB tables by logical name.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    /// Its configuration keys and their local values.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Its Postman collection and which folders run around traffic shifting.
    pub postman: Option<PostmanSpec>,
    /// Business metrics (EMF, `service` dimension) whose per-minute sum at or
    /// above the threshold rolls a deployment back (read by `infra/`).
    #[serde(default)]
    pub alarms: BTreeMap<String, f64>,
    /// Scheduled functions of the package, by binary name: EventBridge
    /// schedules in `infra/`, a loop every `SCHEDULE_EVERY_MS` locally.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleSpec>,
    /// The OAuth scopes its routes ask for, by name, with what each allows:
    /// the user pool's resource server `<service>` with scopes
    /// `<service>/<name>` (in `infra/` and in the local stack alike).
    #[serde(default)]
    pub scopes: BTreeMap<String, String>,
}

/// How often a scheduled function runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The period in seconds (EventBridge's smallest rate is one minute).
    pub every_seconds: u64,
}

/// A DynamoDB table's keys (strings).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The partition key attribute.
    pub partition_key: String,
    /// The sort key attribute, if any.
    pub sort_key: Option<String>,
    /// The attribute DynamoDB's time to live expires items by, if any.
    pub ttl_attribute: Option<String>,
    /// Global secondary indexes by name (string keys, every attribute projected).
    #[serde(default)]
    pub indexes: BTreeMap<String, IndexSpec>,
    /// Items the local stack puts in the table: a JSON file (path relative to
    /// the service's directory) holding an array of objects, each one item
    /// (strings, numbers, booleans, nulls, arrays and objects as DynamoDB's
    /// S, N, BOOL, NULL, L and M). Deployed stages ignore it.
    pub seed: Option<String>,
}

/// A global secondary index's keys (strings).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSpec {
    /// The index's partition key attribute.
    pub partition_key: String,
    /// The index's sort key attribute, if any.
    pub sort_key: Option<String>,
}

/// A config value: literal, or the physical name of one of the service's tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    /// A literal value.
    Literal(String),
    /// The physical name of a logical table.
    Table {
        /// The logical table name.
        table: String,
    },
}

/// Which Postman collection and folders a service's deployment runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmanSpec {
    /// Collection name: `postman/<collection>.postman_collection.json`.
    pub collection: String,
    /// Folders run before traffic shifts.
    #[serde(default)]
    pub before_traffic: Vec<String>,
    /// Folders run after traffic shifts.
    #[serde(default)]
    pub after_traffic: Vec<String>,
    /// Folders a customer would run, repeated by `cargo xtask rehearse` as
    /// the synthetic customer traffic through the API stage: safe to repeat
    /// (each run makes its own records) and run with a customer's token.
    #[serde(default)]
    pub traffic: Vec<String>,
}

/// Every service in the workspace (packages under `services/` with a registry entry).
pub fn load() -> Result<Vec<Service>, Error> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(crate::workspace_root().join("Cargo.toml"))
        .no_deps()
        .exec()
        .map_err(|e| Error::Registry(e.to_string()))?;
    let mut services = Vec::new();
    for package in metadata.workspace_packages() {
        let Some(entry) = package.metadata.get("service") else {
            continue;
        };
        let spec: ServiceSpec = serde_json::from_value(entry.clone())
            .map_err(|e| Error::Registry(format!("{}: [package.metadata.service]: {e}", package.name)))?;
        let dir = package
            .manifest_path
            .parent()
            .map(|p| p.as_std_path().to_path_buf())
            .unwrap_or_default();
        let deploy = match package.metadata.pointer("/lambda/deploy") {
            Some(deploy) => serde_json::from_value(deploy.clone())
                .map_err(|e| Error::Registry(format!("{}: [package.metadata.lambda.deploy]: {e}", package.name)))?,
            None => DeploySpec::default(),
        };
        // Every table may hold the traffic hooks' synthetic items, which
        // expire by this attribute (shared::synthetic).
        if let Some((table, _)) = spec
            .tables
            .iter()
            .find(|(_, t)| t.ttl_attribute.as_deref() != Some(shared::synthetic::EXPIRATION))
        {
            return Err(Error::Registry(format!(
                "{}: [package.metadata.service.tables.{table}]: set ttl_attribute = \"{}\": the traffic hooks' synthetic items expire by it",
                package.name,
                shared::synthetic::EXPIRATION
            )));
        }
        services.push(Service {
            name: package.name.to_string(),
            dir,
            spec,
            deploy,
        });
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(services)
}
