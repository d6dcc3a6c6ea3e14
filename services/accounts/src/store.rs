//! The DynamoDB adapter: one table, keyed `pk`/`sk`.
//!
//! | item        | pk              | sk               |
//! |-------------|-----------------|------------------|
//! | account     | `ACCOUNT#<id>`  | `ACCOUNT`        |
//! | transaction | `ACCOUNT#<id>`  | `TX#<uuid v7>`   |
//! | reference   | `ACCOUNT#<id>`  | `REF#<reference>`|
//!
//! A posting is one `TransactWriteItems`: the balance changes by an atomic
//! `ADD`-style update guarded by a condition (enough funds, same currency,
//! within the limit), the transaction is written, and the reference is
//! claimed. All three happen or none does, so money is never half-moved and a
//! reference is never applied twice. No read-modify-write.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use shared::dynamo::{Failure, Item, Malformed, failure, now};

use crate::domain::{Account, AccountId, Direction, DomainError, MAX_BALANCE_MINOR, NewAccount, Posting, Transaction};

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request broke a domain rule.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// DynamoDB failed or was unreachable.
    #[error(transparent)]
    Dynamo(#[from] Failure),
    /// Concurrent postings kept conflicting on one account.
    #[error("account {0} is busy: concurrent postings kept conflicting")]
    Busy(AccountId),
    /// An item does not have the shape this code writes.
    #[error(transparent)]
    Corrupt(#[from] Malformed),
}

/// The `direction` of a reference claimed by a void, not by a posting.
const VOID: &str = "void";

/// How often a posting is retried when DynamoDB reports a transaction conflict.
const CONFLICT_RETRIES: u32 = 12;

/// The accounts table.
#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
    page_size: u32,
}

/// What voiding a reference did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voided {
    /// Nothing had been posted with the reference; now nothing ever will be.
    Blocked,
    /// A posting existed and was reversed by this transaction (reference `void-<reference>`).
    Reversed(Transaction),
}

/// The reference under which a voided posting is reversed.
pub fn reversal_reference(reference: &str) -> String {
    format!("void-{reference}")
}

/// One page of an account's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Page {
    /// The transactions.
    pub items: Vec<Transaction>,
    /// Pass as `cursor` to get the next page; absent on the last.
    pub next_cursor: Option<String>,
}

fn pk(id: AccountId) -> AttributeValue {
    AttributeValue::S(format!("ACCOUNT#{id}"))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Reads an account or transaction from a stored item.
struct Stored<'a>(Item<'a>);

impl Stored<'_> {
    fn account(&self, id: AccountId) -> Result<Account, StoreError> {
        Ok(Account {
            id,
            owner: self.0.string("owner")?,
            currency: self.0.currency("currency")?,
            balance_minor: self.0.number("balance")?,
            created_at: self.0.string("created_at")?,
        })
    }

    fn transaction(&self, account_id: AccountId) -> Result<Transaction, StoreError> {
        let id = self.0.string("tx_id")?;
        Ok(Transaction {
            id: uuid::Uuid::parse_str(&id).map_err(|_| Malformed(format!("tx_id {id} is not a UUID")))?,
            account_id,
            direction: Direction::parse(&self.0.string("direction")?)
                .ok_or_else(|| Malformed(String::from("direction is neither credit nor debit")))?,
            amount_minor: self.0.number("amount")?,
            currency: self.0.currency("currency")?,
            reference: self.0.string("reference")?,
            created_at: self.0.string("created_at")?,
        })
    }
}

impl Store {
    /// A store over `table`, listing `page_size` transactions per page.
    pub fn new(client: Client, table: impl Into<String>, page_size: u32) -> Self {
        Self {
            client,
            table: table.into(),
            page_size,
        }
    }

    /// Opens an account with a zero balance.
    pub async fn open(&self, new: NewAccount) -> Result<Account, StoreError> {
        let account = Account {
            id: AccountId::new(),
            owner: new.owner,
            currency: new.currency,
            balance_minor: 0,
            created_at: now(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(account.id))
            .item("sk", s("ACCOUNT"))
            .item("owner", s(&account.owner))
            .item("currency", s(account.currency.as_str()))
            .item("balance", n(0))
            .item("created_at", s(&account.created_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(failure("PutItem"))?;
        Ok(account)
    }

    /// Reads an account (strongly consistent).
    pub async fn get(&self, id: AccountId) -> Result<Account, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(id))
            .key("sk", s("ACCOUNT"))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure("GetItem"))?;
        match output.item {
            Some(item) => Stored(Item(&item)).account(id),
            None => Err(DomainError::NotFound(id).into()),
        }
    }

    /// Posts a credit or debit atomically. Returns the transaction and whether
    /// it is a replay of an earlier posting with the same reference.
    pub async fn post(&self, id: AccountId, posting: &Posting) -> Result<(Transaction, bool), StoreError> {
        let tx = Transaction {
            id: uuid::Uuid::now_v7(),
            account_id: id,
            direction: posting.direction,
            amount_minor: posting.amount_minor,
            currency: posting.currency.clone(),
            reference: posting.reference.clone(),
            created_at: now(),
        };
        let request = self.posting_request(&tx)?;
        for attempt in 0..CONFLICT_RETRIES {
            let err = match request.clone().send().await {
                Ok(_) => return Ok((tx, false)),
                Err(err) => err,
            };
            let reasons: Vec<Option<String>> = match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e)) => {
                    e.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
                }
                _ => return Err(failure("TransactWriteItems")(err).into()),
            };
            let failed = |i: usize| reasons.get(i).and_then(Option::as_deref) == Some("ConditionalCheckFailed");
            if failed(2) {
                return self.replay(id, posting).await.map(|tx| (tx, true));
            }
            if failed(0) {
                return Err(self.explain_refusal(id, posting).await);
            }
            if !reasons.iter().any(|r| r.as_deref() == Some("TransactionConflict")) {
                return Err(failure("TransactWriteItems")(err).into());
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(StoreError::Busy(id))
    }

    fn posting_request(
        &self,
        tx: &Transaction,
    ) -> Result<aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder, StoreError>
    {
        let build = |e: aws_sdk_dynamodb::error::BuildError| Malformed(e.to_string());
        let (expression, condition) = match tx.direction {
            Direction::Debit => ("SET balance = balance - :amount", "balance >= :amount"),
            Direction::Credit => ("SET balance = balance + :amount", "balance <= :limit"),
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", pk(tx.account_id))
            .key("sk", s("ACCOUNT"))
            .update_expression(expression)
            .condition_expression(format!("attribute_exists(pk) AND currency = :currency AND {condition}"))
            .expression_attribute_values(":amount", n(tx.amount_minor))
            .expression_attribute_values(":currency", s(tx.currency.as_str()));
        if tx.direction == Direction::Credit {
            update = update.expression_attribute_values(":limit", n(MAX_BALANCE_MINOR - tx.amount_minor));
        }
        let update = update.build().map_err(build)?;
        let common = |put: aws_sdk_dynamodb::types::builders::PutBuilder| {
            put.table_name(&self.table)
                .item("pk", pk(tx.account_id))
                .item("tx_id", s(tx.id.to_string()))
                .item("direction", s(tx.direction.as_str()))
                .item("amount", n(tx.amount_minor))
                .item("currency", s(tx.currency.as_str()))
                .item("reference", s(&tx.reference))
                .item("created_at", s(&tx.created_at))
                .condition_expression("attribute_not_exists(pk)")
        };
        let transaction = common(Put::builder())
            .item("sk", s(format!("TX#{}", tx.id)))
            .build()
            .map_err(build)?;
        let reference = common(Put::builder())
            .item("sk", s(format!("REF#{}", tx.reference)))
            .build()
            .map_err(build)?;
        Ok(self.client.transact_write_items().set_transact_items(Some(vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(transaction).build(),
            TransactWriteItem::builder().put(reference).build(),
        ])))
    }

    /// What claimed `reference` on an account: the posting's transaction, or
    /// `None` when a void claimed it.
    async fn claimed(&self, id: AccountId, reference: &str) -> Result<Option<Transaction>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(id))
            .key("sk", s(format!("REF#{reference}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(failure("GetItem"))?;
        let item = output
            .item
            .ok_or_else(|| Malformed(String::from("claimed reference vanished")))?;
        if Item(&item).string("direction")? == VOID {
            return Ok(None);
        }
        Stored(Item(&item)).transaction(id).map(Some)
    }

    /// The transaction an earlier posting with the same reference made, when
    /// it asked for the same thing; else a conflict.
    async fn replay(&self, id: AccountId, posting: &Posting) -> Result<Transaction, StoreError> {
        let Some(earlier) = self.claimed(id, &posting.reference).await? else {
            return Err(DomainError::ReferenceConflict(posting.reference.clone()).into());
        };
        let same = earlier.direction == posting.direction
            && earlier.amount_minor == posting.amount_minor
            && earlier.currency == posting.currency;
        if same {
            Ok(earlier)
        } else {
            Err(DomainError::ReferenceConflict(posting.reference.clone()).into())
        }
    }

    /// Voids `reference` on an account: reverses the posting made with it,
    /// or, when there is none, claims the reference so that a posting still
    /// on its way (a request that timed out at the caller) can never apply.
    /// Safe to repeat: the reversal has its own reference.
    pub async fn void(&self, id: AccountId, reference: &str) -> Result<Voided, StoreError> {
        let account = self.get(id).await?;
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(id))
            .item("sk", s(format!("REF#{reference}")))
            .item("direction", s(VOID))
            .item("reference", s(reference))
            .item("created_at", s(now()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match claimed {
            Ok(_) => return Ok(Voided::Blocked),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(err) => return Err(failure("PutItem")(err).into()),
        }
        let Some(original) = self.claimed(id, reference).await? else {
            return Ok(Voided::Blocked);
        };
        let reversal = Posting {
            direction: match original.direction {
                Direction::Credit => Direction::Debit,
                Direction::Debit => Direction::Credit,
            },
            amount_minor: original.amount_minor,
            currency: account.currency,
            reference: reversal_reference(reference),
        };
        self.post(id, &reversal).await.map(|(tx, _)| Voided::Reversed(tx))
    }

    /// Why the balance condition failed, read after the fact.
    async fn explain_refusal(&self, id: AccountId, posting: &Posting) -> StoreError {
        match self.get(id).await {
            Err(err) => err,
            Ok(account) if account.currency != posting.currency => DomainError::CurrencyMismatch {
                account: account.currency.as_str().to_owned(),
                posting: posting.currency.as_str().to_owned(),
            }
            .into(),
            Ok(account) => match posting.direction {
                Direction::Debit => DomainError::InsufficientFunds {
                    balance_minor: account.balance_minor,
                    amount_minor: posting.amount_minor,
                }
                .into(),
                Direction::Credit => DomainError::BalanceLimit.into(),
            },
        }
    }

    /// One page of an account's transactions, newest first.
    pub async fn transactions(
        &self,
        id: AccountId,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.get(id).await?;
        let limit = limit.unwrap_or(self.page_size).clamp(1, self.page_size);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :tx)")
            .expression_attribute_values(":pk", pk(id))
            .expression_attribute_values(":tx", s("TX#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some(cursor) = cursor {
            let after = uuid::Uuid::parse_str(cursor)
                .map_err(|_| DomainError::invalid("cursor", "expected the next_cursor of an earlier page"))?;
            query = query
                .exclusive_start_key("pk", pk(id))
                .exclusive_start_key("sk", s(format!("TX#{after}")));
        }
        let output = query.send().await.map_err(failure("Query"))?;
        let items = output
            .items()
            .iter()
            .map(|item| Stored(Item(item)).transaction(id))
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = output
            .last_evaluated_key
            .as_ref()
            .and_then(|key| key.get("sk"))
            .and_then(|sk| sk.as_s().ok())
            .and_then(|sk| sk.strip_prefix("TX#"))
            .map(str::to_owned);
        Ok(Page { items, next_cursor })
    }
}

/// Exponential backoff with jitter: 5 ms doubling to 320 ms, times 0.5 to 1.5.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255;
    Duration::from_millis(base / 2 + jitter)
}
