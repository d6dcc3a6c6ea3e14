//! `cargo xtask dev`: the local stack, every service and its scheduled
//! functions, until Ctrl-C. A service that dies is started again.

use std::process::ExitCode;

use crate::stack::{Logs, Stack};

/// Start the local stack and every service on a local port until Ctrl-C.
#[derive(clap::Args)]
pub struct Args {}

pub async fn run(_: Args) -> anyhow::Result<ExitCode> {
    let stack = Stack::up(Logs::Echo).await?;
    println!("local AWS (moto): {}", stack.aws_endpoint());
    for running in &stack.services {
        println!(
            "{:<12} {}{}",
            running.service.name, running.url, running.service.spec.route_prefix
        );
    }
    for scheduled in &stack.scheduled {
        println!(
            "{:<12} scheduled every {} s (EventBridge on AWS)",
            scheduled.name,
            crate::stack::LOCAL_SCHEDULE.as_secs()
        );
    }
    println!("A service that dies is started again on its address. Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    stack.down().await;
    Ok(ExitCode::SUCCESS)
}
