//! Request auth as Postman applies it: bearer, basic, apikey, digest (with
//! the 401 challenge handshake), oauth1 (HMAC-SHA1/SHA256/SHA512, PLAINTEXT)
//! and awsv4 (AWS Signature Version 4, for API Gateway IAM auth, signed by
//! the official `aws-sigv4` crate). An auth's header replaces one written in
//! the request, as in newman.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Digest;

use crate::collection::Auth;
use crate::request::{BuildError, Payload, Prepared, form_encode};
use crate::sandbox::ScriptResponse;

/// An auth's parameters, resolved against the run's variables.
pub struct Params<'a> {
    auth: &'a Auth,
    resolve: &'a dyn Fn(&str) -> String,
}

impl<'a> Params<'a> {
    /// `auth`'s parameters, each resolved with `resolve`.
    pub fn new(auth: &'a Auth, resolve: &'a dyn Fn(&str) -> String) -> Self {
        Self { auth, resolve }
    }

    fn get(&self, key: &str) -> String {
        (self.resolve)(&self.auth.param(key).unwrap_or_default())
    }

    fn flag(&self, key: &str, default: bool) -> bool {
        match self.auth.param(key).as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => default,
        }
    }
}

/// Sets header `name`, replacing any of that name.
pub fn upsert(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value));
}

/// Applies the auth to a request about to be sent.
pub fn apply(params: &Params<'_>, request: &mut Prepared) -> Result<(), BuildError> {
    match params.auth.kind.as_str() {
        "noauth" => {}
        "bearer" => upsert(
            &mut request.headers,
            "Authorization",
            format!("Bearer {}", params.get("token")),
        ),
        "basic" => {
            let credentials = format!("{}:{}", params.get("username"), params.get("password"));
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            upsert(&mut request.headers, "Authorization", format!("Basic {encoded}"));
        }
        "apikey" => {
            let (key, value) = (params.get("key"), params.get("value"));
            if params.get("in") == "query" {
                let separator = if request.url.contains('?') { '&' } else { '?' };
                request.url.push(separator);
                request
                    .url
                    .push_str(&format!("{}={}", form_encode(&key), form_encode(&value)));
            } else {
                upsert(&mut request.headers, &key, value);
            }
        }
        "digest" => {
            // Without a nonce from an earlier challenge the request goes out
            // unauthenticated; `digest_retry` answers the 401.
            if !params.get("nonce").is_empty() && !params.get("realm").is_empty() {
                let header = digest_header(params, &request.method, &request.url, None);
                upsert(&mut request.headers, "Authorization", header);
            }
        }
        "oauth1" => oauth1(params, request)?,
        "awsv4" => awsv4(params, request)?,
        other => return Err(BuildError::UnsupportedAuth(other.to_owned())),
    }
    Ok(())
}

/// For digest auth: when `response` is a 401 with a `Digest` challenge, the
/// same request with the answer to it (sent once, as newman does).
pub fn digest_retry(params: &Params<'_>, request: &Prepared, response: &ScriptResponse) -> Option<Prepared> {
    if params.auth.kind != "digest" || response.code != 401 {
        return None;
    }
    let challenge = response
        .headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case("www-authenticate") && h.value.trim_start().starts_with("Digest"))?;
    let fields = parse_challenge(&challenge.value);
    let mut retry = request.clone();
    let header = digest_header(params, &request.method, &request.url, Some(&fields));
    upsert(&mut retry.headers, "Authorization", header);
    Some(retry)
}

/// `Digest realm="x", nonce="y", qop="auth,auth-int"` → pairs.
fn parse_challenge(value: &str) -> Vec<(String, String)> {
    let rest = value.trim_start().trim_start_matches("Digest").trim();
    let mut fields = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_owned();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_owned();
        }
        fields.push((key.to_ascii_lowercase(), value));
    }
    fields
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_hash(algorithm: &str, text: &str) -> String {
    if algorithm.to_ascii_uppercase().starts_with("SHA-256") {
        hex(&sha2::Sha256::digest(text.as_bytes()))
    } else {
        hex(&md5::Md5::digest(text.as_bytes()))
    }
}

/// The path and query of `url` (the digest `uri` and what is hashed).
fn request_target(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        })
        .unwrap_or_else(|_| String::from("/"))
}

/// RFC 7616 `Authorization: Digest …`, from the auth's parameters and, when
/// given, the server's challenge (which wins for realm, nonce, qop, opaque, algorithm).
fn digest_header(params: &Params<'_>, method: &str, url: &str, challenge: Option<&[(String, String)]>) -> String {
    let from_challenge = |key: &str| {
        challenge
            .and_then(|c| c.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.clone())
    };
    let pick = |key: &str, param: &str| from_challenge(key).unwrap_or_else(|| params.get(param));
    let realm = pick("realm", "realm");
    let nonce = pick("nonce", "nonce");
    let opaque = pick("opaque", "opaque");
    let algorithm = Some(pick("algorithm", "algorithm"))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| String::from("MD5"));
    let qop = pick("qop", "qop")
        .split(',')
        .map(str::trim)
        .find(|q| *q == "auth")
        .unwrap_or("")
        .to_owned();
    let username = params.get("username");
    let uri = request_target(url);
    let nc = Some(params.get("nonceCount"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| String::from("00000001"));
    let cnonce = Some(params.get("clientNonce"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_owned());
    let mut ha1 = digest_hash(&algorithm, &format!("{username}:{realm}:{}", params.get("password")));
    if algorithm.to_ascii_lowercase().ends_with("-sess") {
        ha1 = digest_hash(&algorithm, &format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = digest_hash(&algorithm, &format!("{method}:{uri}"));
    let response = if qop.is_empty() {
        digest_hash(&algorithm, &format!("{ha1}:{nonce}:{ha2}"))
    } else {
        digest_hash(&algorithm, &format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
    };
    let mut header = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=\"{algorithm}\""
    );
    if !qop.is_empty() {
        header.push_str(&format!(", qop={qop}, nc={nc}, cnonce=\"{cnonce}\""));
    }
    header.push_str(&format!(", response=\"{response}\""));
    if !opaque.is_empty() {
        header.push_str(&format!(", opaque=\"{opaque}\""));
    }
    header
}

/// RFC 3986 percent-encoding, as OAuth 1.0a requires.
fn oauth_encode(text: &str) -> String {
    form_encode(text)
}

fn decode_form(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

fn hmac_base64<M: Mac + KeyInit>(key: &[u8], text: &[u8]) -> String {
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(text);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The OAuth 1.0a signature of a request, and the `oauth_*` parameters signed.
fn oauth1(params: &Params<'_>, request: &mut Prepared) -> Result<(), BuildError> {
    let method = Some(params.get("signatureMethod"))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| String::from("HMAC-SHA1"));
    let timestamp = Some(params.get("timestamp"))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
                .to_string()
        });
    let nonce = Some(params.get("nonce"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let version = Some(params.get("version"))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| String::from("1.0"));
    let add_empty = params.flag("addEmptyParamsToSign", false);
    let mut oauth: Vec<(String, String)> = vec![
        (String::from("oauth_consumer_key"), params.get("consumerKey")),
        (String::from("oauth_nonce"), nonce),
        (String::from("oauth_signature_method"), method.clone()),
        (String::from("oauth_timestamp"), timestamp),
        (String::from("oauth_token"), params.get("token")),
        (String::from("oauth_version"), version),
    ];
    let callback = params.get("callback");
    if !callback.is_empty() {
        oauth.push((String::from("oauth_callback"), callback));
    }
    let verifier = params.get("verifier");
    if !verifier.is_empty() {
        oauth.push((String::from("oauth_verifier"), verifier));
    }
    oauth.retain(|(_, v)| add_empty || !v.is_empty());

    let parsed = reqwest::Url::parse(&request.url)
        .map_err(|e| BuildError::Auth(format!("oauth1: url {:?}: {e}", request.url)))?;
    let mut base_url = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default().to_ascii_lowercase()
    );
    if let Some(port) = parsed.port() {
        base_url.push_str(&format!(":{port}"));
    }
    base_url.push_str(parsed.path());
    let mut signed: Vec<(String, String)> = parsed.query().map(decode_form).unwrap_or_default();
    let is_form = request
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.starts_with("application/x-www-form-urlencoded"));
    if let Payload::Bytes { data, content_type } = &request.payload
        && (is_form || content_type.as_deref() == Some("application/x-www-form-urlencoded"))
    {
        signed.extend(decode_form(&String::from_utf8_lossy(data)));
    }
    signed.extend(oauth.iter().cloned());
    let mut encoded: Vec<(String, String)> = signed.iter().map(|(k, v)| (oauth_encode(k), oauth_encode(v))).collect();
    encoded.sort();
    let parameter_string = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!(
        "{}&{}&{}",
        request.method.to_ascii_uppercase(),
        oauth_encode(&base_url),
        oauth_encode(&parameter_string)
    );
    let key = format!(
        "{}&{}",
        oauth_encode(&params.get("consumerSecret")),
        oauth_encode(&params.get("tokenSecret"))
    );
    let signature = match method.as_str() {
        "HMAC-SHA1" => hmac_base64::<hmac::Hmac<sha1::Sha1>>(key.as_bytes(), base.as_bytes()),
        "HMAC-SHA256" => hmac_base64::<hmac::Hmac<sha2::Sha256>>(key.as_bytes(), base.as_bytes()),
        "HMAC-SHA512" => hmac_base64::<hmac::Hmac<sha2::Sha512>>(key.as_bytes(), base.as_bytes()),
        "PLAINTEXT" => key,
        other => {
            return Err(BuildError::Auth(format!(
                "oauth1: signature method {other:?} is not supported (HMAC-SHA1, HMAC-SHA256, HMAC-SHA512, PLAINTEXT)"
            )));
        }
    };
    oauth.push((String::from("oauth_signature"), signature));
    if params.flag("addParamsToHeader", true) {
        let realm = params.get("realm");
        let mut parts = Vec::new();
        if !realm.is_empty() {
            parts.push(format!("realm=\"{realm}\""));
        }
        parts.extend(oauth.iter().map(|(k, v)| format!("{k}=\"{}\"", oauth_encode(v))));
        upsert(
            &mut request.headers,
            "Authorization",
            format!("OAuth {}", parts.join(",")),
        );
    } else {
        let query = oauth
            .iter()
            .map(|(k, v)| format!("{k}={}", oauth_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let separator = if request.url.contains('?') { '&' } else { '?' };
        request.url.push(separator);
        request.url.push_str(&query);
    }
    Ok(())
}

/// AWS Signature Version 4 in headers (`Authorization`, `X-Amz-Date`,
/// `X-Amz-Security-Token`), signed by `aws-sigv4`.
fn awsv4(params: &Params<'_>, request: &mut Prepared) -> Result<(), BuildError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let session_token = Some(params.get("sessionToken")).filter(|t| !t.is_empty());
    let credentials = aws_credential_types::Credentials::new(
        params.get("accessKey"),
        params.get("secretKey"),
        session_token,
        None,
        "collection",
    );
    let identity = credentials.into();
    let region = Some(params.get("region"))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| String::from("us-east-1"));
    let service = Some(params.get("service"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| String::from("execute-api"));
    let signing = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(&service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| BuildError::Auth(format!("awsv4: {e}")))?
        .into();
    let host = reqwest::Url::parse(&request.url)
        .map_err(|e| BuildError::Auth(format!("awsv4: url {:?}: {e}", request.url)))?
        .host_str()
        .map(
            |h| match reqwest::Url::parse(&request.url).ok().and_then(|u| u.port()) {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            },
        )
        .unwrap_or_default();
    if !request.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.headers.push((String::from("Host"), host));
    }
    let body = match &request.payload {
        Payload::None => SignableBody::Bytes(&[]),
        Payload::Bytes { data, .. } => SignableBody::Bytes(data),
        Payload::Form(_) => SignableBody::UnsignedPayload,
    };
    let headers: Vec<(&str, &str)> = request.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let signable = SignableRequest::new(&request.method, request.url.as_str(), headers.into_iter(), body)
        .map_err(|e| BuildError::Auth(format!("awsv4: {e}")))?;
    let (instructions, _) = sign(signable, &signing)
        .map_err(|e| BuildError::Auth(format!("awsv4: {e}")))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    for header in headers {
        upsert(&mut request.headers, header.name(), header.value().to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepared(method: &str, url: &str, body: &str) -> Prepared {
        Prepared {
            method: method.into(),
            url: url.into(),
            headers: vec![(
                String::from("Content-Type"),
                String::from("application/x-www-form-urlencoded"),
            )],
            payload: Payload::Bytes {
                data: body.as_bytes().to_vec(),
                content_type: None,
            },
            warnings: Vec::new(),
        }
    }

    fn auth(value: serde_json::Value) -> Auth {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn oauth1_matches_the_published_example() {
        // Twitter's "Creating a signature" walkthrough (OAuth 1.0a, HMAC-SHA1).
        let auth = auth(json!({"type": "oauth1", "oauth1": {
            "consumerKey": "xvz1evFS4wEEPTGEFPHBog",
            "consumerSecret": "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "token": "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            "tokenSecret": "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
            "nonce": "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            "timestamp": "1318622958",
            "signatureMethod": "HMAC-SHA1",
            "version": "1.0"}}));
        let identity = |s: &str| s.to_owned();
        let mut request = prepared(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
            "status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21",
        );
        apply(&Params::new(&auth, &identity), &mut request).unwrap();
        let header = &request.headers.iter().find(|(k, _)| k == "Authorization").unwrap().1;
        assert!(
            header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""),
            "{header}"
        );
    }

    #[test]
    fn digest_answers_rfc_2617_example() {
        // RFC 2617 section 3.5: Mufasa, "Circle Of Life", qop=auth.
        let auth = auth(json!({"type": "digest", "digest": {
            "username": "Mufasa", "password": "Circle Of Life", "clientNonce": "0a4f113b", "nonceCount": "00000001"}}));
        let identity = |s: &str| s.to_owned();
        let request = prepared("GET", "http://www.nowhere.org/dir/index.html", "");
        let response = ScriptResponse {
            code: 401,
            status: String::from("Unauthorized"),
            headers: vec![crate::sandbox::Header {
                key: String::from("WWW-Authenticate"),
                value: String::from(
                    r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
                ),
            }],
            body: Vec::new(),
            response_time: 0,
            response_size: 0,
        };
        let retry = digest_retry(&Params::new(&auth, &identity), &request, &response).unwrap();
        let header = &retry.headers.iter().find(|(k, _)| k == "Authorization").unwrap().1;
        assert!(
            header.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{header}"
        );
        assert!(
            header.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
            "{header}"
        );
    }

    #[test]
    fn awsv4_signs_with_scope_and_token() {
        let auth = auth(json!({"type": "awsv4", "awsv4": [
            {"key": "accessKey", "value": "AKIDEXAMPLE"}, {"key": "secretKey", "value": "secret"},
            {"key": "sessionToken", "value": "tok"}, {"key": "region", "value": "eu-west-1"}, {"key": "service", "value": "execute-api"}]}));
        let identity = |s: &str| s.to_owned();
        let mut request = prepared(
            "POST",
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod/items?x=1",
            "{}",
        );
        apply(&Params::new(&auth, &identity), &mut request).unwrap();
        let get = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let authorization = get("authorization").unwrap();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/execute-api/aws4_request"),
            "{authorization}"
        );
        assert_eq!(get("x-amz-security-token").as_deref(), Some("tok"));
        assert_eq!(get("x-amz-date").map(|d| d.len()), Some(16));
    }

    #[test]
    fn unknown_auth_type_is_refused_by_name() {
        let auth = auth(json!({"type": "ntlm", "ntlm": []}));
        let identity = |s: &str| s.to_owned();
        let err = apply(&Params::new(&auth, &identity), &mut prepared("GET", "http://x/", "")).unwrap_err();
        assert_eq!(err.to_string(), "auth type \"ntlm\" is not supported");
    }
}
