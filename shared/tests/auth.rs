//! Token verification against an issuer under the test's control: a JWKS
//! served over HTTP, RS256 tokens signed with the fixtures' keys
//! (`data/jwt-*.pem`, test-only), and the attacks RFC 8725 (JWT best current
//! practices) names: `alg: none`, an HMAC token keyed with the RSA public
//! key, a forged signature, another issuer, another audience, time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shared::auth::{AuthError, IdentitySettings, Verifier};
use tokio::sync::RwLock;

const ISSUER: &str = "https://issuer.test/pool";
const CLIENT: &str = "customers-app";

/// A JWKS endpoint whose document the test can swap, counting fetches.
struct Issuer {
    url: String,
    document: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer() -> Issuer {
    let jwks: Value = serde_json::from_str(include_str!("data/jwks.json")).unwrap();
    let document = Arc::new(RwLock::new(jwks));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (doc, count) = (document.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        get(move || {
            let (doc, count) = (doc.clone(), count.clone());
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                axum::Json(doc.read().await.clone())
            }
        }),
    );
    let (address, _) = local_aws::serve_router(app).await.unwrap();
    Issuer {
        url: format!("http://{address}/jwks.json"),
        document,
        fetches,
    }
}

async fn verifier(issuer: &Issuer) -> Verifier {
    Verifier::load(
        IdentitySettings {
            issuer: String::from(ISSUER),
            jwks_url: issuer.url.clone(),
            client_ids: vec![String::from(CLIENT)],
        },
        reqwest::Client::new(),
    )
    .await
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Access-token claims as Cognito writes them.
fn claims() -> Value {
    json!({
        "sub": "3f1e-customer", "iss": ISSUER, "client_id": CLIENT, "token_use": "access",
        "scope": "accounts/read payments/write", "iat": now(), "exp": now() + 600,
    })
}

fn sign(key: &str, kid: &str, claims: &Value) -> String {
    let pem = match key {
        "signing" => include_str!("data/jwt-signing.pem"),
        "rotated" => include_str!("data/jwt-rotated.pem"),
        _ => include_str!("data/jwt-stranger.pem"),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `check(token, expected)`: one table, every case.
async fn check(verifier: &Verifier, cases: Vec<(&str, String, Result<&str, AuthError>)>) {
    for (name, token, expected) in cases {
        let got = verifier.verify(&token).await.map(|c| c.subject);
        assert_eq!(got.as_deref().map_err(Clone::clone), expected, "{name}");
    }
}

#[tokio::test]
async fn every_forgery_and_mistake_is_refused_with_its_reason() {
    let issuer = issuer().await;
    let verifier = verifier(&issuer).await;
    let with = |change: Value| {
        let mut c = claims();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let good = sign("signing", "signing", &claims());
    let [head, body, _] = good.split('.').collect::<Vec<_>>()[..] else {
        unreachable!()
    };
    // The payload of another customer under the good token's signature.
    let forged_body = b64(with(json!({"sub": "someone-else"})).to_string().as_bytes());
    // HS256 keyed with the issuer's public key: the classic key confusion.
    let public = include_str!("data/jwks.json");
    let hmac = jsonwebtoken::encode(
        &{
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some(String::from("signing"));
            h
        },
        &claims(),
        &EncodingKey::from_secret(public.as_bytes()).unwrap(),
    )
    .unwrap();
    let none = format!("{}.{body}.", b64(br#"{"alg":"none","typ":"JWT","kid":"signing"}"#));
    check(
        &verifier,
        vec![
            ("a valid token", good.clone(), Ok("3f1e-customer")),
            ("alg none", none, Err(AuthError::Algorithm)),
            ("HS256 keyed with the public key", hmac, Err(AuthError::Algorithm)),
            (
                "a forged payload",
                format!("{head}.{forged_body}.{}", good.rsplit('.').next().unwrap()),
                Err(AuthError::Signature),
            ),
            (
                "another issuer's key under this kid",
                sign("stranger", "signing", &claims()),
                Err(AuthError::Signature),
            ),
            (
                "another issuer",
                sign("signing", "signing", &with(json!({"iss": "https://evil.test"}))),
                Err(AuthError::Issuer),
            ),
            (
                "another app client",
                sign("signing", "signing", &with(json!({"client_id": "other-app"}))),
                Err(AuthError::Audience),
            ),
            (
                "no client at all",
                sign("signing", "signing", &with(json!({"client_id": null}))),
                Err(AuthError::Audience),
            ),
            (
                "an audience of ours (OIDC style)",
                sign("signing", "signing", &with(json!({"client_id": null, "aud": [CLIENT]}))),
                Ok("3f1e-customer"),
            ),
            (
                "an ID token",
                sign("signing", "signing", &with(json!({"token_use": "id"}))),
                Err(AuthError::TokenUse),
            ),
            (
                "expired",
                sign("signing", "signing", &with(json!({"exp": now() - 120}))),
                Err(AuthError::Expired),
            ),
            (
                "expired within the leeway",
                sign("signing", "signing", &with(json!({"exp": now() - 5}))),
                Ok("3f1e-customer"),
            ),
            (
                "not yet valid",
                sign("signing", "signing", &with(json!({"nbf": now() + 600}))),
                Err(AuthError::NotYetValid),
            ),
            (
                "no expiry",
                sign("signing", "signing", &with(json!({"exp": null}))),
                Err(AuthError::Malformed),
            ),
            (
                "no subject",
                sign("signing", "signing", &with(json!({"sub": null}))),
                Err(AuthError::Malformed),
            ),
            ("garbage", String::from("a.b.c"), Err(AuthError::Malformed)),
        ],
    )
    .await;
}

#[tokio::test]
async fn keys_are_fetched_at_init_and_again_once_for_an_unknown_kid() {
    let issuer = issuer().await;
    let verifier = verifier(&issuer).await;
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "fetched at init");
    for _ in 0..5 {
        verifier.verify(&sign("signing", "signing", &claims())).await.unwrap();
    }
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "never on every request");

    // The issuer rotates: a token with the new kid triggers one fetch.
    *issuer.document.write().await = serde_json::from_str(include_str!("data/jwks-rotated.json")).unwrap();
    let rotated = verifier.verify(&sign("rotated", "rotated", &claims())).await;
    assert!(rotated.is_ok(), "{rotated:?}");
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2);

    // Made-up kids: refused, and they cannot make the verifier fetch again.
    for i in 0..20 {
        let kid = format!("made-up-{i}");
        assert_eq!(
            verifier.verify(&sign("stranger", &kid, &claims())).await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(
        issuer.fetches.load(Ordering::SeqCst),
        2,
        "at most one fetch per REFETCH_EVERY"
    );
}

#[tokio::test]
async fn an_issuer_down_at_init_is_fetched_for_the_first_token() {
    let issuer = issuer().await;
    let down = Verifier::load(
        IdentitySettings {
            issuer: String::from(ISSUER),
            jwks_url: String::from("http://127.0.0.1:9/jwks.json"),
            client_ids: vec![String::from(CLIENT)],
        },
        reqwest::Client::new(),
    )
    .await;
    assert_eq!(
        down.verify(&sign("signing", "signing", &claims())).await,
        Err(AuthError::Keys),
        "the keys cannot be read: a 503, not a refusal of the token"
    );
    let up = verifier(&issuer).await;
    assert!(up.verify(&sign("signing", "signing", &claims())).await.is_ok());
}
