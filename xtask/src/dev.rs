//! `cargo xtask dev`: the local stack and every service, until Ctrl-C.

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
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    stack.down().await;
    Ok(ExitCode::SUCCESS)
}
