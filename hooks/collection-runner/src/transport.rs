//! Sending a prepared request and getting the response scripts see.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::collection::ProtocolProfileBehavior;
use crate::request::{FormValue, Payload, Prepared};
use crate::sandbox::{Header, ScriptResponse};

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL or a header is not valid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Connecting, TLS, a timeout or the transfer failed.
    #[error("{0}")]
    Failed(String),
}

/// Where requests go: over HTTP, or (in the hooks) through Lambda Invoke.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the response.
    async fn send(
        &self,
        request: &Prepared,
        behavior: &ProtocolProfileBehavior,
        timeout: Option<Duration>,
    ) -> Result<ScriptResponse, TransportError>;
}

/// HTTP(S) with rustls; one client per redirect/TLS setting, reused.
#[derive(Debug, Default)]
pub struct Http {
    insecure: bool,
    clients: Mutex<HashMap<(bool, usize, bool), reqwest::Client>>,
}

impl Http {
    /// A transport; `insecure` turns off certificate checks for every request (`--insecure`).
    pub fn new(insecure: bool) -> Self {
        Self {
            insecure,
            clients: Mutex::default(),
        }
    }

    fn client(&self, behavior: &ProtocolProfileBehavior) -> Result<reqwest::Client, TransportError> {
        let follow = behavior.follow_redirects.unwrap_or(true);
        let max = behavior.max_redirects.unwrap_or(10);
        let insecure = self.insecure || behavior.strict_ssl == Some(false);
        let key = (follow, max, insecure);
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let policy = if follow {
            reqwest::redirect::Policy::limited(max)
        } else {
            reqwest::redirect::Policy::none()
        };
        let client = reqwest::Client::builder()
            .redirect(policy)
            .danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| TransportError::Failed(e.to_string()))?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

#[async_trait::async_trait]
impl Transport for Http {
    async fn send(
        &self,
        request: &Prepared,
        behavior: &ProtocolProfileBehavior,
        timeout: Option<Duration>,
    ) -> Result<ScriptResponse, TransportError> {
        let client = self.client(behavior)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| TransportError::Invalid(format!("method {:?}", request.method)))?;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| TransportError::Invalid(format!("url {:?}: {e}", request.url)))?;
        let mut builder = client.request(method.clone(), url);
        let has_content_type = request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        for (key, value) in &request.headers {
            builder = builder.header(key.as_str(), value.as_str());
        }
        builder = builder.header("user-agent", concat!("collection-runner/", env!("CARGO_PKG_VERSION")));
        let prune = method == reqwest::Method::GET && !behavior.disable_body_pruning.unwrap_or(false);
        match &request.payload {
            Payload::None => {}
            _ if prune => {}
            Payload::Bytes { data, content_type } => {
                if let (false, Some(ct)) = (has_content_type, content_type) {
                    builder = builder.header("content-type", ct.as_str());
                }
                builder = builder.body(data.clone());
            }
            Payload::Form(parts) => {
                let mut form = reqwest::multipart::Form::new();
                for part in parts {
                    let mut p = match &part.value {
                        FormValue::Text(text) => reqwest::multipart::Part::text(text.clone()),
                        FormValue::File { name, data } => {
                            reqwest::multipart::Part::bytes(data.clone()).file_name(name.clone())
                        }
                    };
                    if let Some(ct) = &part.content_type {
                        p = p
                            .mime_str(ct)
                            .map_err(|e| TransportError::Invalid(format!("content type {ct:?}: {e}")))?;
                    }
                    form = form.part(part.name.clone(), p);
                }
                builder = builder.multipart(form);
            }
        }
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let started = Instant::now();
        let response = builder.send().await.map_err(|e| TransportError::Failed(describe(&e)))?;
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| Header {
                key: k.as_str().to_owned(),
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))?;
        Ok(ScriptResponse {
            code: status.as_u16(),
            status: status.canonical_reason().unwrap_or("").to_owned(),
            headers,
            response_size: body.len(),
            body: String::from_utf8_lossy(&body).into_owned(),
            response_time: started.elapsed().as_millis() as u64,
        })
    }
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_timeout() {
        format!("ETIMEDOUT: {text}")
    } else {
        text
    }
}
