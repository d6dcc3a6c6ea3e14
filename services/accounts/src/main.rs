//! Wiring only: the shared start sequence around this service's init and router.

#[tokio::main]
async fn main() -> Result<(), shared::runtime::StartError> {
    shared::runtime::start(&accounts::SERVICE, |sdk, deployment| async move {
        let identity = shared::auth::IdentitySettings::from_env()?;
        let (state, aws_wait) = accounts::init(&sdk, &deployment, identity).await?;
        Ok::<_, shared::bootstrap::InitError>((accounts::app(state), aws_wait))
    })
    .await
}
