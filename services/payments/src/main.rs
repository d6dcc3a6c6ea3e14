//! Wiring only: the shared start sequence around this service's init and router.

#[tokio::main]
async fn main() -> Result<(), shared::runtime::StartError> {
    shared::runtime::start(&payments::SERVICE, |sdk, deployment| async move {
        let (state, aws_wait) = payments::init(&sdk, &deployment).await?;
        Ok::<_, anyhow::Error>((payments::app(state), aws_wait))
    })
    .await
}
