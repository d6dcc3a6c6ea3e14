//! The fault proxy in front of moto, driven by the real DynamoDB client: what
//! it injects is what the SDK reads from DynamoDB itself.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use local_aws::faults::{Fault, FaultProxy, Match, Rule};

async fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let sdk = local_aws::sdk_config_at(endpoint).await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A table keyed by a string `pk`.
fn table_spec() -> local_aws::registry::TableSpec {
    local_aws::registry::TableSpec {
        partition_key: String::from("pk"),
        sort_key: None,
        ttl_attribute: None,
        indexes: Default::default(),
        seed: None,
    }
}

#[tokio::test]
async fn throttling_reads_as_dynamodbs_own_error_and_the_rest_passes_through() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("run under cargo xtask test");
    assert!(moto.starts_with("http://127.0.0.1:"));
    let proxy = FaultProxy::start(&moto).await.unwrap();
    let dynamodb = client(proxy.url()).await;
    let table = local_aws::unique("faults");
    let spec = table_spec();
    local_aws::seed::create_table(&dynamodb, &table, &spec)
        .await
        .expect("through the proxy");

    proxy
        .set(vec![Rule {
            only: Match::Target(String::from("DynamoDB_20120810.PutItem")),
            fault: Fault::Throttle,
            percent: 100,
        }])
        .await;
    let put = dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(String::from("a")))
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(put.code(), Some("ProvisionedThroughputExceededException"), "{put:?}");
    assert!(
        put.as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception())
    );
    // A read is not a PutItem: it passes.
    let read = dynamodb.describe_table().table_name(&table).send().await;
    assert!(read.is_ok(), "{read:?}");
    assert_eq!(proxy.injected(), 1);

    proxy.set(vec![Rule::always(Fault::Status(503))]).await;
    let down = dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect_err("503");
    assert!(
        down.raw_response().is_some_and(|r| r.status().as_u16() == 503),
        "{down:?}"
    );

    proxy.clear().await;
    dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(String::from("a")))
        .send()
        .await
        .expect("cleared");
}

#[tokio::test]
async fn a_stalled_call_lands_after_the_caller_gave_up() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("run under cargo xtask test");
    let proxy = FaultProxy::start(&moto).await.unwrap();
    let direct = client(&moto).await;
    let table = local_aws::unique("stall");
    let spec = table_spec();
    local_aws::seed::create_table(&direct, &table, &spec).await.unwrap();
    proxy
        .set(vec![Rule::always(Fault::Stall(std::time::Duration::from_millis(600)))])
        .await;
    let impatient = client(proxy.url()).await;
    let put = impatient
        .put_item()
        .table_name(&table)
        .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(String::from("late")))
        .customize()
        .config_override(
            aws_sdk_dynamodb::config::Builder::default().timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(std::time::Duration::from_millis(200))
                    .build(),
            ),
        )
        .send()
        .await;
    assert!(put.is_err(), "the caller gave up first");
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    let item = direct
        .get_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(String::from("late")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    assert!(item.is_some(), "the write landed anyway, as it would have on AWS");
}
