//! `cargo xtask dev`: the local stack, every service and its scheduled
//! functions, until Ctrl-C. A service that dies is started again. It prints
//! the local user pool and a signed-in customer to call the services as.

use std::process::ExitCode;

use anyhow::Context;

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
    let identity = &stack.identity;
    let customer = identity
        .customer(&stack.sdk_config().await, "dev")
        .await
        .context("signing the dev customer up in the local user pool")?;
    println!("\nuser pool {} (issuer {})", identity.pool_id, identity.settings.issuer);
    println!(
        "  customers' client {}: customer `dev`, password {} (subject {})",
        identity.customer_client_id, customer.password, customer.subject
    );
    println!(
        "  a new token: InitiateAuth USER_PASSWORD_AUTH with that client at {}",
        stack.aws_endpoint()
    );
    println!("  customers' scopes: {}", identity.customer_scopes.join(" "));
    println!(
        "  the hooks' client {}: client_credentials at {} (every scope; `scope=` narrows it)",
        identity.machine_client_id, identity.token_url
    );
    for (service, client) in &identity.service_clients {
        println!(
            "  {service}'s client {}: client_credentials, scopes {}",
            client.client_id,
            client.scopes.join(" ")
        );
    }
    println!("\nAuthorization: Bearer {}   (customer `dev`)\n", customer.access_token);
    println!(
        "service_token (the hooks' client, back-office scopes, for credits/debits/voids):\n{}\n",
        stack.service_token().await?
    );
    println!("A service that dies is started again on its address. Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    stack.down().await;
    Ok(ExitCode::SUCCESS)
}
