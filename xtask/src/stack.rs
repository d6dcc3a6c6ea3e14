//! The local stack with every service running on it: used by `dev`, `demo`,
//! `postman`, `hook`, `test` and `bench load`. A service process that dies
//! is started again on the same address (as Lambda starts a new sandbox),
//! and says so; each service's scheduled functions run every
//! [`LOCAL_SCHEDULE`].

use std::path::PathBuf;

use std::time::Duration;

use anyhow::{Context, bail};
use local_aws::Moto;
use local_aws::identity::Identity;
use local_aws::process::Process;
use local_aws::registry::Service;
use shared::naming::Deployment;
use tokio::process::Child;
use tokio::task::JoinHandle;

/// The app and stage every local process runs as.
pub fn local_deployment() -> Deployment {
    Deployment::new("fintech", "local")
}

/// How often scheduled functions run locally (EventBridge's smallest rate,
/// one minute, is too slow to watch).
pub const LOCAL_SCHEDULE: Duration = Duration::from_secs(2);

/// The most times one process is started again before the stack gives up on it.
const MAX_RESTARTS: u32 = 20;

/// One service process and the URL it listens on.
pub struct Running {
    /// The registry entry.
    pub service: Service,
    /// `http://127.0.0.1:port`, the same after a restart.
    pub url: String,
    supervisor: JoinHandle<()>,
}

/// A scheduled function running locally.
pub struct Scheduled {
    /// Its binary's name.
    pub name: String,
    _child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

/// moto, seeded, with every service running against it.
pub struct Stack {
    /// The services, in registry order.
    pub services: Vec<Running>,
    /// The scheduled functions.
    pub scheduled: Vec<Scheduled>,
    /// The stage's user pool: customers sign in to it, services verify its
    /// tokens, the hooks' client gets its own from it.
    pub identity: Identity,
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
    local_aws::process::target_dir()
        .join(if profile == "dev" { "debug" } else { profile })
        .join(name)
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
        Some(process_env(
            service,
            &self.moto,
            &local_deployment(),
            &self.identity,
            &self.services,
        ))
    }

    /// Starts moto, seeds it from the registry, builds and starts every service.
    pub async fn up(logs: Logs) -> anyhow::Result<Self> {
        crate::setup::ensure().await?;
        let services = local_aws::registry::load()?;
        let bin_dir = local_aws::process::build_workspace().await?;
        let moto = Moto::start().await?;
        let deployment = local_deployment();
        let sdk = moto.sdk_config().await;
        local_aws::seed::seed(&sdk, &deployment, &services).await?;
        let identity = local_aws::identity::seed(&sdk, moto.endpoint(), &deployment, &services).await?;
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
            let env = process_env(&service, &moto, &deployment, &identity, &running);
            let echo = (logs == Logs::Echo).then(|| service.name.clone());
            let process = Process::start(&bin_dir.join(&service.name), &env, echo)
                .await
                .with_context(|| format!("starting {} (see its log above)", service.name))?;
            running.push(Running {
                url: process.url().to_owned(),
                supervisor: tokio::spawn(supervise(service.name.clone(), process)),
                service,
            });
        }
        let mut scheduled = Vec::new();
        for service in &running {
            for name in service.service.spec.schedules.keys() {
                let mut env = process_env(&service.service, &moto, &deployment, &identity, &running);
                env.push((
                    shared::env::SCHEDULE_EVERY_MS.to_owned(),
                    LOCAL_SCHEDULE.as_millis().to_string(),
                ));
                let echo = (logs == Logs::Echo).then(|| name.clone());
                let (child, _) = local_aws::process::spawn_until(&bin_dir.join(name), &env, echo, "scheduled locally")
                    .await
                    .with_context(|| format!("starting scheduled function {name}"))?;
                scheduled.push(Scheduled {
                    name: name.clone(),
                    _child: child,
                });
            }
        }
        Ok(Self {
            services: running,
            scheduled,
            identity,
            moto,
            bin_dir,
        })
    }

    /// A token of the hooks' machine client with every machine scope
    /// (`accounts/service`, `accounts/back-office`, …), for the calls only
    /// the back office may make (credits, debits, voids).
    pub async fn service_token(&self) -> anyhow::Result<String> {
        self.identity
            .service_token()
            .await
            .context("a service token for the hooks' client from the local user pool")
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
        drop(self.scheduled);
        drop(self.services);
        self.moto.stop().await;
    }
}

/// Starts a service again whenever its process exits, as Lambda starts a
/// new sandbox, and says so.
async fn supervise(name: String, mut process: Process) {
    for restart in 1..=MAX_RESTARTS {
        let status = process.exited().await;
        let how = status.map_or_else(|| String::from("was lost"), |s| format!("exited ({s})"));
        eprintln!(
            "stack: {name} {how}; starting a new one on {} as Lambda would start a new sandbox (restart {restart} of {MAX_RESTARTS})",
            process.url()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Err(err) = process.restart().await {
            eprintln!("stack: {name} could not be started again: {err}");
            return;
        }
    }
    eprintln!("stack: {name} died {MAX_RESTARTS} times; not starting it again");
}

/// The environment a process of `service` runs with: the local stack, the
/// deployment, the user pool whose tokens it accepts, its function timeout
/// as the local request deadline, and the URLs of the services it calls.
fn process_env(
    service: &Service,
    moto: &Moto,
    deployment: &Deployment,
    identity: &Identity,
    running: &[Running],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = service_env(moto, deployment)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(identity.env());
    if let Some(timeout) = service.deploy.timeout {
        env.push((
            shared::env::LOCAL_INVOCATION_TIMEOUT_MS.to_owned(),
            (timeout * 1000).to_string(),
        ));
    }
    env.extend(callee_env(service, running));
    env
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
