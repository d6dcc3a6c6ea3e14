//! The baseline for `cargo xtask bench cold-start`: the smallest `lambda_http`
//! function, answering every request with a short JSON body.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(r#"{"status":"ok"}"#))
            .map_err(Error::from)
    }))
    .await
}
