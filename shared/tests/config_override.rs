//! An environment variable overrides one key read from SSM. Its own test
//! binary: it sets a process environment variable.

#[derive(Debug, serde::Deserialize)]
struct Config {
    table_name: String,
    page_size: u32,
}

#[tokio::test]
async fn an_environment_variable_overrides_one_key() {
    let sdk = local_aws::test_sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let prefix = format!("/{}/test/svc/", local_aws::unique("ovr"));
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}table_name"), "from-ssm", false)
        .await
        .unwrap();
    local_aws::seed::put_parameter(&ssm, &format!("{prefix}page_size"), "10", false)
        .await
        .unwrap();
    // Edition 2024 marks set_var unsafe because another thread may read the
    // environment at the same time; this binary's one test sets it first.
    let config: Config = {
        #[allow(
            unsafe_code,
            reason = "single-test binary sets the variable before any thread reads it"
        )]
        unsafe {
            std::env::set_var("CONFIG_PAGE_SIZE", "25")
        };
        shared::config::load(&ssm, &prefix).await.unwrap()
    };
    assert_eq!(config.table_name, "from-ssm");
    assert_eq!(config.page_size, 25);
}
