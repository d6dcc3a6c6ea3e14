//! What a run wrote to a deployment's tables: every item read before and
//! after (a consistent scan of each registered table, with its time-to-live
//! attribute from `DescribeTimeToLive`), and the items new or changed since
//! checked for the marks of synthetic data (`shared::synthetic`).

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use shared::naming::Deployment;
use shared::synthetic::MARKER;

use crate::Error;
use crate::registry::Service;

/// The most pages one table's scan reads.
const MAX_PAGES: usize = 1_000;

type Stored = HashMap<String, AttributeValue>;

/// One table as read.
#[derive(Debug, Clone)]
struct Table {
    /// The attribute DynamoDB expires items by, when time to live is on.
    ttl_attribute: Option<String>,
    /// Every item, by its key.
    items: BTreeMap<String, Stored>,
}

/// Every item of a deployment's tables, by physical table name.
#[derive(Debug, Clone, Default)]
pub struct Contents(BTreeMap<String, Table>);

/// What was written between two readings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Items new or changed, over all tables.
    pub items: usize,
    /// Each of them that is not synthetic data: table, key and what is missing.
    pub unmarked: Vec<String>,
}

fn failed(table: &str) -> impl FnOnce(String) -> Error + '_ {
    move |message| Error::Seed {
        what: format!("reading table {table}"),
        message,
    }
}

fn sdk_message<E: std::error::Error + 'static>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}

/// Reads every table `services` register under `deployment`.
pub async fn read(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    services: &[Service],
) -> Result<Contents, Error> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut contents = Contents::default();
    for service in services {
        for (logical, spec) in &service.spec.tables {
            let name = deployment.table_name(logical);
            let ttl = client
                .describe_time_to_live()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| failed(&name)(sdk_message(e)))?;
            let ttl_attribute = ttl
                .time_to_live_description()
                .filter(|d| d.time_to_live_status() == Some(&TimeToLiveStatus::Enabled))
                .and_then(|d| d.attribute_name())
                .map(str::to_owned);
            let key = |item: &Stored| {
                [Some(spec.partition_key.as_str()), spec.sort_key.as_deref()]
                    .into_iter()
                    .flatten()
                    .map(|k| format!("{k}={:?}", item.get(k)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut items = BTreeMap::new();
            let mut start = None;
            let mut complete = false;
            for _ in 0..MAX_PAGES {
                let page = client
                    .scan()
                    .table_name(&name)
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| failed(&name)(sdk_message(e)))?;
                for item in page.items() {
                    items.insert(key(item), item.clone());
                }
                match page.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => {
                        complete = true;
                        break;
                    }
                }
            }
            if !complete {
                return Err(failed(&name)(format!("more than {MAX_PAGES} pages")));
            }
            contents.0.insert(name, Table { ttl_attribute, items });
        }
    }
    Ok(contents)
}

/// A time-to-live attribute's value: epoch seconds, when `attribute` holds a number.
pub fn epoch_seconds(item: &HashMap<String, AttributeValue>, attribute: &str) -> Option<u64> {
    item.get(attribute)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

impl Contents {
    /// The items new or changed since `before`, and which of them lack the
    /// marks of synthetic data: [`MARKER`] `true`, and the table's
    /// time-to-live attribute (a table without one is itself a finding) set
    /// to a time after now, in epoch seconds.
    pub fn written_since(&self, before: &Contents) -> Written {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut written = Written::default();
        for (name, table) in &self.0 {
            let earlier = before.0.get(name);
            for (key, item) in &table.items {
                if earlier.and_then(|t| t.items.get(key)) == Some(item) {
                    continue;
                }
                written.items += 1;
                let mut missing = Vec::new();
                if item.get(MARKER) != Some(&AttributeValue::Bool(true)) {
                    missing.push(format!("{MARKER} = true"));
                }
                match &table.ttl_attribute {
                    None => missing.push(String::from("a table with time to live on")),
                    Some(ttl) => {
                        if epoch_seconds(item, ttl).is_none_or(|at| at <= now) {
                            missing.push(format!("{ttl} (epoch seconds after now)"));
                        }
                    }
                }
                if !missing.is_empty() {
                    written
                        .unmarked
                        .push(format!("{name} {key}: no {}", missing.join(", no ")));
                }
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ttl: Option<&str>, items: &[(&str, Stored)]) -> Table {
        Table {
            ttl_attribute: ttl.map(str::to_owned),
            items: items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
        }
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Stored {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn new_and_changed_items_must_be_marked_and_expire_later() {
        let later = AttributeValue::N(String::from("99999999999"));
        let marked = item(&[(MARKER, AttributeValue::Bool(true)), ("expiration", later.clone())]);
        let seed = item(&[("balance", AttributeValue::N(String::from("0")))]);
        let before = Contents(BTreeMap::from([(
            String::from("t"),
            table(Some("expiration"), &[("seed", seed.clone()), ("changed", seed.clone())]),
        )]));
        let after = Contents(BTreeMap::from([
            (
                String::from("t"),
                table(
                    Some("expiration"),
                    &[
                        ("seed", seed.clone()),
                        ("changed", item(&[("balance", AttributeValue::N(String::from("5")))])),
                        ("new", marked.clone()),
                        (
                            "past",
                            item(&[
                                (MARKER, AttributeValue::Bool(true)),
                                ("expiration", AttributeValue::N(String::from("5"))),
                            ]),
                        ),
                    ],
                ),
            ),
            (String::from("no-ttl"), table(None, &[("x", marked)])),
        ]));
        let written = after.written_since(&before);
        assert_eq!(written.items, 4);
        assert_eq!(
            written.unmarked,
            [
                "no-ttl x: no a table with time to live on",
                "t changed: no synthetic = true, no expiration (epoch seconds after now)",
                "t past: no expiration (epoch seconds after now)",
            ]
        );
    }
}
