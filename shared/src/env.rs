//! Every environment variable the workspace reads, in one place.
//!
//! Handlers never read the environment: these are read once, at init, by the
//! modules named beside each variable.

/// Application name, the first segment of every config path and resource name (`config`, `naming`).
pub const APP_NAME: &str = "APP_NAME";
/// Deployment stage (`local`, `dev`, `staging`, `prod`), the second segment (`config`, `naming`).
pub const STAGE: &str = "STAGE";
/// Prefix of variables that override one config key: `CONFIG_TABLE_NAME` sets `table_name`,
/// `CONFIG_LIMITS__MAX` sets `limits/max` (`config`).
pub const CONFIG_OVERRIDE_PREFIX: &str = "CONFIG_";
/// Set by Lambda: when present the router is served through the Lambda Runtime API (`runtime`).
pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
/// Address the router listens on when not on Lambda; default `127.0.0.1:0` (`runtime`).
pub const BIND_ADDR: &str = "BIND_ADDR";
/// How long a request served on a local port may run (milliseconds; default
/// 15000): its `http::Deadline`, which Lambda's context gives on Lambda.
/// The local stack sets it to the function's deployed timeout (`http`).
pub const LOCAL_INVOCATION_TIMEOUT_MS: &str = "LOCAL_INVOCATION_TIMEOUT_MS";
/// How often a scheduled function runs when not on Lambda (milliseconds;
/// default 60000), as its schedule would invoke it there (`runtime`).
pub const SCHEDULE_EVERY_MS: &str = "SCHEDULE_EVERY_MS";
/// The stage's token issuer: the exact `iss` of valid tokens (`auth`).
pub const AUTH_ISSUER: &str = "AUTH_ISSUER";
/// The issuer's JWKS; default `<AUTH_ISSUER>/.well-known/jwks.json` (`auth`).
pub const AUTH_JWKS_URL: &str = "AUTH_JWKS_URL";
/// The app clients whose tokens are accepted, comma-separated (`auth`).
pub const AUTH_CLIENT_IDS: &str = "AUTH_CLIENT_IDS";
/// Which of them are the deployment's machine clients, comma-separated: only
/// their client-credentials tokens may carry a service scope (`auth`).
pub const AUTH_SERVICE_CLIENT_IDS: &str = "AUTH_SERVICE_CLIENT_IDS";
/// Lambda's log level (`TRACE`…`FATAL`), preferred over [`RUST_LOG`] (`telemetry`).
pub const AWS_LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// `tracing-subscriber` filter directives, used when [`AWS_LAMBDA_LOG_LEVEL`] is unset (`telemetry`).
pub const RUST_LOG: &str = "RUST_LOG";
/// Set by Lambda (and by `cargo xtask` for the local stack): the access key the SDK signs with (`aws`).
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Set by Lambda (and by `cargo xtask` for the local stack): the secret key the SDK signs with (`aws`).
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Set by Lambda: the function's name, logged as `function_name` (`telemetry`, `metrics`).
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// Set by Lambda: memory in MB, logged as `function_memory_size` (`telemetry`).
pub const AWS_LAMBDA_FUNCTION_MEMORY_SIZE: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// Set by Lambda: the published version running, reported by `GET /health` (`http`).
pub const AWS_LAMBDA_FUNCTION_VERSION: &str = "AWS_LAMBDA_FUNCTION_VERSION";
/// CloudWatch namespace for EMF metrics, as in Powertools; falls back to [`APP_NAME`] (`metrics`).
/// The X-Ray daemon's address Lambda provides (`host:port`).
pub const AWS_XRAY_DAEMON_ADDRESS: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The Powertools metrics namespace.
pub const POWERTOOLS_METRICS_NAMESPACE: &str = "POWERTOOLS_METRICS_NAMESPACE";
/// Set to `true` to turn EMF output off, as in Powertools (`metrics`).
pub const POWERTOOLS_METRICS_DISABLED: &str = "POWERTOOLS_METRICS_DISABLED";

/// Reads a variable, treating an empty value as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
