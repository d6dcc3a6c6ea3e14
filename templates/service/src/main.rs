//! Wiring only: the shared start sequence around this service's init and
//! router; the issuer's signing keys are fetched while init waits on AWS.

use std::sync::Arc;

use shared::auth::{IdentitySettings, Verifier};

#[tokio::main]
async fn main() -> Result<(), shared::runtime::StartError> {
    shared::runtime::start(&{{crate_name}}::SERVICE, |sdk, deployment| async move {
        let identity = IdentitySettings::from_env()?;
        let (loaded, verifier) = tokio::join!(
            {{crate_name}}::init(&sdk, &deployment),
            Verifier::load(identity, reqwest::Client::new())
        );
        let (state, aws_wait) = loaded?;
        Ok::<_, shared::bootstrap::InitError>(({{crate_name}}::app(state, Arc::new(verifier)), aws_wait))
    })
    .await
}
