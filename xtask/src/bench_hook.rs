//! `cargo xtask bench hook`: the time from a CodeDeploy event to a reported
//! verdict for a 20-request collection run through the Lambda-invoke
//! transport: target lookup and verdict on the local CodeDeploy, `/health`
//! and the 20 requests invoked on `echo_lambda` (release build) behind the
//! local Lambda Invoke endpoint.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use collection_runner::collection::load_collection;
use local_aws::codedeploy::{CodeDeploy, LambdaTarget};
use local_aws::lambda::LambdaInvoke;
use traffic_gate::{Gate, Phase, Plan, Plans, Settings};

use crate::stack::{binary, build};

/// Runs `runs` verdicts and prints a Markdown table of the medians.
pub async fn run(runs: usize) -> anyhow::Result<ExitCode> {
    build(&["-p", "local-aws", "--example", "echo_lambda"], "release").await?;
    let function = binary("release", "examples/echo_lambda");
    let root = local_aws::workspace_root();
    let collection =
        load_collection(&root.join("hooks/traffic-gate/tests/data/bench-twenty-requests.postman_collection.json"))?;
    let codedeploy = CodeDeploy::start().await?;
    let invoke = LambdaInvoke::start().await?;
    invoke.publish("echo", "2", &function, &[]).await?;
    let hooks: Vec<String> = (0..=runs).map(|i| format!("bench-{i}")).collect();
    let target = LambdaTarget {
        function_name: String::from("echo"),
        alias: String::from("live"),
        current_version: String::from("1"),
        target_version: String::from("2"),
    };
    codedeploy
        .add_deployment("d-BENCH", target, &hooks.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let clients = crate::hook::stand_in_clients(&codedeploy, &invoke).await;
    let mut plans = Plans::default();
    plans.insert(
        "echo",
        Plan {
            service: String::from("echo"),
            collection: Arc::new(collection),
            environment: Default::default(),
            environment_name: None,
            before_folders: vec![String::from("pre-traffic")],
            after_folders: Vec::new(),
            url_variable: String::from("echo_url"),
            live_url: None,
            variables: Vec::new(),
            function_timeout: Duration::from_secs(3),
        },
    );
    let gate = Gate {
        phase: Phase::BeforeAllowTraffic,
        plans,
        settings: Settings::default(),
        clients,
        credentials: traffic_gate::credentials::Credentials::None,
        unusable: None,
    };
    let mut times = Vec::new();
    for (i, hook) in hooks.iter().enumerate() {
        let event = traffic_gate::parse_event(
            &serde_json::json!({"DeploymentId": "d-BENCH", "LifecycleEventHookExecutionId": hook}),
        )?;
        let started = Instant::now();
        let report = gate.handle(&event, Instant::now() + Duration::from_secs(60)).await;
        let elapsed = started.elapsed();
        if !report.verdict || report.assertions.len() != 60 {
            bail!("bench verdict was not a full success: {:?}", report.reason);
        }
        if i > 0 {
            times.push(elapsed);
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!(
        "BeforeAllowTraffic verdict, 20 requests (60 assertions) + /health through Lambda Invoke, {runs} runs after one warm-up:\n"
    );
    println!("| median | slowest | target |");
    println!("|---|---|---|");
    println!(
        "| {:.1} ms | {:.1} ms | ≤ 1000 ms |",
        median.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
    Ok(if median <= Duration::from_secs(1) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
