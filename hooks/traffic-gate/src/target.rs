//! Finding what a deployment deploys: `ListDeploymentTargets`, then
//! `GetDeploymentTarget` → `lambdaTarget.lambdaFunctionInfo`. Each call's
//! attempt has its own timeout; a stalled call is retried like a throttled one.

use std::future::Future;
use std::time::{Duration, Instant};

/// The function and versions of a Lambda deployment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Target {
    /// Function name.
    pub function_name: String,
    /// The alias being shifted.
    pub alias: String,
    /// The version the alias pointed at.
    pub current_version: String,
    /// The version being deployed.
    pub target_version: String,
}

/// Looks the target up, retrying throttling, 5xx and attempts that ran out
/// of time until `until`; the first attempt's calls get `attempt_timeout`
/// each, later ones more (see `attempt_limit`).
pub async fn lookup(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    until: Instant,
    attempt_timeout: Duration,
) -> Result<Target, String> {
    let mut attempt = 0;
    loop {
        let limit = crate::attempt_limit(
            attempt_timeout,
            attempt + 1,
            until.saturating_duration_since(Instant::now()),
        );
        match once(client, deployment_id, until, limit).await {
            Ok(target) => return Ok(target),
            Err((message, true)) if crate::backoff(attempt, until).await => {
                tracing::warn!(error = %message, attempt, "target lookup failed; retrying");
                attempt += 1;
            }
            Err((message, _)) => return Err(message),
        }
    }
}

/// An SDK error as (message, worth retrying).
fn classify<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> (String, bool)
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: shared::aws::HasStatus + std::fmt::Debug,
{
    (
        aws_sdk_codedeploy::error::DisplayErrorContext(err).to_string(),
        shared::aws::is_transient(err),
    )
}

/// `call` given at most `attempt_timeout`, and never past `until`; running
/// out of time is worth retrying.
async fn bounded<T, E>(
    operation: &str,
    call: impl Future<Output = Result<T, E>>,
    until: Instant,
    attempt_timeout: Duration,
    classify: impl FnOnce(&E) -> (String, bool),
) -> Result<T, (String, bool)> {
    let limit = attempt_timeout.min(until.saturating_duration_since(Instant::now()));
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result.map_err(|e| classify(&e)),
        Err(_) => Err((
            format!("CodeDeploy {operation} gave no answer within {} ms", limit.as_millis()),
            true,
        )),
    }
}

/// One attempt; the error says whether it is worth retrying.
async fn once(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    until: Instant,
    attempt_timeout: Duration,
) -> Result<Target, (String, bool)> {
    let listed = bounded(
        "ListDeploymentTargets",
        client.list_deployment_targets().deployment_id(deployment_id).send(),
        until,
        attempt_timeout,
        classify,
    )
    .await?;
    let target_id = listed
        .target_ids()
        .first()
        .cloned()
        .ok_or_else(|| (format!("deployment {deployment_id} has no targets"), false))?;
    let got = bounded(
        "GetDeploymentTarget",
        client
            .get_deployment_target()
            .deployment_id(deployment_id)
            .target_id(&target_id)
            .send(),
        until,
        attempt_timeout,
        classify,
    )
    .await?;
    let info = got
        .deployment_target()
        .and_then(|t| t.lambda_target())
        .and_then(|l| l.lambda_function_info())
        .ok_or_else(|| {
            (
                format!("target {target_id} of {deployment_id} is not a Lambda target"),
                false,
            )
        })?;
    let field = |value: Option<&str>, name: &str| {
        value.map(str::to_owned).ok_or_else(|| {
            (
                format!("target {target_id}: lambdaFunctionInfo.{name} is missing"),
                false,
            )
        })
    };
    Ok(Target {
        function_name: field(info.function_name(), "functionName")?,
        alias: field(info.function_alias(), "functionAlias")?,
        current_version: field(info.current_version(), "currentVersion")?,
        target_version: field(info.target_version(), "targetVersion")?,
    })
}
