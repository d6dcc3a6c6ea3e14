//! How resource names are built from the app, the stage and a logical name.
//!
//! The local stack's seeding, the infrastructure and the services all ask this
//! module, so a name is spelled in exactly one place.

use crate::env;

/// The app and stage a process runs in, read from [`env::APP_NAME`] and [`env::STAGE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Application name, e.g. `fintech`.
    pub app: String,
    /// Stage, e.g. `local`, `dev`, `prod`.
    pub stage: String,
}

/// A required environment variable is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set (expected e.g. APP_NAME=fintech STAGE=dev)")]
pub struct MissingVar(pub &'static str);

impl Deployment {
    /// Builds a deployment from its two parts.
    pub fn new(app: impl Into<String>, stage: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            stage: stage.into(),
        }
    }

    /// Reads the deployment from the environment.
    pub fn from_env() -> Result<Self, MissingVar> {
        let app = env::var(env::APP_NAME).ok_or(MissingVar(env::APP_NAME))?;
        let stage = env::var(env::STAGE).ok_or(MissingVar(env::STAGE))?;
        Ok(Self { app, stage })
    }

    /// The SSM path holding a service's configuration: `/{app}/{stage}/{service}/`.
    pub fn config_prefix(&self, service: &str) -> String {
        format!("/{}/{}/{}/", self.app, self.stage, service)
    }

    /// The physical DynamoDB table name for a logical table: `{app}-{stage}-{table}`.
    pub fn table_name(&self, table: &str) -> String {
        format!("{}-{}-{}", self.app, self.stage, table)
    }

    /// The Secrets Manager name of a logical secret: `{app}/{stage}/{secret}`.
    pub fn secret_name(&self, secret: &str) -> String {
        format!("{}/{}/{}", self.app, self.stage, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::Deployment;

    #[test]
    fn names_follow_one_convention() {
        let d = Deployment::new("fintech", "dev");
        assert_eq!(d.config_prefix("accounts"), "/fintech/dev/accounts/");
        assert_eq!(d.table_name("accounts"), "fintech-dev-accounts");
        assert_eq!(d.secret_name("service-api-key"), "fintech/dev/service-api-key");
    }
}
