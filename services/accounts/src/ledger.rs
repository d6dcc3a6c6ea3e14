//! The ledger's invariants, checked over everything the store holds. The
//! store enforces them on every write; [`audit`] proves they held, after the
//! fact, for reconciliation and for tests that throw random requests and
//! faults at the services.
//!
//! 1. Every posting is an external movement or a leg of a transfer.
//! 2. An applied transfer has exactly its two legs (a debit of the payer
//!    and a credit of the payee, of its amount and currency); a cancelled
//!    one has none.
//! 3. Each account's balance is the sum of its postings (so never below
//!    zero: balances are unsigned and postings are conditional).
//! 4. The sum of all balances is the sum of external credits minus external
//!    debits: transfers move money, never make or destroy it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::domain::{Account, AccountId, Direction, Origin, Transaction, Transfer, TransferState};

/// Everything the ledger holds, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The accounts.
    pub accounts: Vec<Account>,
    /// Every posting on every account.
    pub transactions: Vec<Transaction>,
    /// Every transfer, applied or cancelled.
    pub transfers: Vec<Transfer>,
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "violation", rename_all = "snake_case")]
pub enum Violation {
    /// A posting claims a transfer that does not exist, or was cancelled.
    OrphanLeg {
        /// The posting.
        transaction: uuid::Uuid,
        /// The transfer it names.
        transfer: String,
    },
    /// An applied transfer lacks a leg, or has it more than once.
    LegCount {
        /// The transfer's reference.
        transfer: String,
        /// Its payer (a reference is the payer's).
        payer: AccountId,
        /// Which leg.
        direction: Direction,
        /// How many postings there are of it (should be 1).
        found: usize,
    },
    /// A leg whose account, amount or currency is not its transfer's.
    LegMismatch {
        /// The transfer.
        transfer: String,
        /// The posting.
        transaction: uuid::Uuid,
    },
    /// A posting on an account the ledger does not have.
    UnknownAccount {
        /// The posting.
        transaction: uuid::Uuid,
        /// The account it names.
        account: AccountId,
    },
    /// A balance that is not the sum of the account's postings.
    Balance {
        /// The account.
        account: AccountId,
        /// Its stored balance.
        balance_minor: u64,
        /// Credits minus debits of its postings.
        postings_minor: i128,
    },
    /// The ledger's total is not what external movements brought in.
    Total {
        /// The sum of all balances.
        balances_minor: i128,
        /// External credits minus external debits.
        external_minor: i128,
    },
}

/// What an audit found: the totals, and every violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// Accounts examined.
    pub accounts: usize,
    /// Postings examined.
    pub transactions: usize,
    /// Transfers applied.
    pub transfers_applied: usize,
    /// Transfers cancelled.
    pub transfers_cancelled: usize,
    /// The sum of all balances.
    pub balances_minor: i128,
    /// Every broken invariant; empty when the ledger is sound.
    pub violations: Vec<Violation>,
}

impl Audit {
    /// Whether every invariant holds.
    pub fn is_sound(&self) -> bool {
        self.violations.is_empty()
    }
}

fn signed(tx: &Transaction) -> i128 {
    match tx.direction {
        Direction::Credit => i128::from(tx.amount_minor),
        Direction::Debit => -i128::from(tx.amount_minor),
    }
}

/// Checks every invariant over `snapshot`.
pub fn audit(snapshot: &Snapshot) -> Audit {
    let mut violations = Vec::new();
    let accounts: HashMap<AccountId, &Account> = snapshot.accounts.iter().map(|a| (a.id, a)).collect();
    // A leg belongs to the applied transfer that names it; a leg no transfer
    // names, to the one of its reference on which its account is that leg's
    // party (a duplicate).
    let applied: Vec<&Transfer> = snapshot
        .transfers
        .iter()
        .filter(|t| matches!(t.state, TransferState::Applied { .. }))
        .collect();
    let mut named: HashMap<uuid::Uuid, (usize, Direction)> = HashMap::new();
    let mut by_party: HashMap<(&str, AccountId, Direction), usize> = HashMap::new();
    for (index, transfer) in applied.iter().enumerate() {
        if let TransferState::Applied { debit, credit } = transfer.state {
            named.insert(debit, (index, Direction::Debit));
            named.insert(credit, (index, Direction::Credit));
        }
        by_party.insert(
            (transfer.reference.as_str(), transfer.from_account, Direction::Debit),
            index,
        );
        by_party.insert(
            (transfer.reference.as_str(), transfer.to_account, Direction::Credit),
            index,
        );
    }
    let mut postings: HashMap<AccountId, i128> = HashMap::new();
    let mut legs: BTreeMap<(usize, Direction), Vec<&Transaction>> = BTreeMap::new();
    let mut external = 0i128;
    for tx in &snapshot.transactions {
        if !accounts.contains_key(&tx.account_id) {
            violations.push(Violation::UnknownAccount {
                transaction: tx.id,
                account: tx.account_id,
            });
        }
        *postings.entry(tx.account_id).or_default() += signed(tx);
        match &tx.origin {
            Origin::External => external += signed(tx),
            Origin::Transfer { transfer } => {
                let owner = named.get(&tx.id).copied().or_else(|| {
                    by_party
                        .get(&(transfer.as_str(), tx.account_id, tx.direction))
                        .map(|index| (*index, tx.direction))
                });
                match owner {
                    Some(leg) => legs.entry(leg).or_default().push(tx),
                    None => violations.push(Violation::OrphanLeg {
                        transaction: tx.id,
                        transfer: transfer.clone(),
                    }),
                }
            }
        }
    }
    for (index, transfer) in applied.iter().enumerate() {
        for (direction, account) in [
            (Direction::Debit, transfer.from_account),
            (Direction::Credit, transfer.to_account),
        ] {
            let found = legs.get(&(index, direction)).map_or(&[][..], Vec::as_slice);
            if found.len() != 1 {
                violations.push(Violation::LegCount {
                    transfer: transfer.reference.clone(),
                    payer: transfer.from_account,
                    direction,
                    found: found.len(),
                });
            }
            for leg in found {
                if leg.account_id != account
                    || leg.direction != direction
                    || leg.amount_minor != transfer.amount_minor
                    || leg.currency != transfer.currency
                {
                    violations.push(Violation::LegMismatch {
                        transfer: transfer.reference.clone(),
                        transaction: leg.id,
                    });
                }
            }
        }
    }
    let mut balances = 0i128;
    for account in &snapshot.accounts {
        balances += i128::from(account.balance_minor);
        let sum = postings.get(&account.id).copied().unwrap_or_default();
        if sum != i128::from(account.balance_minor) {
            violations.push(Violation::Balance {
                account: account.id,
                balance_minor: account.balance_minor,
                postings_minor: sum,
            });
        }
    }
    if balances != external {
        violations.push(Violation::Total {
            balances_minor: balances,
            external_minor: external,
        });
    }
    Audit {
        accounts: snapshot.accounts.len(),
        transactions: snapshot.transactions.len(),
        transfers_applied: applied.len(),
        transfers_cancelled: snapshot.transfers.len() - applied.len(),
        balances_minor: balances,
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn account(balance_minor: u64) -> Account {
        Account {
            id: AccountId::new(),
            owner: String::from("t"),
            holder: String::from("T"),
            currency: eur(),
            balance_minor,
            created_at: String::new(),
            records: crate::domain::Records::Customers,
        }
    }

    fn tx(account: &Account, direction: Direction, amount_minor: u64, origin: Origin) -> Transaction {
        Transaction {
            id: uuid::Uuid::now_v7(),
            account_id: account.id,
            direction,
            amount_minor,
            currency: eur(),
            reference: String::from("r"),
            origin,
            created_at: String::new(),
        }
    }

    fn transfer(from: &Account, to: &Account, amount_minor: u64, state: TransferState) -> Transfer {
        Transfer {
            reference: String::from("t1"),
            from_account: from.id,
            to_account: to.id,
            amount_minor,
            currency: eur(),
            state,
            created_at: String::new(),
            records: crate::domain::Records::Customers,
        }
    }

    fn leg() -> Origin {
        Origin::Transfer {
            transfer: String::from("t1"),
        }
    }

    /// A payer funded with 100 who paid 30 to a payee.
    fn sound() -> Snapshot {
        let (payer, payee) = (account(70), account(30));
        let debit = tx(&payer, Direction::Debit, 30, leg());
        let credit = tx(&payee, Direction::Credit, 30, leg());
        let applied = TransferState::Applied {
            debit: debit.id,
            credit: credit.id,
        };
        Snapshot {
            transactions: vec![tx(&payer, Direction::Credit, 100, Origin::External), debit, credit],
            transfers: vec![transfer(&payer, &payee, 30, applied)],
            accounts: vec![payer, payee],
        }
    }

    #[test]
    fn a_sound_ledger_has_no_violations() {
        let audit = audit(&sound());
        assert_eq!(audit.violations, []);
        assert_eq!((audit.balances_minor, audit.transfers_applied), (100, 1));
    }

    #[test]
    fn a_missing_leg_is_found_and_money_appears_out_of_nowhere() {
        let mut snapshot = sound();
        // The payee's credit without the payer's debit: 30 created.
        snapshot.transactions.remove(1);
        snapshot.accounts[0].balance_minor = 100;
        let audit = audit(&snapshot);
        assert!(
            audit.violations.contains(&Violation::LegCount {
                transfer: String::from("t1"),
                payer: snapshot.accounts[0].id,
                direction: Direction::Debit,
                found: 0,
            }),
            "{:?}",
            audit.violations
        );
        assert!(audit.violations.contains(&Violation::Total {
            balances_minor: 130,
            external_minor: 100
        }));
    }

    #[test]
    fn a_leg_of_a_cancelled_transfer_is_an_orphan() {
        let mut snapshot = sound();
        snapshot.transfers[0].state = TransferState::Cancelled;
        let violations = audit(&snapshot).violations;
        assert_eq!(
            violations
                .iter()
                .filter(|v| matches!(v, Violation::OrphanLeg { .. }))
                .count(),
            2,
            "{violations:?}"
        );
    }

    #[test]
    fn a_duplicated_leg_and_a_wrong_balance_are_found() {
        let mut snapshot = sound();
        let again = tx(&snapshot.accounts[1], Direction::Credit, 30, leg());
        snapshot.transactions.push(again);
        let violations = audit(&snapshot).violations;
        assert!(violations.contains(&Violation::LegCount {
            transfer: String::from("t1"),
            payer: snapshot.accounts[0].id,
            direction: Direction::Credit,
            found: 2,
        }));
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, Violation::Balance { postings_minor: 60, .. })),
            "{violations:?}"
        );
    }

    /// A reference is the payer's: two payers may each use one, and each
    /// transfer keeps its own legs.
    #[test]
    fn two_payers_may_use_one_reference() {
        let mut snapshot = sound();
        let other = account(0);
        let payee = snapshot.accounts[1].clone();
        let funding = tx(&other, Direction::Credit, 5, Origin::External);
        let debit = tx(&other, Direction::Debit, 5, leg());
        let credit = tx(&payee, Direction::Credit, 5, leg());
        let applied = TransferState::Applied {
            debit: debit.id,
            credit: credit.id,
        };
        snapshot.transfers.push(transfer(&other, &payee, 5, applied));
        snapshot.transactions.extend([funding, debit, credit]);
        snapshot.accounts[1].balance_minor += 5;
        snapshot.accounts.push(other);
        let audit = audit(&snapshot);
        assert_eq!(audit.violations, []);
        assert_eq!(audit.transfers_applied, 2);
    }

    #[test]
    fn a_leg_on_the_wrong_account_is_a_mismatch() {
        let mut snapshot = sound();
        snapshot.transactions[2].account_id = snapshot.accounts[0].id;
        let violations = audit(&snapshot).violations;
        assert!(
            violations.iter().any(|v| matches!(v, Violation::LegMismatch { .. })),
            "{violations:?}"
        );
    }
}
