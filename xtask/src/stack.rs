//! The local stack with every service running on it: used by `dev` and `demo`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use local_aws::Moto;
use local_aws::registry::Service;
use shared::naming::Deployment;
use tokio::process::Child;

/// The app and stage every local process runs as.
pub fn local_deployment() -> Deployment {
    Deployment::new("fintech", "local")
}

/// One service process and the URL it listens on.
pub struct Running {
    /// The registry entry.
    pub service: Service,
    /// `http://127.0.0.1:port`.
    pub url: String,
    _child: Child,
}

/// moto, seeded, with every service running against it.
pub struct Stack {
    /// The services, in registry order.
    pub services: Vec<Running>,
    moto: Moto,
    bin_dir: PathBuf,
}

/// Whether service log lines are echoed to the terminal.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// Echo each line, prefixed with the service's name.
    Echo,
    /// Keep quiet.
    Quiet,
}

/// Path of a binary built with cargo profile `profile` (`dev` builds into `debug/`).
pub fn binary(profile: &str, name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| local_aws::workspace_root().join("target"));
    target.join(if profile == "dev" { "debug" } else { profile }).join(name)
}

/// Runs `cargo build` with cargo profile `profile` and `args` (e.g. `-p accounts`).
pub async fn build(args: &[&str], profile: &str) -> anyhow::Result<()> {
    let mut command = local_aws::process::cargo();
    command
        .args(["build", "--quiet", "--profile", profile])
        .current_dir(local_aws::workspace_root());
    command.args(args);
    let status = command.status().await.context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    Ok(())
}

/// `CONFIG_<CALLEE>_URL` for each service `service` calls, from those running.
fn callee_env(service: &Service, running: &[Running]) -> Vec<(String, String)> {
    service
        .spec
        .calls
        .iter()
        .filter_map(|c| running.iter().find(|r| &r.service.name == c))
        .map(|r| {
            (
                shared::config::override_var(&format!("{}_url", r.service.name)),
                r.url.clone(),
            )
        })
        .collect()
}

impl Stack {
    /// The environment service `name` runs with on this stack (local AWS,
    /// deployment, the URLs of the services it calls), e.g. to run it again
    /// as a Lambda function version.
    pub fn function_env(&self, name: &str) -> Option<Vec<(String, String)>> {
        let service = &self.services.iter().find(|r| r.service.name == name)?.service;
        let mut env: Vec<(String, String)> = service_env(&self.moto, &local_deployment())
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        env.extend(callee_env(service, &self.services));
        Some(env)
    }

    /// Starts moto, seeds it from the registry, builds and starts every service.
    pub async fn up(logs: Logs) -> anyhow::Result<Self> {
        crate::setup::ensure().await?;
        let services = local_aws::registry::load()?;
        let bin_dir = local_aws::process::build_workspace().await?;
        let moto = Moto::start().await?;
        let deployment = local_deployment();
        local_aws::seed::seed(&moto.sdk_config().await, &deployment, &services).await?;
        let mut running: Vec<Running> = Vec::new();
        let mut waiting = services;
        // Callees first, so each caller is told where they listen.
        while !waiting.is_empty() {
            let ready = waiting
                .iter()
                .position(|s| {
                    s.spec
                        .calls
                        .iter()
                        .all(|c| running.iter().any(|r| &r.service.name == c))
                })
                .with_context(|| {
                    format!(
                        "services call each other in a cycle or call unknown services: {:?}",
                        waiting.iter().map(|s| &s.name).collect::<Vec<_>>()
                    )
                })?;
            let service = waiting.remove(ready);
            let callees = callee_env(&service, &running);
            let (child, url) = spawn(
                &bin_dir.join(&service.name),
                &service.name,
                &moto,
                &deployment,
                &callees,
                logs,
            )
            .await?;
            running.push(Running {
                service,
                url,
                _child: child,
            });
        }
        Ok(Self {
            services: running,
            moto,
            bin_dir,
        })
    }

    /// The path of service `name`'s binary, as this stack runs it.
    pub fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// An SDK configuration for the local AWS stand-in.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.moto.sdk_config().await
    }

    /// The moto endpoint.
    pub fn aws_endpoint(&self) -> &str {
        self.moto.endpoint()
    }

    /// Stops the services and moto.
    pub async fn down(self) {
        drop(self.services);
        self.moto.stop().await;
    }
}

/// The environment every local service process gets.
pub fn service_env(moto: &Moto, deployment: &Deployment) -> Vec<(&'static str, String)> {
    let mut env = moto.env();
    env.extend([
        (shared::env::APP_NAME, deployment.app.clone()),
        (shared::env::STAGE, deployment.stage.clone()),
        (shared::env::BIND_ADDR, String::from("127.0.0.1:0")),
        (shared::env::POWERTOOLS_METRICS_DISABLED, String::from("true")),
    ]);
    env
}

/// Starts a service binary and waits for its `listening` log line.
async fn spawn(
    binary: &std::path::Path,
    name: &str,
    moto: &Moto,
    deployment: &Deployment,
    callees: &[(String, String)],
    logs: Logs,
) -> anyhow::Result<(Child, String)> {
    let env: Vec<(String, String)> = service_env(moto, deployment)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(callees.iter().cloned())
        .collect();
    let echo = (logs == Logs::Echo).then(|| name.to_owned());
    local_aws::process::serve(binary, &env, echo)
        .await
        .with_context(|| format!("starting {} (see its log above)", binary.display()))
}
