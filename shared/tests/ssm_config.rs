//! Config from a real SSM API (moto): paging past 10 parameters, SecureString
//! decryption, nested keys, environment overrides, and one error for every
//! missing or invalid key.

use std::time::Duration;

use serde::Deserialize;
use shared::config::{self, ConfigError, ProblemKind};

#[derive(Debug, Deserialize)]
struct Config {
    table_name: String,
    db_password: String,
    limits: Limits,
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Limits {
    max_debit: u64,
    daily_max: u64,
}

async fn clients() -> (aws_sdk_ssm::Client, String) {
    let sdk = local_aws::test_sdk_config().await;
    let prefix = format!("/{}/test/svc/", local_aws::unique("cfg"));
    (aws_sdk_ssm::Client::new(&sdk), prefix)
}

#[tokio::test]
async fn reads_every_page_decrypts_and_nests() {
    let (ssm, prefix) = clients().await;
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}table_name"), "fintech-test-accounts", false)
        .await
        .unwrap();
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}db_password"), "s3cret-value", true)
        .await
        .unwrap();
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}limits/max_debit"), "5000", false)
        .await
        .unwrap();
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}limits/daily-max"), "20000", false)
        .await
        .unwrap();
    // GetParametersByPath returns at most 10 per page: 25 more force three pages.
    for i in 0..25 {
        local_aws::seed::put_parameter(&ssm, &format!("{prefix}extra_{i:02}"), &format!("v{i}"), false)
            .await
            .unwrap();
    }
    let config: Config = config::load(&ssm, &prefix).await.unwrap();
    assert_eq!(config.table_name, "fintech-test-accounts");
    assert_eq!(config.db_password, "s3cret-value", "SecureString decrypted");
    assert_eq!((config.limits.max_debit, config.limits.daily_max), (5000, 20000));
    assert_eq!(config.extra.len(), 25, "every page read");
    assert_eq!(config.extra["extra_24"], "v24");
}

#[tokio::test]
async fn one_error_lists_every_bad_key_and_hides_secure_values() {
    let (ssm, prefix) = clients().await;
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}db_password"), "x", true)
        .await
        .unwrap();
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}limits/max_debit"), "lots", true)
        .await
        .unwrap();
    let err = config::load::<Config>(&ssm, &prefix).await.unwrap_err();
    let ConfigError::Invalid { problems, .. } = &err else {
        panic!("{err}")
    };
    let keys: Vec<(&str, bool)> = problems
        .iter()
        .map(|p| (p.key.as_str(), p.kind == ProblemKind::Missing))
        .collect();
    assert_eq!(
        keys,
        [
            ("limits/max_debit", false),
            ("limits/daily_max", true),
            ("table_name", true)
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(!text.contains("lots"), "a SecureString value was quoted: {text}");
    assert!(
        text.contains(&format!("{prefix}limits/max_debit")),
        "names the parameter: {text}"
    );
}

#[tokio::test]
async fn an_unreachable_store_is_an_ssm_error() {
    let sdk = local_aws::test_sdk_config().await;
    let port = local_aws::moto::free_port().unwrap();
    let dead = aws_sdk_ssm::config::Builder::from(&sdk)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let err = config::load::<Config>(&aws_sdk_ssm::Client::from_conf(dead), "/x/y/z/")
        .await
        .unwrap_err();
    assert!(matches!(err, ConfigError::Ssm { .. }), "{err}");
}

#[derive(Debug, Deserialize)]
struct Small {
    page_size: u32,
}

#[tokio::test]
async fn refreshing_config_reloads_after_max_age_and_keeps_the_last_good_values() {
    let (ssm, prefix) = clients().await;
    let name = format!("{prefix}page_size");
    local_aws::seed::put_parameter(&ssm, &name, "10", false).await.unwrap();
    let initial: Small = config::load(&ssm, &prefix).await.unwrap();
    let refreshing = config::Refreshing::new(
        ssm.clone(),
        prefix.clone(),
        initial,
        std::time::Duration::from_millis(200),
    );
    local_aws::seed::put_parameter(&ssm, &name, "20", false).await.unwrap();
    assert_eq!(
        refreshing.get().await.unwrap().page_size,
        10,
        "young values are served without a call"
    );
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(refreshing.get().await.unwrap().page_size, 20, "reloaded after max age");
    local_aws::seed::put_parameter(&ssm, &name, "not a number", false)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(
        refreshing.get().await.unwrap().page_size,
        20,
        "an invalid reload keeps the last good values"
    );
}

/// Issue 18: configuration init could not read is read again on each use
/// until it loads, so one bad moment at a cold start is not kept for the
/// sandbox's life.
#[tokio::test]
async fn unloaded_config_is_read_on_each_use_until_it_loads() {
    let (ssm, prefix) = clients().await;
    let name = format!("{prefix}page_size");
    local_aws::seed::put_parameter(&ssm, &name, "not a number", false)
        .await
        .unwrap();
    let refreshing =
        config::Refreshing::<Small>::unloaded(ssm.clone(), prefix.clone(), std::time::Duration::from_secs(300));
    let err = refreshing.get().await.unwrap_err();
    assert!(err.to_string().contains("page_size"), "{err}");
    local_aws::seed::put_parameter(&ssm, &name, "30", false).await.unwrap();
    assert_eq!(refreshing.get().await.unwrap().page_size, 30, "read again and loaded");
    local_aws::seed::put_parameter(&ssm, &name, "40", false).await.unwrap();
    assert_eq!(
        refreshing.get().await.unwrap().page_size,
        30,
        "once loaded, kept until max age"
    );
}

/// Found in review of issue 18: a reload that stalls (SSM accepting the
/// connection and never answering) is a failed reload when it outlasts the
/// caller's limit, so the values loaded before are served in time.
#[tokio::test]
async fn a_stalled_reload_keeps_the_loaded_values_within_the_limit() {
    use local_aws::faults::{Fault, FaultProxy, Rule};
    let (ssm, prefix) = clients().await;
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}page_size"), "10", false)
        .await
        .unwrap();
    let initial: Small = config::load(&ssm, &prefix).await.unwrap();
    let proxy = FaultProxy::start(&local_aws::test_endpoint()).await.unwrap();
    proxy
        .set(vec![Rule::always(Fault::Stall(Duration::from_secs(60)))])
        .await;
    let stalled = aws_sdk_ssm::Client::new(&local_aws::sdk_config_at(proxy.url()).await);
    let refreshing = config::Refreshing::new(stalled, prefix, initial, Duration::ZERO);
    let started = std::time::Instant::now();
    let got = refreshing.get_within(Duration::from_millis(300)).await.unwrap();
    assert_eq!(got.page_size, 10);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}
