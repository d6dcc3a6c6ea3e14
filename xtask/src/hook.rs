//! `cargo xtask hook before|after --service <name>`: runs a traffic hook
//! locally, as CodeDeploy would, against the local stack: the service's
//! binary published as version 2 behind the local Lambda Invoke endpoint
//! (alias `live`), a local CodeDeploy deploying 1 → 2, the hook's real
//! configuration and bundled checks, the hooks' machine client from the
//! local user pool and Secrets Manager. Prints the report and what CodeDeploy recorded.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use local_aws::codedeploy::{CodeDeploy, LambdaTarget};
use local_aws::lambda::LambdaInvoke;
use traffic_gate::Phase;

use crate::stack::{Logs, Stack, local_deployment};

/// Which hook.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    /// BeforeAllowTraffic: the target version, invoked directly.
    Before,
    /// AfterAllowTraffic: the live alias (now version 2), invoked.
    After,
}

/// Run a traffic hook locally.
#[derive(clap::Args)]
pub struct Args {
    /// The hook.
    which: Which,
    /// The service being "deployed".
    #[arg(long)]
    service: String,
    /// Seconds until the hook's deadline.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stack = Stack::up(Logs::Quiet).await?;
    let result = hook(&stack, &args).await;
    stack.down().await;
    result
}

async fn hook(stack: &Stack, args: &Args) -> anyhow::Result<ExitCode> {
    let Some(env) = stack.function_env(&args.service) else {
        bail!(
            "--service {}: no such service (have: {:?})",
            args.service,
            stack.services.iter().map(|r| &r.service.name).collect::<Vec<_>>()
        );
    };
    let invoke = LambdaInvoke::start().await?;
    invoke
        .publish(&args.service, "2", &stack.binary(&args.service), &env)
        .await?;
    invoke.alias(&args.service, "live", "2").await;
    let codedeploy = CodeDeploy::start().await?;
    let target = LambdaTarget {
        function_name: args.service.clone(),
        alias: String::from("live"),
        current_version: String::from("1"),
        target_version: String::from("2"),
    };
    codedeploy
        .add_deployment("d-LOCAL", target, &["local-hook-execution"])
        .await;

    let phase = match args.which {
        Which::Before => Phase::BeforeAllowTraffic,
        Which::After => Phase::AfterAllowTraffic,
    };
    let sdk = stack.sdk_config().await;
    let deployment = local_deployment();
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut gate = traffic_gate::lambda::Hook::load(phase, &sdk, Ok(deployment))
        .await
        .gate(deadline)
        .await;
    gate.clients = stand_in_clients(&codedeploy, &invoke).await;
    // The checks reach the other services at their local URLs.
    for other in stack.services.iter().filter(|r| r.service.name != args.service) {
        gate.plans.add_variable(
            &args.service,
            &format!("{}_url", other.service.name),
            serde_json::Value::String(other.url.clone()),
        );
    }
    let event = traffic_gate::parse_event(
        &serde_json::json!({"DeploymentId": "d-LOCAL", "LifecycleEventHookExecutionId": "local-hook-execution"}),
    )?;
    let report = gate.handle(&event, deadline).await;
    println!("{}", serde_json::to_string_pretty(&report).context("report")?);
    let statuses = codedeploy.statuses("d-LOCAL", "local-hook-execution").await;
    println!(
        "\n{} for {}: CodeDeploy recorded {statuses:?}",
        phase.as_str(),
        args.service
    );
    Ok(if report.verdict {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The hook's clients pointed at the local CodeDeploy and Lambda Invoke stand-ins.
pub async fn stand_in_clients(codedeploy: &CodeDeploy, invoke: &LambdaInvoke) -> traffic_gate::Clients {
    traffic_gate::Clients {
        lambda: aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(invoke.endpoint()).await),
        ..traffic_gate::Clients::new(&local_aws::sdk_config_at(codedeploy.endpoint()).await)
    }
}
