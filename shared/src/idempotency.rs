//! Idempotent HTTP handlers, with the semantics payment APIs define
//! (Stripe's are the reference), persisted in DynamoDB.
//!
//! Wrap a route with [`middleware`]; each request must carry an
//! `Idempotency-Key` header. The first request with a key claims it with a
//! conditional put (`INPROGRESS`) bound to the request's fingerprint, and
//! runs the handler. What happens next is the handler's
//! [`Disposition`](crate::http::Disposition):
//!
//! - **final** (the default below 500): the response is stored
//!   (`COMPLETED`) and every later request with the key and the same body
//!   gets it back byte for byte, marked `Idempotent-Replayed: true`;
//! - **pending** (the default for a 5xx: work may have started): the key
//!   stays bound to this request (`PENDING`); a retry with the same body runs
//!   the handler again, which continues the same work: [`Key::resource_id`]
//!   gives it the same id every time, so it finds what the first run made
//!   instead of starting something new;
//! - **not started** (refused by validation or authentication, see
//!   [`Problem::before_work`](crate::http::Problem::before_work)): nothing is
//!   kept, and a corrected request may use the key.
//!
//! The same key with a different body is refused with 422 for as long as
//! the key is kept ([`IdempotencyConfig::ttl`], 24 hours by default); a
//! request while another with the key is running gets 409. A claim whose
//! holder died expires with the invocation's deadline, after which a retry
//! runs the handler again (with the same resource id). A body that is not
//! JSON when it says it is, or has data after the JSON value, is refused
//! before any claim, with the same problem the handler's
//! [`Json`](crate::http::Json) extractor gives: the fingerprint and the
//! handler read the body the same way.
//!
//! The table has one string partition key, `id`, and `expiration` as its TTL
//! attribute (epoch seconds), as in Powertools.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::{Deadline, Disposition, Problem};
use crate::synthetic::Records;

/// The request header carrying the key.
pub const KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// The response header marking a replayed response.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Response headers stored with the body and replayed.
const STORED_HEADERS: &[HeaderName] = &[header::CONTENT_TYPE, header::LOCATION];

/// How records are kept.
#[derive(Debug, Clone)]
pub struct IdempotencyConfig {
    /// The DynamoDB table (partition key `id`, TTL attribute `expiration`).
    pub table: String,
    /// Prefix of every record id, so services can share a table: the service name.
    pub scope: String,
    /// How long a key is kept and its response replayed (Stripe keeps keys
    /// at least 24 hours; so does this by default).
    pub ttl: Duration,
    /// How long a claim holds when the invocation's deadline is unknown.
    pub in_progress_timeout: Duration,
}

impl IdempotencyConfig {
    /// Keys kept 24 hours; a claim holds one minute when the deadline is unknown.
    pub fn new(table: impl Into<String>, scope: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            scope: scope.into(),
            ttl: Duration::from_secs(24 * 3600),
            in_progress_timeout: Duration::from_secs(60),
        }
    }
}

/// The store behind the layer.
pub struct Idempotency {
    client: aws_sdk_dynamodb::Client,
    config: IdempotencyConfig,
}

/// What the store says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours (new, expired, or bound to this request's unfinished
    /// work): run the handler.
    Acquired {
        /// Proves this claim is ours when completing or releasing it.
        token: String,
    },
    /// A response is stored for this key and this request.
    Completed(StoredResponse),
    /// Another request with this key is running.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// The claimed key of the request being handled: a request extension the
/// middleware adds for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    record: String,
    fingerprint: String,
}

/// Namespace of [`Key::resource_id`]'s name-based UUIDs.
const RESOURCE_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f0c_2d7e_8a41_4c39_9b3e_6d1a_0f27_c4e8);

impl Key {
    /// The id of what this request creates: the same for every request with
    /// this key on this route (a UUID v5 of the record id), so a handler that
    /// runs again after a crash or a pending answer finds what the first run
    /// made instead of making a second one.
    pub fn resource_id(&self) -> uuid::Uuid {
        uuid::Uuid::new_v5(&RESOURCE_NAMESPACE, self.record.as_bytes())
    }

    /// The request's fingerprint (see [`fingerprint`]): a handler stores it
    /// with what it creates, to recognise a different request under the same
    /// key after the key itself has expired.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// A response as stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Its status.
    pub status: u16,
    /// The stored headers (content type, location).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

/// A DynamoDB call failed; the request is not run without its guarantee.
#[derive(Debug, thiserror::Error)]
#[error("idempotency store {operation}: {message}")]
pub struct IdempotencyError {
    operation: &'static str,
    message: String,
}

fn store_error<E: std::error::Error + 'static>(operation: &'static str) -> impl FnOnce(E) -> IdempotencyError {
    move |err| IdempotencyError {
        operation,
        message: aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
    }
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u128) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl Idempotency {
    /// A store over `config.table`.
    pub fn new(client: aws_sdk_dynamodb::Client, config: IdempotencyConfig) -> Self {
        Self { client, config }
    }

    fn record_id(&self, scope: &str, key: &str) -> String {
        format!("{}#{scope}#{key}", self.config.scope)
    }

    /// Claims `key` for a request with `fingerprint`, or says why not.
    /// `deadline` bounds the claim (the invocation's deadline when known);
    /// the record of a request for synthetic `records` is marked as such.
    pub async fn claim(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        deadline: Option<Duration>,
        records: Records,
    ) -> Result<Claim, IdempotencyError> {
        let id = self.record_id(scope, key);
        let now = now();
        let token = uuid::Uuid::new_v4().to_string();
        let in_progress_until = deadline.unwrap_or(now + self.config.in_progress_timeout);
        let put = self
            .client
            .put_item()
            .table_name(&self.config.table)
            .item("id", s(&id))
            .item("status", s("INPROGRESS"))
            .item("validation", s(fingerprint))
            .item("token", s(&token))
            .item("expiration", n(u128::from((now + self.config.ttl).as_secs())))
            .item("in_progress_expiration", n(in_progress_until.as_millis()))
            .condition_expression(
                "attribute_not_exists(id) OR expiration < :now OR (#status = :inprogress AND in_progress_expiration < :now_ms) OR (#status = :pending AND validation = :fingerprint)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(u128::from(now.as_secs())))
            .expression_attribute_values(":now_ms", n(now.as_millis()))
            .expression_attribute_values(":inprogress", s("INPROGRESS"))
            .expression_attribute_values(":pending", s("PENDING"))
            .expression_attribute_values(":fingerprint", s(fingerprint));
        // A synthetic request's record is marked; it expires with the others.
        let put = match records {
            Records::Synthetic => put.item(crate::synthetic::MARKER, AttributeValue::Bool(true)),
            Records::Customers => put,
        };
        let put = put.send().await;
        match put {
            Ok(_) => return Ok(Claim::Acquired { token }),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(err) => return Err(store_error("PutItem")(err)),
        }
        let item = self
            .client
            .get_item()
            .table_name(&self.config.table)
            .key("id", s(&id))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error("GetItem"))?
            .item;
        // The record expired or was released between the put and the get:
        // the caller may simply try again, which a 409 tells it to do.
        let Some(item) = item else { return Ok(Claim::InProgress) };
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => v.clone(),
            _ => String::new(),
        };
        if text("validation") != fingerprint {
            return Ok(Claim::Mismatch);
        }
        if text("status") != "COMPLETED" {
            return Ok(Claim::InProgress);
        }
        let status = text("response_status").parse().unwrap_or(500);
        let headers = match item.get("response_headers") {
            Some(AttributeValue::M(map)) => map
                .iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                .collect(),
            _ => Vec::new(),
        };
        let body = match item.get("response_body") {
            Some(AttributeValue::B(blob)) => blob.clone().into_inner(),
            _ => Vec::new(),
        };
        Ok(Claim::Completed(StoredResponse { status, headers, body }))
    }

    /// Stores the response of a claimed key.
    pub async fn complete(
        &self,
        scope: &str,
        key: &str,
        token: &str,
        response: &StoredResponse,
    ) -> Result<(), IdempotencyError> {
        let headers: HashMap<String, AttributeValue> =
            response.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        self.client
            .update_item()
            .table_name(&self.config.table)
            .key("id", s(self.record_id(scope, key)))
            .update_expression(
                "SET #status = :completed, response_status = :code, response_headers = :headers, response_body = :body, expiration = :expiration REMOVE in_progress_expiration",
            )
            .condition_expression("#token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":completed", s("COMPLETED"))
            .expression_attribute_values(":code", s(response.status.to_string()))
            .expression_attribute_values(":headers", AttributeValue::M(headers))
            .expression_attribute_values(":body", AttributeValue::B(response.body.clone().into()))
            .expression_attribute_values(":expiration", n(u128::from((now() + self.config.ttl).as_secs())))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error("UpdateItem"))
    }

    /// Keeps a claimed key bound to its request while the work it started is
    /// not final: a retry with the same fingerprint claims it again and
    /// continues; any other request with the key is refused.
    pub async fn pend(&self, scope: &str, key: &str, token: &str) -> Result<(), IdempotencyError> {
        self.client
            .update_item()
            .table_name(&self.config.table)
            .key("id", s(self.record_id(scope, key)))
            .update_expression("SET #status = :pending, expiration = :expiration REMOVE in_progress_expiration")
            .condition_expression("#token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":pending", s("PENDING"))
            .expression_attribute_values(":expiration", n(u128::from((now() + self.config.ttl).as_secs())))
            .expression_attribute_values(":token", s(token))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error("UpdateItem"))
    }

    /// Releases a claimed key so a retry can run.
    pub async fn release(&self, scope: &str, key: &str, token: &str) -> Result<(), IdempotencyError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.config.table)
            .key("id", s(self.record_id(scope, key)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // Someone took over an expired claim: it is theirs now.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(store_error("DeleteItem")(err)),
        }
    }
}

/// SHA-256 over method, path and the body: its canonical JSON when it was
/// parsed as JSON (key order and whitespace do not matter), else its bytes.
pub fn fingerprint(method: &str, path: &str, json: Option<&serde_json::Value>, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    match json {
        Some(json) => {
            let mut canonical = String::with_capacity(body.len());
            write_canonical(json, &mut canonical);
            hash.update(canonical.as_bytes());
        }
        None => hash.update(body),
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with object keys sorted at every level, whatever map type
/// `serde_json` was built with.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The 422 for a key used before with a different request; a handler that
/// finds its resource made by another request under the key answers it too.
pub fn key_reused() -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "Idempotency-Key reused",
    )
    .detail("this Idempotency-Key was used with a different request")
    .field("Idempotency-Key", "was already used with a different request body")
}

fn key_problem(title: &'static str, message: &str) -> Response {
    Problem::new(StatusCode::BAD_REQUEST, "idempotency-key", title)
        .detail(format!("Idempotency-Key: {message}"))
        .field("Idempotency-Key", message)
        .before_work()
        .into_response()
}

/// The middleware; wrap a route with
/// `axum::middleware::from_fn_with_state(store, shared::idempotency::middleware)`.
/// The handler finds the claimed [`Key`] among the request's extensions.
pub async fn middleware(State(store): State<Arc<Idempotency>>, req: Request, next: Next) -> Response {
    let key = match req.headers().get(&KEY_HEADER).map(|v| v.to_str()) {
        None => {
            return key_problem(
                "Idempotency-Key required",
                "expected a header with a unique key per operation (e.g. a UUID)",
            );
        }
        Some(Ok(key)) if !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()) => {
            key.to_owned()
        }
        Some(_) => {
            return key_problem(
                "Idempotency-Key invalid",
                "expected 1 to 255 printable ASCII characters",
            );
        }
    };
    let deadline = req.extensions().get::<Deadline>().map(Deadline::since_epoch);
    let json = crate::http::is_json(req.headers());
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, crate::http::MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let too_large =
                std::error::Error::source(&err).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            let problem = if too_large {
                crate::http::body_problem(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                crate::http::body_problem(StatusCode::BAD_REQUEST)
            };
            return problem.into_response();
        }
    };
    // The body is read as the handler's `Json` extractor reads it, so a
    // body the handler would refuse is refused here, before any claim.
    let canonical = if json {
        match crate::http::parse_json::<serde_json::Value>(&bytes) {
            Ok(value) => Some(value),
            Err(problem) => return problem.into_response(),
        }
    } else {
        None
    };
    let scope = key_scope(
        parts.extensions.get::<crate::auth::Principal>(),
        parts.method.as_str(),
        parts.uri.path(),
    );
    let print = fingerprint(parts.method.as_str(), parts.uri.path(), canonical.as_ref(), &bytes);
    let records = parts
        .extensions
        .get::<crate::auth::Principal>()
        .map(crate::auth::Principal::records)
        .unwrap_or_default();
    let token = match store.claim(&scope, &key, &print, deadline, records).await {
        Ok(Claim::Acquired { token }) => token,
        Ok(Claim::Completed(stored)) => return replay(stored),
        Ok(Claim::InProgress) => {
            return (
                [(header::RETRY_AFTER, "1")],
                Problem::new(StatusCode::CONFLICT, "idempotency-in-progress", "Request in progress")
                    .detail("a request with this Idempotency-Key is still running; retry shortly"),
            )
                .into_response();
        }
        Ok(Claim::Mismatch) => return key_reused().into_response(),
        Err(err) => return Problem::unavailable(&err).into_response(),
    };
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(Key {
        record: store.record_id(&scope, &key),
        fingerprint: print,
    });
    let response = next.run(request).await;
    match Disposition::of(&response) {
        Disposition::NotStarted => {
            if let Err(err) = store.release(&scope, &key, &token).await {
                tracing::error!(error = %err, "could not release the idempotency claim; it expires with the invocation");
            }
            response
        }
        Disposition::Pending => {
            if let Err(err) = store.pend(&scope, &key, &token).await {
                // The claim stays in progress until the invocation's
                // deadline; a retry after it continues the same work.
                tracing::error!(error = %err, "could not mark the idempotency claim pending");
            }
            response
        }
        Disposition::Final => complete(&store, &scope, &key, &token, response).await,
    }
}

/// Stores a final response for the key and returns it.
/// What a caller's keys are scoped to: the customer the request acts for
/// (Stripe scopes keys to the account: two customers who happen to choose
/// one key make two payments), the method and the path. The back office
/// acting for no one gets a name no customer can have (a subject has no
/// space, `auth::is_subject`), so its keys never replay a customer's.
fn key_scope(principal: Option<&crate::auth::Principal>, method: &str, path: &str) -> String {
    let caller = principal
        .and_then(crate::auth::Principal::acting_for)
        .unwrap_or("(no one)");
    format!("{caller} {method} {path}")
}

async fn complete(store: &Idempotency, scope: &str, key: &str, token: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(err) => {
            // The work is done but its answer was lost: keep the key bound
            // so a retry re-runs the handler, which finds the work done.
            let _ = store.pend(scope, key, token).await;
            return Problem::internal(&err).into_response();
        }
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: STORED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.to_str().ok()?;
                Some((name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    if let Err(err) = store.complete(scope, key, token, &stored).await {
        // The operation ran; only its replay record is missing. Say so loudly
        // and still answer: a retry finds the claim in progress (409) until
        // the invocation's deadline, then runs the handler again, which
        // finds the work done (same resource id).
        tracing::error!(error = %err, "could not store the idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::fingerprint;
    use crate::auth::Principal;
    use crate::synthetic::Records;

    /// Found by the attack on issue 15: the back office acting for no one
    /// shared its keys with a customer named `-` (the old placeholder), so
    /// its request replayed that customer's payment instead of being refused.
    #[test]
    fn no_one_shares_no_key_with_any_customer() {
        let no_one = Principal::BackOffice {
            client_id: String::from("hooks"),
            on_behalf_of: None,
            records: Records::Customers,
        };
        let scope = super::key_scope(Some(&no_one), "POST", "/payments");
        for subject in ["-", "(no", "one)", "no-one"] {
            let customer = Principal::Service {
                client_id: String::from("hooks"),
                on_behalf_of: String::from(subject),
                records: Records::Customers,
            };
            assert_ne!(
                super::key_scope(Some(&customer), "POST", "/payments"),
                scope,
                "{subject}"
            );
        }
        assert!(!crate::auth::is_subject("(no one)"));
    }

    fn print(path: &str, body: &str) -> String {
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        fingerprint("POST", path, Some(&json), body.as_bytes())
    }

    #[test]
    fn fingerprints_ignore_json_key_order_and_whitespace() {
        let a = print("/payments", r#"{"a": 1, "b": [1, 2]}"#);
        let b = print("/payments", r#"{"b":[1,2],"a":1}"#);
        assert_eq!(a, b);
        assert_ne!(a, print("/payments", r#"{"a": 2, "b": [1, 2]}"#));
        assert_ne!(a, print("/refunds", r#"{"a": 1, "b": [1, 2]}"#));
        assert_eq!(a.len(), 64);
        assert_ne!(a, fingerprint("POST", "/payments", None, br#"{"b":[1,2],"a":1}"#));
    }
}
