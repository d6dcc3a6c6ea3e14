//! The rehearsal's customer traffic: the service's `postman.traffic`
//! folders (what a customer does, from the registry) run again and again
//! through the API stage, with a signed-in customer's token, at a steady
//! request rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use collection_runner::collection::{Collection, load_collection, load_variables, scope_of};
use collection_runner::report::Summary;
use collection_runner::runner::{self, Options};
use collection_runner::sandbox::Sandbox;
use collection_runner::transport::Http;
use serde_json::Value;

use local_aws::registry::Service;

use crate::stack::Stack;

/// The longest a customer request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One customer's run of the service's traffic folders.
pub struct Traffic {
    collection: Collection,
    options: Options,
    /// Requests in one run of the folders.
    pub requests_per_run: usize,
    /// The folders, for the report.
    pub folders: Vec<String>,
}

/// What the customers saw.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    /// Runs of the folders started.
    pub runs: usize,
    /// Requests sent.
    pub requests: usize,
    /// Failed assertions and request errors, as `item: test: message`.
    pub failures: Vec<String>,
    /// When each run started, and how many of the failures are its own.
    pub per_run: Vec<(SystemTime, usize)>,
}

impl Traffic {
    /// The traffic of `service` on `stack`: its registry's traffic folders,
    /// the stage's local environment, `<service>_url` through the API stage
    /// at `stage_url`, the other services where they run, a customer's token
    /// as `access_token` and the hooks' service token as `service_token`:
    /// the local pool's only back-office client stands in for the stage's
    /// back office, crediting the customer's account as a deposit would
    /// (acting for that customer, `X-On-Behalf-Of`). The hooks never run
    /// these folders on a stage: theirs write synthetic data only.
    pub async fn new(stack: &Stack, service: &str, stage_url: &str, customer_token: &str) -> anyhow::Result<Self> {
        let running = stack
            .services
            .iter()
            .find(|r| r.service.name == service)
            .with_context(|| format!("{service} is not running"))?;
        let (collection, folders, requests_per_run) = customer_folders(&running.service)?;
        let postman_dir = local_aws::workspace_root().join("postman");
        let environment = load_variables(&postman_dir.join("local.postman_environment.json"))?;
        let mut options = Options {
            environment: scope_of(&environment.values),
            environment_name: environment.name,
            folders: folders.clone(),
            timeout_request: Some(REQUEST_TIMEOUT),
            working_dir: postman_dir,
            ..Options::default()
        };
        let service_token = stack.identity.service_token().await?;
        let urls = stack
            .services
            .iter()
            .filter(|r| r.service.name != service)
            .map(|r| (r.service.name.as_str(), r.url.as_str()))
            .chain([(service, stage_url)]);
        for (name, url) in urls {
            options.environment.set(format!("{name}_url"), Value::from(url));
        }
        options.environment.set(
            traffic_gate::credentials::TOKEN_VARIABLE.to_owned(),
            Value::from(customer_token),
        );
        options.environment.set(
            traffic_gate::credentials::SERVICE_TOKEN_VARIABLE.to_owned(),
            Value::from(service_token),
        );
        Ok(Self {
            collection,
            options,
            requests_per_run,
            folders,
        })
    }

    /// Starts a run of the folders as often as makes `rate` requests per
    /// second, until `running` clears; what the customers saw.
    pub async fn send(self: Arc<Self>, rate: u32, running: Arc<AtomicBool>) -> Seen {
        let http = Arc::new(Http::new(false));
        // Booted sandboxes, each used by one run at a time: booting
        // postman-sandbox costs a tenth of a second of CPU, which at the
        // traffic's rate would starve the services the rehearsal measures.
        // The customers' runs are one synthetic customer's, so what one run's
        // scripts leave in a sandbox's shared scope may reach the next.
        let sandboxes: Arc<std::sync::Mutex<Vec<Sandbox>>> = Arc::default();
        let mut ticks = tokio::time::interval(Duration::from_secs(1) * self.requests_per_run as u32 / rate);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut runs = tokio::task::JoinSet::new();
        // Bounded by the deployment's end, which `running` reports.
        while running.load(Ordering::Relaxed) {
            ticks.tick().await;
            let (traffic, http, sandboxes) = (self.clone(), http.clone(), sandboxes.clone());
            let started = SystemTime::now();
            runs.spawn(async move {
                let idle = sandboxes.lock().expect("no run panics holding the pool").pop();
                let sandbox = match idle {
                    Some(sandbox) => sandbox,
                    None => match Sandbox::new(traffic.options.limits) {
                        Ok(sandbox) => sandbox,
                        Err(err) => return (started, Err(err)),
                    },
                };
                let summary = runner::run_in(&sandbox, &traffic.collection, &traffic.options, http.as_ref()).await;
                sandboxes.lock().expect("no run panics holding the pool").push(sandbox);
                (started, Ok(summary))
            });
        }
        let mut seen = Seen::default();
        for (started, run) in runs.join_all().await {
            seen.runs += 1;
            let before = seen.failures.len();
            match run {
                Ok(summary) => seen.absorb(&summary),
                Err(err) => seen.failures.push(format!("the sandbox: {err}")),
            }
            seen.per_run.push((started, seen.failures.len() - before));
        }
        seen
    }
}

/// `service`'s collection, its registry's traffic folders, and how many
/// requests one run of them sends.
pub fn customer_folders(service: &Service) -> anyhow::Result<(Collection, Vec<String>, usize)> {
    let name = &service.name;
    let Some(postman) = service.spec.postman.as_ref().filter(|p| !p.traffic.is_empty()) else {
        bail!(
            "--service {name}: its registry entry names no customer traffic: add `traffic = [\"<folder>\"]` to [package.metadata.service.postman] (a folder of its collection that a customer would run, safe to repeat)"
        );
    };
    let path = local_aws::workspace_root()
        .join("postman")
        .join(format!("{}.postman_collection.json", postman.collection));
    let collection = load_collection(&path)?;
    let requests = runner::count(&collection, &postman.traffic);
    if requests == 0 {
        bail!(
            "--service {name}: postman.traffic {:?}: {} has no such folder, or it holds no request",
            postman.traffic,
            path.display()
        );
    }
    Ok((collection, postman.traffic.clone(), requests))
}

impl Seen {
    /// The runs started at or after `since`, and their failures.
    pub fn since(&self, since: SystemTime) -> (usize, usize) {
        self.per_run
            .iter()
            .filter(|(started, _)| *started >= since)
            .fold((0, 0), |(runs, failures), (_, failed)| (runs + 1, failures + failed))
    }

    fn absorb(&mut self, summary: &Summary) {
        self.requests += summary.executions.iter().filter(|e| e.request.is_some()).count();
        for (execution, failure) in summary.failures() {
            self.failures.push(format!(
                "{}: {}{}",
                execution.name,
                failure.test.as_deref().map(|t| format!("{t}: ")).unwrap_or_default(),
                failure.message
            ));
        }
        self.failures
            .extend(summary.run_failures.iter().map(|f| format!("the run: {}", f.message)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_names_customer_traffic_its_collection_holds() {
        for service in local_aws::registry::load().unwrap() {
            let (_, folders, requests) = customer_folders(&service).unwrap();
            assert!(requests > 0, "{}: {folders:?}", service.name);
        }
    }

    #[test]
    fn a_service_without_traffic_or_with_a_missing_folder_is_refused_saying_what_to_add() {
        let mut service = local_aws::registry::load().unwrap().remove(0);
        let postman = service.spec.postman.as_mut().unwrap();
        postman.traffic = vec![String::from("no such folder")];
        let err = customer_folders(&service).err().unwrap().to_string();
        assert!(
            err.contains("no such folder") && err.contains("postman.traffic"),
            "{err}"
        );
        service.spec.postman.as_mut().unwrap().traffic.clear();
        let err = customer_folders(&service).err().unwrap().to_string();
        assert!(err.contains("traffic = [") && err.contains(&service.name), "{err}");
    }
}
