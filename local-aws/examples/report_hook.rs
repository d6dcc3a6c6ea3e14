//! A CodeDeploy lifecycle hook for the engine's tests: on each event
//! (`DeploymentId`, `LifecycleEventHookExecutionId`) it reports
//! `HOOK_VERDICT` (`Succeeded` or `Failed`) through
//! `PutLifecycleEventHookExecutionStatus`, or reports nothing when
//! `HOOK_VERDICT=silent`, as a hook that hangs or crashes would.

use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HookEvent {
    deployment_id: String,
    lifecycle_event_hook_execution_id: String,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let verdict = std::env::var("HOOK_VERDICT").unwrap_or_else(|_| String::from("Succeeded"));
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&sdk);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HookEvent>| {
        let codedeploy = codedeploy.clone();
        let verdict = verdict.clone();
        async move {
            if verdict != "silent" {
                codedeploy
                    .put_lifecycle_event_hook_execution_status()
                    .deployment_id(event.payload.deployment_id)
                    .lifecycle_event_hook_execution_id(event.payload.lifecycle_event_hook_execution_id)
                    .status(aws_sdk_codedeploy::types::LifecycleEventStatus::from(verdict.as_str()))
                    .send()
                    .await?;
            }
            Ok::<_, Error>(serde_json::json!({"reported": verdict}))
        }
    }))
    .await
}
