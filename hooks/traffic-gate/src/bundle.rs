//! The checks bundled into the hook binaries at build time (`build.rs`): each
//! registered service's Postman collection and folders per phase, and each
//! stage's environment, so a hook needs no file at run time.

use std::sync::Arc;

use collection_runner::collection::{VariableFile, parse_json, scope_of};

use crate::plan::{Plan, Plans};

/// One service as bundled.
#[derive(Debug)]
pub struct BundledService {
    /// The function name (the service's package name).
    pub function: &'static str,
    /// The collection's file name, for error messages.
    pub collection_file: &'static str,
    /// The collection's JSON.
    pub collection: &'static str,
    /// Folders before traffic.
    pub before: &'static [&'static str],
    /// Folders after traffic.
    pub after: &'static [&'static str],
    /// The names of the scopes of its resource server (`read`, `service`).
    pub scopes: &'static [&'static str],
    /// Its function's deployed timeout in seconds.
    pub timeout_seconds: u64,
}

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// Why the bundled checks could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// No environment file for the stage.
    #[error("no postman/{0}.postman_environment.json was bundled (stages: {1})")]
    UnknownStage(String, String),
    /// A bundled file does not parse.
    #[error(transparent)]
    Invalid(#[from] collection_runner::collection::LoadError),
}

/// The scopes the hooks ask their tokens for, over every bundled service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// Every scope a customer may have (`accounts/read`, …).
    pub customer: Vec<String>,
    /// Every machine scope (`accounts/service`, `accounts/back-office`).
    pub service: Vec<String>,
}

/// The plans for `stage` (every bundled service with the stage's
/// environment and, after traffic, its live URL when given), and the scopes
/// of the services they check.
pub fn plans(stage: &str, live_urls: &[(String, String)]) -> Result<(Plans, Scopes), BundleError> {
    let (_, text) = ENVIRONMENTS.iter().find(|(s, _)| *s == stage).ok_or_else(|| {
        BundleError::UnknownStage(
            stage.to_owned(),
            ENVIRONMENTS.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", "),
        )
    })?;
    let environment: VariableFile = parse_json(
        std::path::Path::new(&format!("postman/{stage}.postman_environment.json")),
        text,
    )?;
    let mut plans = Plans::default();
    let mut scopes = Scopes::default();
    for service in SERVICES {
        let collection = parse_json(
            std::path::Path::new(&format!("postman/{}", service.collection_file)),
            service.collection,
        )?;
        let strings = |list: &[&str]| list.iter().map(|f| (*f).to_owned()).collect();
        plans.insert(
            service.function,
            Plan {
                service: service.function.to_owned(),
                collection: Arc::new(collection),
                environment: scope_of(&environment.values),
                environment_name: environment.name.clone(),
                before_folders: strings(service.before),
                after_folders: strings(service.after),
                url_variable: format!("{}_url", service.function),
                live_url: live_urls
                    .iter()
                    .find(|(f, _)| f == service.function)
                    .map(|(_, url)| url.clone()),
                // The other services' live URLs reach this collection as
                // `<function>_url`, over the environment file's values.
                variables: live_urls
                    .iter()
                    .filter(|(f, _)| f != service.function)
                    .map(|(f, url)| (format!("{f}_url"), serde_json::Value::String(url.clone())))
                    .collect(),
                function_timeout: std::time::Duration::from_secs(service.timeout_seconds),
            },
        );
        for name in service.scopes {
            let scope = format!("{}/{name}", service.function);
            if shared::auth::is_machine_scope(name) {
                scopes.service.push(scope);
            } else {
                scopes.customer.push(scope);
            }
        }
    }
    Ok((plans, scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_service_is_bundled_with_its_folders() {
        let (plans, scopes) = plans("local", &[]).unwrap();
        for function in ["accounts", "payments"] {
            let plan = plans.get(function).unwrap_or_else(|| panic!("{function} bundled"));
            assert_eq!(plan.url_variable, format!("{function}_url"));
            let registered = local_aws::registry::load()
                .unwrap()
                .into_iter()
                .find(|s| s.name == function)
                .and_then(|s| s.deploy.timeout);
            assert_eq!(
                Some(plan.function_timeout.as_secs()),
                registered,
                "{function}: the deployed timeout from the registry"
            );
            assert!(
                plan.before_folders.contains(&String::from("pre-traffic")),
                "{:?}",
                plan.before_folders
            );
            assert!(
                plan.after_folders.contains(&String::from("post-traffic")),
                "{:?}",
                plan.after_folders
            );
            for folder in plan.before_folders.iter().chain(&plan.after_folders) {
                assert!(
                    collection_runner::runner::count(&plan.collection, std::slice::from_ref(folder)) > 0,
                    "{function}: folder {folder} is in the collection"
                );
            }
            assert!(scopes.customer.contains(&format!("{function}/read")), "{scopes:?}");
        }
        assert_eq!(
            scopes.service,
            [
                "accounts/back-office",
                "accounts/service",
                "payments/back-office",
                "payments/service"
            ]
        );
        assert_eq!(
            plans.get("accounts").unwrap().environment_name.as_deref(),
            Some("local")
        );
    }

    /// The hooks' service token is the back office's: acting for no one it
    /// could touch any customer's account. Every request of the folders the
    /// hooks run that sends it names the owner it acts for, so the back
    /// office works on the collection's own (synthetic) accounts only.
    #[test]
    fn every_back_office_request_of_the_hooks_names_the_owner_it_acts_for() {
        use collection_runner::collection::{Item, RequestSpec};
        fn check(items: &[Item], service: &str, path: &str, checked: &mut usize) {
            for item in items {
                let here = format!("{path}/{}", item.name);
                if let Some(children) = &item.item {
                    check(children, service, &here, checked);
                }
                let Some(RequestSpec::Full(request)) = &item.request else {
                    continue;
                };
                let token = request.auth.as_ref().and_then(|a| a.param("token")).unwrap_or_default();
                if token != format!("{{{{{}}}}}", crate::credentials::SERVICE_TOKEN_VARIABLE) {
                    continue;
                }
                let on_behalf_of = request
                    .header
                    .enabled()
                    .into_iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(shared::auth::ON_BEHALF_OF_HEADER.as_str()));
                assert!(
                    on_behalf_of.is_some_and(|(_, value)| !value.trim().is_empty()),
                    "{service}: {here} sends the service token without X-On-Behalf-Of"
                );
                *checked += 1;
            }
        }
        let (plans, _) = plans("local", &[]).unwrap();
        let mut checked = 0;
        for function in ["accounts", "payments"] {
            let plan = plans.get(function).unwrap();
            let folders: Vec<&String> = plan.before_folders.iter().chain(&plan.after_folders).collect();
            for folder in plan.collection.item.iter().filter(|i| folders.contains(&&i.name)) {
                check(std::slice::from_ref(folder), function, "", &mut checked);
            }
        }
        assert!(
            checked >= 4,
            "only {checked} back-office requests found: is the token variable renamed?"
        );
    }

    #[test]
    fn live_urls_apply_and_unknown_stages_are_refused() {
        let (prod, _) = plans(
            "prod",
            &[(String::from("accounts"), String::from("https://api.example.com/prod"))],
        )
        .unwrap();
        assert_eq!(
            prod.get("accounts").unwrap().live_url.as_deref(),
            Some("https://api.example.com/prod")
        );
        assert_eq!(prod.get("payments").unwrap().live_url, None);
        let err = plans("qa", &[]).unwrap_err().to_string();
        assert!(err.contains("qa") && err.contains("prod"), "{err}");
    }

    #[test]
    fn the_hook_configuration_has_defaults_for_every_key() {
        let config: crate::lambda::HookConfig =
            shared::config::from_raw("/fintech/dev/traffic-gate/", &Default::default()).unwrap();
        assert_eq!(config.smoke_budget_ms, 1500);
        assert!(config.live_urls.is_empty());
    }
}
