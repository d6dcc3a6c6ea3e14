//! Wiring only: the shared start sequence around this service's init and router.

#[tokio::main]
async fn main() -> Result<(), shared::runtime::StartError> {
    shared::runtime::start(&payments::SERVICE, |sdk, deployment| async move {
        let identity = shared::auth::IdentitySettings::from_env()?;
        let (state, aws_wait) = payments::init(&sdk, &deployment, identity).await?;
        Ok::<_, shared::bootstrap::InitError>((payments::app(state), aws_wait))
    })
    .await
}
