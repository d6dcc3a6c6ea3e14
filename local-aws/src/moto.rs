//! The `moto_server` process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::Error;

/// A running `moto_server` on 127.0.0.1; killed when dropped.
pub struct Moto {
    child: Child,
    endpoint: String,
}

/// Region every local process uses.
pub const REGION: &str = "us-east-1";

/// moto's server as the stack runs it: one request at a time, with a user
/// pool token endpoint and scoped access tokens (see the file's docstring);
/// argv: host, port.
const MOTO_SERVER: &str = include_str!("moto_server.py");

impl Moto {
    /// The `moto_server` of the project's virtualenv (made by `cargo xtask setup`).
    pub fn binary() -> PathBuf {
        crate::workspace_root().join(".venv/bin/moto_server")
    }

    /// Starts moto on a free loopback port and waits until it answers.
    pub async fn start() -> Result<Self, Error> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(Error::Moto(format!(
                "{} is missing: run `cargo xtask setup`",
                binary.display()
            )));
        }
        let port = free_port()?;
        // moto's server handles requests on threads, and its DynamoDB
        // transactions are then not atomic: two concurrent conditional
        // debits can both pass. DynamoDB serializes them; so does moto when
        // it serves one request at a time, which is what runs here
        // (moto_server.py, which also stands in for the user pool's token
        // endpoint).
        let python = binary.with_file_name("python");
        let child = Command::new(&python)
            .args(["-c", MOTO_SERVER, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Moto(format!("starting {}: {e}", binary.display())))?;
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_ready(Duration::from_secs(30)).await?;
        Ok(moto)
    }

    async fn wait_ready(&self, limit: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        let url = format!("{}/moto-api/", self.endpoint);
        while started.elapsed() < limit {
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::Moto(format!("not ready at {} after {limit:?}", self.endpoint)))
    }

    /// The endpoint, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The variables that point the AWS SDK at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", String::from("local")),
            ("AWS_SECRET_ACCESS_KEY", String::from("local")),
            ("AWS_REGION", String::from(REGION)),
            ("AWS_EC2_METADATA_DISABLED", String::from("true")),
        ]
    }

    /// An SDK configuration pointing at this server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        crate::sdk_config_at(&self.endpoint).await
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A port the OS reports free on 127.0.0.1.
pub fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}
