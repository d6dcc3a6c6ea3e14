//! The DynamoDB adapter: one table, keyed `pk`/`sk`.
//!
//! | item        | pk                    | sk               |
//! |-------------|-----------------------|------------------|
//! | account     | `ACCOUNT#<id>`        | `ACCOUNT`        |
//! | transaction | `ACCOUNT#<id>`        | `TX#<uuid v7>`   |
//! | reference   | `ACCOUNT#<id>`        | `REF#<reference>`|
//! | transfer    | `ACCOUNT#<payer id>`  | `TRANSFER#<reference>` |
//!
//! A reference is the caller's name for a movement on *their* account: a
//! posting's is claimed on its account, a transfer's on its payer (the
//! transfer record in the payer's partition, and the debit's claim). Nothing
//! anyone else does can take or block a customer's reference: a transfer
//! *to* an account claims nothing on it.
//!
//! Transfers written before references were the payer's sit at
//! `TRANSFER#<reference>`/`TRANSFER` ([`legacy_transfer_key`]): they are still
//! found for their payer, and every new transfer or cancellation is
//! conditioned on no such record existing, so one made before an upgrade is
//! replayed after it and a reference cancelled before it never applies.
//!
//! Every change of money is one `TransactWriteItems`, so it happens whole or
//! not at all, and no read-modify-write is involved:
//!
//! - an external posting (credit or debit): the balance update guarded by a
//!   condition (enough funds, same currency, within the limit), the
//!   transaction, and the reference claimed on the account;
//! - a transfer: both balance updates with their conditions, the transfer
//!   record claimed by its reference on the payer, both transactions, and
//!   the reference claimed on the payer's account.
//!   A payee that does not exist, holds another currency or cannot receive
//!   fails its condition, and nothing moves.
//!
//! The store enforces the ledger's invariants itself (see [`crate::ledger`]):
//! whatever a caller sends, a transfer has both legs or none, a leg of a
//! transfer is never voided alone, and a reference applies once.
//!
//! Synthetic records (the deployment's own checks', [`shared::synthetic`])
//! carry the marker and the table's time to live on every item, and every
//! balance update is conditioned on the account being of the caller's
//! records: money never moves between a synthetic account and a customer's.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use shared::dynamo::{Failure, Item, Malformed, failure, now};

use crate::domain::{
    Account, AccountId, Direction, DomainError, MAX_BALANCE_MINOR, NewAccount, NewTransfer, Origin, Posting, Records,
    Scope, Transaction, Transfer, TransferState,
};
use crate::ledger::Snapshot;

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

/// The `direction` of a reference its payer claimed by cancelling a
/// transfer under it: nothing was posted, and the reference never will be.
const CANCELLED: &str = "cancelled";

/// When a transfer may claim its reference on its payer: the reference is
/// free, or held only by the claim a transfer *to* the account left when
/// references were one namespace (a credit leg's): that was never the
/// account's own reference.
const CLAIMABLE_BY_A_TRANSFER: &str =
    "attribute_not_exists(pk) OR (#direction = :credit AND attribute_exists(#transfer))";

/// How often a write is retried when DynamoDB reports a transaction conflict.
const CONFLICT_RETRIES: u32 = 12;

/// The most pages a ledger snapshot reads (a million items at the smallest page).
const MAX_SCAN_PAGES: usize = 100_000;

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
    /// A posting existed and was reversed by this transaction (reference `void#<reference>`).
    Reversed(Transaction),
}

/// Whether a write was new or a replay of an earlier one with the same reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// This request moved the money.
    New,
    /// An earlier request with the same reference did; nothing moved now.
    Replayed,
}

/// The reference under which a voided posting is reversed. `#` is not in
/// the alphabet of callers' references (`domain::reference`), so no posting
/// of a caller's can ever be taken for a reversal, or block one.
pub fn reversal_reference(reference: &str) -> String {
    format!("void#{reference}")
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

/// The key of the transfer `reference` of `payer`.
fn transfer_key(payer: AccountId, reference: &str) -> [(&'static str, AttributeValue); 2] {
    [("pk", pk(payer)), ("sk", s(format!("TRANSFER#{reference}")))]
}

/// The key transfers had when references were one namespace for every payer.
fn legacy_transfer_key(reference: &str) -> [(&'static str, AttributeValue); 2] {
    [("pk", s(format!("TRANSFER#{reference}"))), ("sk", s("TRANSFER"))]
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Malformed {
    Malformed(e.to_string())
}

/// Reads the items this store writes.
struct Stored<'a>(Item<'a>);

impl Stored<'_> {
    fn account(&self, id: AccountId) -> Result<Account, StoreError> {
        Ok(Account {
            id,
            owner: self.0.string("owner")?,
            holder: self.0.string("holder")?,
            currency: self.0.currency("currency")?,
            balance_minor: self.0.number("balance")?,
            created_at: self.0.string("created_at")?,
            records: Records::of(self.0.0),
        })
    }

    fn transaction(&self, account_id: AccountId) -> Result<Transaction, StoreError> {
        Ok(Transaction {
            id: self.uuid("tx_id")?,
            account_id,
            direction: Direction::parse(&self.0.string("direction")?)
                .ok_or_else(|| Malformed(String::from("direction is neither credit nor debit")))?,
            amount_minor: self.0.number("amount")?,
            currency: self.0.currency("currency")?,
            reference: self.0.string("reference")?,
            origin: match self.0.optional_string("transfer")? {
                Some(transfer) => Origin::Transfer { transfer },
                None => Origin::External,
            },
            created_at: self.0.string("created_at")?,
        })
    }

    fn transfer(&self) -> Result<Transfer, StoreError> {
        let state = match self.0.string("state")?.as_str() {
            "applied" => TransferState::Applied {
                debit: self.uuid("debit_tx")?,
                credit: self.uuid("credit_tx")?,
            },
            "cancelled" => TransferState::Cancelled,
            other => return Err(Malformed(format!("transfer state {other} is neither applied nor cancelled")).into()),
        };
        Ok(Transfer {
            reference: self.0.string("reference")?,
            from_account: self.account_id("from_account")?,
            to_account: self.account_id("to_account")?,
            amount_minor: self.0.number("amount")?,
            currency: self.0.currency("currency")?,
            state,
            created_at: self.0.string("created_at")?,
            records: Records::of(self.0.0),
        })
    }

    fn uuid(&self, name: &str) -> Result<uuid::Uuid, Malformed> {
        let raw = self.0.string(name)?;
        uuid::Uuid::parse_str(&raw).map_err(|_| Malformed(format!("{name} {raw} is not a UUID")))
    }

    fn account_id(&self, name: &str) -> Result<AccountId, Malformed> {
        self.uuid(name).map(AccountId)
    }
}

/// The conditional balance change of one posting: debits never below zero,
/// credits never past [`MAX_BALANCE_MINOR`], both only in the account's
/// currency and on an account of `records` (and `owner`'s, when given).
fn balance_update(
    table: &str,
    account: AccountId,
    direction: Direction,
    amount: u64,
    currency: &str,
    owner: Option<&str>,
    records: Records,
) -> Result<TransactWriteItem, Malformed> {
    let (expression, condition) = match direction {
        Direction::Debit => ("SET balance = balance - :amount", "balance >= :amount"),
        Direction::Credit => ("SET balance = balance + :amount", "balance <= :limit"),
    };
    let owned = if owner.is_some() { " AND #owner = :owner" } else { "" };
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", pk(account))
        .key("sk", s("ACCOUNT"))
        .update_expression(expression)
        .condition_expression(format!(
            "attribute_exists(pk) AND {} AND currency = :currency AND {condition}{owned}",
            records.condition()
        ))
        .expression_attribute_values(":amount", n(amount))
        .expression_attribute_values(":currency", s(currency));
    if direction == Direction::Credit {
        update = update.expression_attribute_values(":limit", n(MAX_BALANCE_MINOR - amount));
    }
    if let Some(owner) = owner {
        update = update
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner));
    }
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(build_error)?)
        .build())
}

/// `put` with the attributes of `records` (see [`Records::attributes`]).
fn marked(put: PutBuilder, records: Records) -> PutBuilder {
    records
        .attributes()
        .into_iter()
        .fold(put, |put, (name, value)| put.item(name, value))
}

/// The items of one posting: its transaction, and the claim of its
/// reference on its account.
#[derive(Clone, Copy)]
enum PostingItem {
    Transaction,
    Reference,
}

/// One item of a posting.
fn posting_item(
    table: &str,
    tx: &Transaction,
    records: Records,
    which: PostingItem,
) -> Result<TransactWriteItem, Malformed> {
    let sk = match which {
        PostingItem::Transaction => format!("TX#{}", tx.id),
        PostingItem::Reference => format!("REF#{}", tx.reference),
    };
    let put = marked(Put::builder(), records)
        .table_name(table)
        .item("pk", pk(tx.account_id))
        .item("tx_id", s(tx.id.to_string()))
        .item("direction", s(tx.direction.as_str()))
        .item("amount", n(tx.amount_minor))
        .item("currency", s(tx.currency.as_str()))
        .item("reference", s(&tx.reference))
        .item("created_at", s(&tx.created_at))
        .item("sk", s(sk));
    let put = match (&tx.origin, which) {
        (Origin::External, _) => put.condition_expression("attribute_not_exists(pk)"),
        (Origin::Transfer { transfer }, PostingItem::Transaction) => put
            .item("transfer", s(transfer))
            .condition_expression("attribute_not_exists(pk)"),
        (Origin::Transfer { transfer }, PostingItem::Reference) => {
            claimable_by_a_transfer(put.item("transfer", s(transfer)))
        }
    };
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(build_error)?)
        .build())
}

/// `put` of a transfer's reference claim on its payer, conditioned on
/// [`CLAIMABLE_BY_A_TRANSFER`].
fn claimable_by_a_transfer(put: PutBuilder) -> PutBuilder {
    put.condition_expression(CLAIMABLE_BY_A_TRANSFER)
        .expression_attribute_names("#direction", "direction")
        .expression_attribute_names("#transfer", "transfer")
        .expression_attribute_values(":credit", s(Direction::Credit.as_str()))
}

/// The claim a cancellation makes on its payer's account: the reference is
/// taken, with nothing posted under it.
fn cancellation_claim(table: &str, transfer: &Transfer) -> Result<TransactWriteItem, Malformed> {
    let put = marked(Put::builder(), transfer.records)
        .table_name(table)
        .item("pk", pk(transfer.from_account))
        .item("sk", s(format!("REF#{}", transfer.reference)))
        .item("direction", s(CANCELLED))
        .item("reference", s(&transfer.reference))
        .item("transfer", s(&transfer.reference))
        .item("created_at", s(&transfer.created_at));
    Ok(TransactWriteItem::builder()
        .put(claimable_by_a_transfer(put).build().map_err(build_error)?)
        .build())
}

/// The transaction item and the reference claim of one posting.
fn posting_items(table: &str, tx: &Transaction, records: Records) -> Result<[TransactWriteItem; 2], Malformed> {
    Ok([
        posting_item(table, tx, records, PostingItem::Transaction)?,
        posting_item(table, tx, records, PostingItem::Reference)?,
    ])
}

/// A condition that `payer` recorded no transfer of `reference` under its
/// legacy key (another payer's there is not this one's business).
fn no_legacy_transfer(table: &str, payer: AccountId, reference: &str) -> Result<TransactWriteItem, Malformed> {
    let check = legacy_transfer_key(reference)
        .into_iter()
        .fold(ConditionCheck::builder(), |check, (name, value)| check.key(name, value))
        .table_name(table)
        .condition_expression("attribute_not_exists(pk) OR from_account <> :payer")
        .expression_attribute_values(":payer", s(payer.to_string()))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// Which items of a cancelled transaction failed their condition.
struct Cancelled(Vec<bool>);

impl Cancelled {
    fn failed(&self, item: usize) -> bool {
        self.0.get(item).copied().unwrap_or(false)
    }
}

/// What a transaction attempt came to.
enum Attempt {
    Written,
    Cancelled(Cancelled),
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

    /// Opens an account with a zero balance (marked when synthetic).
    pub async fn open(&self, new: NewAccount) -> Result<Account, StoreError> {
        let account = Account {
            id: AccountId::new(),
            owner: new.owner,
            holder: new.holder,
            currency: new.currency,
            balance_minor: 0,
            created_at: now(),
            records: new.records,
        };
        let mut put = self.client.put_item().table_name(&self.table);
        for (name, value) in account.records.attributes() {
            put = put.item(name, value);
        }
        put.item("pk", pk(account.id))
            .item("sk", s("ACCOUNT"))
            .item("owner", s(&account.owner))
            .item("holder", s(&account.holder))
            .item("currency", s(account.currency.as_str()))
            .item("balance", n(0))
            .item("created_at", s(&account.created_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(failure("PutItem"))?;
        Ok(account)
    }

    /// Reads an account, whoever's (strongly consistent).
    pub async fn get(&self, id: AccountId) -> Result<Account, StoreError> {
        self.find(id).await?.ok_or_else(|| DomainError::NotFound(id).into())
    }

    /// Reads an account in `scope`: another owner's account, or one of the
    /// other records, is not found, exactly as one that does not exist
    /// (nothing tells them apart).
    pub async fn get_owned(&self, id: AccountId, scope: Scope<'_>) -> Result<Account, StoreError> {
        match self.find(id).await? {
            Some(account) if scope.sees(&account) => Ok(account),
            _ => Err(DomainError::NotFound(id).into()),
        }
    }

    /// Whether account `id` exists and is `owner`'s, whichever its records.
    async fn owned_by(&self, id: AccountId, owner: &str) -> Result<bool, StoreError> {
        Ok(self.find(id).await?.is_some_and(|account| account.owner == owner))
    }

    async fn find(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
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
        output.item.map(|item| Stored(Item(&item)).account(id)).transpose()
    }

    /// Sends a transaction, retrying DynamoDB's transaction conflicts with
    /// jittered backoff; a cancellation for a failed condition is returned
    /// for the caller to explain.
    async fn transact(&self, request: TransactWriteItemsFluentBuilder, busy: AccountId) -> Result<Attempt, StoreError> {
        for attempt in 0..CONFLICT_RETRIES {
            let err = match request.clone().send().await {
                Ok(_) => return Ok(Attempt::Written),
                Err(err) => err,
            };
            let codes: Vec<Option<String>> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_owned))
                    .collect(),
                _ => return Err(failure("TransactWriteItems")(err).into()),
            };
            let failed: Vec<bool> = codes
                .iter()
                .map(|c| c.as_deref() == Some("ConditionalCheckFailed"))
                .collect();
            if failed.iter().any(|f| *f) {
                return Ok(Attempt::Cancelled(Cancelled(failed)));
            }
            if !codes.iter().any(|r| r.as_deref() == Some("TransactionConflict")) {
                return Err(failure("TransactWriteItems")(err).into());
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(StoreError::Busy(busy))
    }

    /// Posts an external credit or debit atomically on an account of
    /// `records`: the transaction, and whether it is a replay of an earlier
    /// posting with the same reference.
    pub async fn post(
        &self,
        id: AccountId,
        posting: &Posting,
        records: Records,
    ) -> Result<(Transaction, Applied), StoreError> {
        let tx = Transaction {
            id: uuid::Uuid::now_v7(),
            account_id: id,
            direction: posting.direction,
            amount_minor: posting.amount_minor,
            currency: posting.currency.clone(),
            reference: posting.reference.clone(),
            origin: Origin::External,
            created_at: now(),
        };
        let update = balance_update(
            &self.table,
            id,
            tx.direction,
            tx.amount_minor,
            tx.currency.as_str(),
            None,
            records,
        )?;
        let [transaction, reference] = posting_items(&self.table, &tx, records)?;
        let request = self
            .client
            .transact_write_items()
            .set_transact_items(Some(vec![update, transaction, reference]));
        match self.transact(request, id).await? {
            Attempt::Written => Ok((tx, Applied::New)),
            Attempt::Cancelled(why) if why.failed(2) => {
                self.replay(id, posting).await.map(|tx| (tx, Applied::Replayed))
            }
            Attempt::Cancelled(_) => Err(self.explain_refusal(id, posting, records).await),
        }
    }

    /// Moves money between two accounts of this ledger in one transaction:
    /// the debit, the credit, and the transfer record claimed by its
    /// reference on the payer. Replaying a reference returns the first
    /// transfer; a cancelled reference never applies. Both accounts must be of the
    /// scope's records, and with an owner the payer must be theirs
    /// (conditions of the legs): another owner's account, or one of the
    /// other records, is refused exactly as one that does not exist.
    pub async fn transfer(&self, new: &NewTransfer, scope: Scope<'_>) -> Result<(Transfer, Applied), StoreError> {
        let (owner, records) = (scope.owner, scope.records);
        let created_at = now();
        let leg = |account_id, direction| Transaction {
            id: uuid::Uuid::now_v7(),
            account_id,
            direction,
            amount_minor: new.amount_minor,
            currency: new.currency.clone(),
            reference: new.reference.clone(),
            origin: Origin::Transfer {
                transfer: new.reference.clone(),
            },
            created_at: created_at.clone(),
        };
        let (debit, credit) = (
            leg(new.from_account, Direction::Debit),
            leg(new.to_account, Direction::Credit),
        );
        let transfer = Transfer {
            reference: new.reference.clone(),
            from_account: new.from_account,
            to_account: new.to_account,
            amount_minor: new.amount_minor,
            currency: new.currency.clone(),
            state: TransferState::Applied {
                debit: debit.id,
                credit: credit.id,
            },
            created_at,
            records,
        };
        let currency = new.currency.as_str();
        let [debit_tx, debit_ref] = posting_items(&self.table, &debit, records)?;
        let credit_tx = posting_item(&self.table, &credit, records, PostingItem::Transaction)?;
        let request = self.client.transact_write_items().set_transact_items(Some(vec![
            balance_update(
                &self.table,
                new.from_account,
                Direction::Debit,
                new.amount_minor,
                currency,
                owner,
                records,
            )?,
            balance_update(
                &self.table,
                new.to_account,
                Direction::Credit,
                new.amount_minor,
                currency,
                None,
                records,
            )?,
            TransactWriteItem::builder().put(self.transfer_put(&transfer)?).build(),
            no_legacy_transfer(&self.table, new.from_account, &new.reference)?,
            debit_tx,
            credit_tx,
            debit_ref,
        ]));
        match self.transact(request, new.from_account).await? {
            Attempt::Written => Ok((transfer, Applied::New)),
            Attempt::Cancelled(why) if why.failed(2) || why.failed(3) => {
                // Whose reference it is says nothing to anyone but the payer's
                // owner. Judged by the stored payer's owner, not by the
                // caller's records today: a replay of a transfer that applied
                // must find it, even if the payer was written before records
                // were told apart or its owner's classification changed.
                if let Some(owner) = owner
                    && !self.owned_by(new.from_account, owner).await?
                {
                    return Err(DomainError::UnknownParty { field: "from_account" }.into());
                }
                // Only the movement the reference was used for learns what
                // became of it: another body is a conflict, and so is a
                // legacy transfer of another payer's under the reference.
                match self.find_transfer(new.from_account, &new.reference).await? {
                    Some(earlier) if new.same_as(&earlier) => match earlier.state {
                        TransferState::Cancelled => Err(DomainError::TransferCancelled(new.reference.clone()).into()),
                        TransferState::Applied { .. } => Ok((earlier, Applied::Replayed)),
                    },
                    _ => Err(DomainError::ReferenceConflict(new.reference.clone()).into()),
                }
            }
            Attempt::Cancelled(why) if why.failed(0) || why.failed(1) => Err(self.explain_parties(new, scope).await),
            Attempt::Cancelled(_) => Err(DomainError::ReferenceConflict(new.reference.clone()).into()),
        }
    }

    fn transfer_put(&self, transfer: &Transfer) -> Result<Put, Malformed> {
        let put = transfer_key(transfer.from_account, &transfer.reference)
            .into_iter()
            .fold(marked(Put::builder(), transfer.records), |put, (name, value)| {
                put.item(name, value)
            })
            .table_name(&self.table)
            .item("reference", s(&transfer.reference))
            .item("from_account", s(transfer.from_account.to_string()))
            .item("to_account", s(transfer.to_account.to_string()))
            .item("amount", n(transfer.amount_minor))
            .item("currency", s(transfer.currency.as_str()))
            .item("created_at", s(&transfer.created_at))
            .condition_expression("attribute_not_exists(pk)");
        let put = match transfer.state {
            TransferState::Applied { debit, credit } => put
                .item("state", s("applied"))
                .item("debit_tx", s(debit.to_string()))
                .item("credit_tx", s(credit.to_string())),
            TransferState::Cancelled => put.item("state", s("cancelled")),
        };
        put.build().map_err(build_error)
    }

    /// The transfer `reference` of the payer `payer` in `scope`: of its
    /// records, and with an owner theirs when they own its payer or its
    /// payee; else not found.
    pub async fn get_transfer_owned(
        &self,
        payer: AccountId,
        reference: &str,
        scope: Scope<'_>,
    ) -> Result<Transfer, StoreError> {
        let missing = || StoreError::from(DomainError::NoTransfer(reference.to_owned()));
        let transfer = self.find_transfer(payer, reference).await?.ok_or_else(missing)?;
        if transfer.records != scope.records {
            return Err(missing());
        }
        let Some(owner) = scope.owner else { return Ok(transfer) };
        let (payer, payee) = tokio::try_join!(self.find(transfer.from_account), self.find(transfer.to_account))?;
        let theirs = [payer, payee].into_iter().flatten().any(|a| a.owner == owner);
        if theirs { Ok(transfer) } else { Err(missing()) }
    }

    /// The transfer `reference` of `payer`: under its key, or under the
    /// legacy key when that one's payer is `payer`.
    async fn find_transfer(&self, payer: AccountId, reference: &str) -> Result<Option<Transfer>, StoreError> {
        if let Some(transfer) = self.read_transfer(transfer_key(payer, reference)).await? {
            return Ok(Some(transfer));
        }
        let legacy = self.read_transfer(legacy_transfer_key(reference)).await?;
        Ok(legacy.filter(|transfer| transfer.from_account == payer))
    }

    async fn read_transfer(&self, key: [(&'static str, AttributeValue); 2]) -> Result<Option<Transfer>, StoreError> {
        let output = key
            .into_iter()
            .fold(self.client.get_item(), |get, (name, value)| get.key(name, value))
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .map_err(failure("GetItem"))?;
        output.item.map(|item| Stored(Item(&item)).transfer()).transpose()
    }

    /// Cancels the transfer `new.reference` of `new.from_account` unless it
    /// applied: afterwards it never will. Returns the transfer as it stands:
    /// `Cancelled` (nothing moved) or `Applied` (it had). Safe to repeat. A
    /// reference that applied to a different movement is a conflict. With an
    /// owner in `scope`, only the payer's owner may cancel; the cancellation
    /// is of the scope's records.
    pub async fn cancel_transfer(&self, new: &NewTransfer, scope: Scope<'_>) -> Result<Transfer, StoreError> {
        // As for a replay: by the stored payer's owner, whatever its records.
        if let Some(owner) = scope.owner
            && !self.owned_by(new.from_account, owner).await?
        {
            return Err(DomainError::UnknownParty { field: "from_account" }.into());
        }
        let cancelled = Transfer {
            reference: new.reference.clone(),
            from_account: new.from_account,
            to_account: new.to_account,
            amount_minor: new.amount_minor,
            currency: new.currency.clone(),
            state: TransferState::Cancelled,
            created_at: now(),
            records: scope.records,
        };
        let request = self.client.transact_write_items().set_transact_items(Some(vec![
            TransactWriteItem::builder().put(self.transfer_put(&cancelled)?).build(),
            no_legacy_transfer(&self.table, new.from_account, &new.reference)?,
            cancellation_claim(&self.table, &cancelled)?,
        ]));
        match self.transact(request, new.from_account).await? {
            Attempt::Written => Ok(cancelled),
            // Only the request that made the transfer (or the cancellation)
            // under this reference learns what it is: anyone else's body is
            // a conflict, and says nothing more.
            Attempt::Cancelled(_) => match self.find_transfer(new.from_account, &new.reference).await? {
                Some(existing) if new.same_as(&existing) => Ok(existing),
                _ => Err(DomainError::ReferenceConflict(new.reference.clone()).into()),
            },
        }
    }

    /// What claimed `reference` on an account: the posting's transaction, or
    /// `None` when a void or a transfer's cancellation claimed it.
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
        let direction = Item(&item).string("direction")?;
        if direction == VOID || direction == CANCELLED {
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
        let same = earlier.origin == Origin::External
            && earlier.direction == posting.direction
            && earlier.amount_minor == posting.amount_minor
            && earlier.currency == posting.currency;
        if same {
            Ok(earlier)
        } else {
            Err(DomainError::ReferenceConflict(posting.reference.clone()).into())
        }
    }

    /// Voids the external posting `reference` on an account: reverses it,
    /// or, when there is none, claims the reference so that a posting still
    /// on its way (a request that timed out at the caller) can never apply.
    /// A leg of a transfer is refused: the ledger never reverses one leg
    /// alone. Safe to repeat: the reversal has its own reference. An
    /// account of the other `records` is not found.
    pub async fn void(&self, id: AccountId, reference: &str, records: Records) -> Result<Voided, StoreError> {
        let account = self.get_owned(id, Scope { owner: None, records }).await?;
        let mut claim = self.client.put_item().table_name(&self.table);
        for (name, value) in records.attributes() {
            claim = claim.item(name, value);
        }
        let claimed = claim
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
        if let Origin::Transfer { transfer } = original.origin {
            return Err(DomainError::TransferLeg {
                reference: reference.to_owned(),
                transfer,
            }
            .into());
        }
        let reversal = Posting {
            direction: match original.direction {
                Direction::Credit => Direction::Debit,
                Direction::Debit => Direction::Credit,
            },
            amount_minor: original.amount_minor,
            currency: account.currency,
            reference: reversal_reference(reference),
        };
        self.post(id, &reversal, records)
            .await
            .map(|(tx, _)| Voided::Reversed(tx))
    }

    /// Why the balance condition of an external posting failed, read after the fact.
    async fn explain_refusal(&self, id: AccountId, posting: &Posting, records: Records) -> StoreError {
        match self.get_owned(id, Scope { owner: None, records }).await {
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

    /// Why a transfer's conditions on its parties failed, read after the
    /// fact. What does not depend on balances comes first, so the answer is
    /// the same whatever the balances: a missing payer, a missing payee, the
    /// payer's currency, the payee's, then the payer's funds and the payee's limit.
    async fn explain_parties(&self, new: &NewTransfer, scope: Scope<'_>) -> StoreError {
        let (payer, payee) = match tokio::try_join!(self.find(new.from_account), self.find(new.to_account)) {
            Ok(parties) => parties,
            Err(err) => return err,
        };
        // Someone else's payer account is, to this caller, no account; so
        // is a payee of the other records.
        let payer = payer.filter(|p| scope.sees(p));
        let payee = payee.filter(|p| p.records == scope.records);
        // Why another owner's payee cannot receive (its currency, its
        // balance) is not the payer's to learn.
        let strangers = |payee: &Account| scope.owner.is_some_and(|owner| payee.owner != owner);
        let currency = |field, account: &Account| DomainError::PartyCurrency {
            field,
            account: account.currency.as_str().to_owned(),
            transfer: new.currency.as_str().to_owned(),
        };
        let refusal = match (payer, payee) {
            (None, _) => DomainError::UnknownParty { field: "from_account" },
            (_, None) => DomainError::UnknownParty { field: "to_account" },
            (Some(payer), _) if payer.currency != new.currency => currency("from_account", &payer),
            // The payer's own balance before anything about the payee, so
            // that a payer who could not pay learns nothing of the payee.
            (Some(payer), _) if payer.balance_minor < new.amount_minor => DomainError::InsufficientFunds {
                balance_minor: payer.balance_minor,
                amount_minor: new.amount_minor,
            },
            (_, Some(payee)) if strangers(&payee) => DomainError::PayeeCannotReceive,
            (_, Some(payee)) if payee.currency != new.currency => currency("to_account", &payee),
            _ => DomainError::BalanceLimit,
        };
        refusal.into()
    }

    /// One page of an account's transactions, newest first (for `scope`, see [`Store::get_owned`]).
    pub async fn transactions(
        &self,
        id: AccountId,
        scope: Scope<'_>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page, StoreError> {
        self.get_owned(id, scope).await?;
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

    /// Every customers' account, transaction and transfer in the table, read
    /// with a consistent scan: what [`crate::ledger::audit`] checks. Synthetic
    /// items are left out: time to live deletes them one by one, in no
    /// order, so they need not balance. A full read of the table, for
    /// reconciliation, not for a request path.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::default();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        for _ in 0..MAX_SCAN_PAGES {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(failure("Scan"))?;
            for item in output.items() {
                if Records::of(item).is_synthetic() {
                    continue;
                }
                let stored = Stored(Item(item));
                let (pk, sk) = (stored.0.string("pk")?, stored.0.string("sk")?);
                if pk.starts_with("TRANSFER#") || sk.starts_with("TRANSFER#") {
                    snapshot.transfers.push(stored.transfer()?);
                    continue;
                }
                let id = pk
                    .strip_prefix("ACCOUNT#")
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .map(AccountId)
                    .ok_or_else(|| Malformed(format!("pk {pk} is neither an account nor a transfer")))?;
                if sk == "ACCOUNT" {
                    snapshot.accounts.push(stored.account(id)?);
                } else if sk.starts_with("TX#") {
                    snapshot.transactions.push(stored.transaction(id)?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(snapshot),
            }
        }
        Err(Malformed(format!("the table has more than {MAX_SCAN_PAGES} pages")).into())
    }
}

/// Exponential backoff with jitter: 5 ms doubling to 320 ms, times 0.5 to 1.5.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255;
    Duration::from_millis(base / 2 + jitter)
}
