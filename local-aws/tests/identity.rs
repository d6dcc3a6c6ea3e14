//! The local user pool through the real Cognito API, and its tokens through
//! `shared::auth`: what the services will verify is what moto signs.

use shared::auth::{AuthError, IdentitySettings, Verifier};
use shared::naming::Deployment;

#[tokio::test]
async fn customers_and_the_hooks_get_tokens_the_services_verify() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("run under cargo xtask test");
    let sdk = local_aws::test_sdk_config().await;
    let services = local_aws::registry::load().unwrap();
    let deployment = Deployment::new(local_aws::unique("id"), "test");
    let identity = local_aws::identity::seed(&sdk, &moto, &deployment, &services)
        .await
        .unwrap();
    assert!(
        identity.scopes.contains(&String::from("payments/write")),
        "{:?}",
        identity.scopes
    );

    let verifier = Verifier::load(identity.settings.clone(), reqwest::Client::new()).await;
    let alice = identity.customer(&sdk, "alice").await.unwrap();
    let verified = verifier
        .verify(&alice.access_token)
        .await
        .expect("a customer token verifies");
    assert_eq!(verified.subject, alice.subject);
    assert_eq!(verified.client_id, identity.customer_client_id);
    for scope in &identity.customer_scopes {
        assert!(verified.scopes.contains(scope), "{scope} in {:?}", verified.scopes);
    }
    assert!(
        !verified
            .scopes
            .iter()
            .any(|s| s.ends_with("/service") || s.ends_with("/back-office")),
        "no customer is a service: {:?}",
        verified.scopes
    );

    let machine = verifier
        .verify(&identity.machine_token().await.unwrap())
        .await
        .expect("a machine token verifies");
    assert_eq!(machine.subject, identity.machine_client_id);
    assert!(machine.scopes.contains(&String::from("accounts/write")));
    assert!(
        !machine
            .scopes
            .iter()
            .any(|s| s.ends_with("/service") || s.ends_with("/back-office")),
        "{:?}",
        machine.scopes
    );
    let service = verifier
        .verify(&identity.service_token().await.unwrap())
        .await
        .expect("a service token verifies");
    assert_eq!(
        service.scopes,
        [
            "accounts/back-office",
            "accounts/service",
            "payments/back-office",
            "payments/service"
        ]
    );
    // Payments' own client: the service scope of what it calls, nothing else.
    let payments = verifier
        .verify(&identity.client_token("payments").await.unwrap())
        .await
        .expect("payments' token verifies");
    assert_eq!(payments.client_id, identity.service_clients["payments"].client_id);
    assert_eq!(payments.scopes, ["accounts/service"]);
    // Each machine client's secret and token endpoint are where its owner reads them.
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    for (owner, client_id) in [
        (local_aws::identity::HOOKS, identity.machine_client_id.clone()),
        ("payments", identity.service_clients["payments"].client_id.clone()),
    ] {
        let id = deployment.secret_name(&shared::credentials::client_secret(owner));
        let kept = shared::secrets::fetch::<shared::credentials::ClientCredentials>(&secrets, &id)
            .await
            .unwrap();
        assert_eq!(kept.expose().client_id, client_id, "{owner}");
        let parameter = aws_sdk_ssm::Client::new(&sdk)
            .get_parameter()
            .name(format!("{}token_url", deployment.config_prefix(owner)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            parameter.parameter.and_then(|p| p.value).as_deref(),
            Some(identity.token_url.as_str())
        );
    }

    // Tokens of the pool for a client this service does not accept.
    let only_machines = Verifier::load(
        IdentitySettings {
            client_ids: vec![identity.machine_client_id.clone()],
            ..identity.settings.clone()
        },
        reqwest::Client::new(),
    )
    .await;
    assert_eq!(
        only_machines.verify(&alice.access_token).await,
        Err(AuthError::Audience)
    );

    // Another pool is another issuer.
    let other = local_aws::identity::seed(
        &sdk,
        &moto,
        &Deployment::new(local_aws::unique("id"), "other"),
        &services,
    )
    .await
    .unwrap();
    let stranger = other.customer(&sdk, "mallory").await.unwrap();
    assert_eq!(verifier.verify(&stranger.access_token).await, Err(AuthError::Issuer));
}

/// A user pool seeded from the registry on the local stack, in a deployment of its own.
async fn pool() -> (aws_config::SdkConfig, local_aws::identity::Identity) {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("run under cargo xtask test");
    let sdk = local_aws::test_sdk_config().await;
    let services = local_aws::registry::load().unwrap();
    let deployment = Deployment::new(local_aws::unique("id"), "t");
    let identity = local_aws::identity::seed(&sdk, &moto, &deployment, &services)
        .await
        .unwrap();
    (sdk, identity)
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_cognito_refuses() {
    let (_, identity) = pool().await;
    let http = reqwest::Client::new();
    let token = |id: &str, secret: &str, form: &[(&str, &str)]| {
        let request = http.post(&identity.token_url).basic_auth(id, Some(secret)).form(form);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let grant = [("grant_type", "client_credentials")];
    let (id, secret) = (
        identity.machine_client_id.as_str(),
        identity.machine_client_secret.as_str(),
    );
    assert_eq!(
        token(id, "wrong", &grant).await,
        (400, serde_json::json!({"error": "invalid_client"}))
    );
    assert_eq!(
        token(id, secret, &[("grant_type", "password")]).await,
        (400, serde_json::json!({"error": "unsupported_grant_type"}))
    );
    assert_eq!(
        token(
            id,
            secret,
            &[("grant_type", "client_credentials"), ("scope", "admin/everything")]
        )
        .await,
        (400, serde_json::json!({"error": "invalid_scope"}))
    );
    let (status, answer) = token(
        id,
        secret,
        &[("grant_type", "client_credentials"), ("scope", "accounts/read")],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    let verifier = Verifier::load(identity.settings.clone(), reqwest::Client::new()).await;
    let narrow = verifier.verify(answer["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(narrow.scopes, ["accounts/read"], "only what was asked");
    // The customers' client has no secret and no client_credentials grant.
    assert_eq!(token(&identity.customer_client_id, "", &grant).await.0, 400);
}

/// Found by the attack on issue 15: moto let a customer sign in through a
/// machine client (no secret, a flow the client does not allow) and get its
/// service scopes. Cognito refuses both; so does the local stack.
#[tokio::test]
async fn no_one_signs_in_through_a_machine_client() {
    use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
    let (sdk, identity) = pool().await;
    let alice = identity.customer(&sdk, "alice").await.unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let payments = &identity.service_clients["payments"];
    let sign_in = |client_id: String, secret_hash: Option<String>| {
        let mut request = cognito
            .initiate_auth()
            .client_id(client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", "alice")
            .auth_parameters("PASSWORD", &alice.password);
        if let Some(hash) = secret_hash {
            request = request.auth_parameters("SECRET_HASH", hash);
        }
        request.send()
    };
    let secret_hash = |client_id: &str, secret: &str| {
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("alice{client_id}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let message = |err: &dyn std::error::Error| {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    };
    for (client_id, secret) in [
        (
            identity.machine_client_id.clone(),
            identity.machine_client_secret.clone(),
        ),
        (payments.client_id.clone(), payments.client_secret.clone()),
    ] {
        // Even with the client's secret: user sign-in is not a machine client's flow.
        for hash in [None, Some(secret_hash(&client_id, &secret))] {
            let refused = sign_in(client_id.clone(), hash)
                .await
                .expect_err("no sign-in through a machine client");
            assert!(message(&refused).contains("flow not enabled"), "{}", message(&refused));
        }
    }
    // A client that allows password sign-in and has a secret takes SECRET_HASH, and only the right one.
    let pool = identity.pool_id.clone();
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("confidential")
        .generate_secret(true)
        .explicit_auth_flows(aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .send()
        .await
        .unwrap()
        .user_pool_client
        .unwrap();
    let (id, secret) = (client.client_id.unwrap(), client.client_secret.unwrap());
    for hash in [None, Some(secret_hash(&id, "not-the-secret"))] {
        let refused = sign_in(id.clone(), hash)
            .await
            .expect_err("SECRET_HASH is required and checked");
        assert!(message(&refused).contains("secret"), "{}", message(&refused));
    }
    assert!(sign_in(id.clone(), Some(secret_hash(&id, &secret))).await.is_ok());
}
