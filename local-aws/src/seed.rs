//! Creating what the services need on the local stack: tables, parameters and
//! secrets, named by `shared::naming`. Safe to run again.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use shared::naming::Deployment;

use crate::Error;
use crate::registry::{ConfigValue, Service, TableSpec};

fn seed_error(what: impl Into<String>) -> impl FnOnce(String) -> Error {
    let what = what.into();
    move |message| Error::Seed { what, message }
}

fn sdk_message<E: std::error::Error + 'static>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}

/// Key schema elements for a partition key and an optional sort key.
fn key_schema(partition: &str, sort: Option<&str>) -> Result<Vec<KeySchemaElement>, String> {
    let hash = KeySchemaElement::builder()
        .attribute_name(partition)
        .key_type(KeyType::Hash)
        .build()
        .map_err(|e| e.to_string())?;
    let mut keys = vec![hash];
    if let Some(sort) = sort {
        keys.push(
            KeySchemaElement::builder()
                .attribute_name(sort)
                .key_type(KeyType::Range)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(keys)
}

/// Creates a table with string keys and its global secondary indexes
/// (every attribute projected), unless it exists.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, spec: &TableSpec) -> Result<(), Error> {
    let fail = |e: String| seed_error(name)(e);
    let mut attributes: Vec<&str> = vec![&spec.partition_key];
    attributes.extend(spec.sort_key.as_deref());
    for index in spec.indexes.values() {
        attributes.push(&index.partition_key);
        attributes.extend(index.sort_key.as_deref());
    }
    attributes.sort_unstable();
    attributes.dedup();
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(
            key_schema(&spec.partition_key, spec.sort_key.as_deref()).map_err(fail)?,
        ));
    for attribute in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    for (index, keys) in &spec.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(
                    key_schema(&keys.partition_key, keys.sort_key.as_deref()).map_err(fail)?,
                ))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| fail(e.to_string()))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(()),
        Err(err) => return Err(fail(sdk_message(err))),
    }
    if let Some(attribute) = &spec.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(|err| fail(sdk_message(err)))?;
    }
    Ok(())
}

/// Writes a parameter (overwriting), as a `SecureString` when `secure`.
pub async fn put_parameter(client: &aws_sdk_ssm::Client, name: &str, value: &str, secure: bool) -> Result<(), Error> {
    let kind = if secure {
        aws_sdk_ssm::types::ParameterType::SecureString
    } else {
        aws_sdk_ssm::types::ParameterType::String
    };
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| seed_error(name)(sdk_message(e)))
}

/// Creates a secret, or sets a new current value when it exists.
pub async fn put_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> Result<(), Error> {
    match client.create_secret().name(name).secret_string(value).send().await {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => client
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| seed_error(name)(sdk_message(e))),
        Err(err) => Err(seed_error(name)(sdk_message(err))),
    }
}

/// Puts the items of a seed file (a JSON array of objects) into `table`.
pub async fn put_items(client: &aws_sdk_dynamodb::Client, table: &str, file: &std::path::Path) -> Result<(), Error> {
    let what = format!("{table} from {}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| seed_error(what.as_str())(e.to_string()))?;
    let items: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text)
        .map_err(|e| seed_error(what.as_str())(format!("expected an array of objects: {e}")))?;
    for item in items {
        let item = item.into_iter().map(|(k, v)| (k, attribute(v))).collect();
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| seed_error(what.as_str())(sdk_message(e)))?;
    }
    Ok(())
}

/// A JSON value as a DynamoDB attribute.
fn attribute(value: serde_json::Value) -> AttributeValue {
    use serde_json::Value;
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(items) => AttributeValue::L(items.into_iter().map(attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.into_iter().map(|(k, v)| (k, attribute(v))).collect()),
    }
}

/// Creates every table, parameter and secret the services need in `deployment`.
pub async fn seed(sdk: &aws_config::SdkConfig, deployment: &Deployment, services: &[Service]) -> Result<(), Error> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    for service in services {
        for (table, spec) in &service.spec.tables {
            let name = deployment.table_name(table);
            create_table(&dynamodb, &name, spec).await?;
            if let Some(file) = &spec.seed {
                put_items(&dynamodb, &name, &service.dir.join(file)).await?;
            }
        }
        let prefix = deployment.config_prefix(&service.name);
        for (key, value) in &service.spec.config {
            let value = match value {
                ConfigValue::Literal(value) => value.clone(),
                ConfigValue::Table { table } => deployment.table_name(table),
            };
            put_parameter(&ssm, &format!("{prefix}{key}"), &value, false).await?;
        }
        if let (Some(secret), Some(value)) = (&service.spec.secret, &service.spec.secret_value) {
            put_secret(&secrets, &deployment.secret_name(secret), &value.to_string()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_items_map_json_to_dynamodb_types() {
        let item = serde_json::json!({"s": "x", "n": 250000, "b": true, "z": null, "l": [1, "a"], "m": {"k": -1.5}});
        let serde_json::Value::Object(map) = item else {
            unreachable!()
        };
        let attributes: std::collections::HashMap<String, AttributeValue> =
            map.into_iter().map(|(k, v)| (k, attribute(v))).collect();
        assert_eq!(attributes["s"], AttributeValue::S(String::from("x")));
        assert_eq!(attributes["n"], AttributeValue::N(String::from("250000")));
        assert_eq!(attributes["b"], AttributeValue::Bool(true));
        assert_eq!(attributes["z"], AttributeValue::Null(true));
        assert_eq!(
            attributes["l"],
            AttributeValue::L(vec![
                AttributeValue::N(String::from("1")),
                AttributeValue::S(String::from("a"))
            ])
        );
        assert_eq!(
            attributes["m"],
            AttributeValue::M([(String::from("k"), AttributeValue::N(String::from("-1.5")))].into())
        );
    }
}
