//! The [`Store`]: opening it, and the transactions every operation runs in. The operations
//! live by concept: `commit.rs` (a gathered batch), `window.rs` (the header window a batch
//! extends), `entries.rs` (appending notices and reorg records to the log), `lifecycle.rs`
//! (cancellations and consumptions, and the states they leave), `reorg.rs` (what a reorg
//! removes, and halts), `checkpoint.rs` (operator changes), `reads.rs` (what consumers and
//! the pipeline read), `index.rs` (finding a message by nonce or by hash), `nonces.rs` (the
//! runs of held nonces), `meta.rs` (what a database is for, and schema migration),
//! `inspect.rs` (what `ferry db` reports), `damage.rs` (test-utils: stores for `ferry verify`
//! to find fault with).

mod audit;
mod checkpoint;
mod commit;
#[cfg(any(test, feature = "test-utils"))]
mod damage;
mod entries;
mod index;
mod inspect;
mod journal;
mod lifecycle;
mod meta;
mod nonces;
mod reads;
mod refetch;
mod reorg;
mod window;

pub use checkpoint::{CheckpointChanged, CheckpointWrite};
pub use commit::{BatchWrite, CommitOutcome, CommitSummary};
pub use inspect::{DatabaseInfo, SpaceStats, TableStats};
pub use journal::{Journal, JournalEntry, JournalRefusal, JournalSpan, Replayed, StoreWrite};
pub use reads::{Settlement, StoredEntry, Window};
pub use refetch::FoundWrite;
pub use reorg::{ReorgOutcome, ReorgSummary, ReorgWrite};
pub use window::WindowRestart;

use crate::{
    Error, Result, Table,
    tables::Tables,
    txn::{ReadTxn, WriteTxn},
};
use ferry_primitives::{Address, Checkpoint, Position};
use signet_libmdbx::{Environment, Geometry, Mode, SyncMode};
use std::{path::Path, sync::Arc};

/// The version of the table layout and value encodings this build reads and writes. Versions 1
/// (no log notices, no header window), 2 (no message lifecycles), 3 (one hash → seq index)
/// and 4 (audit entries without what a forward move skipped) are migrated when opened.
pub const SCHEMA_VERSION: u32 = 5;

/// The file MDBX keeps a database in, inside its directory.
const DATA_FILE: &str = "mdbx.dat";

/// What a database is for; stored in Meta when it is created and checked on every open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// The L1 chain id.
    pub chain_id: u64,
    /// The messaging contract's address.
    pub contract: Address,
    /// The block the node starts at when no checkpoint is stored.
    pub from_block: u64,
}

/// How the MDBX environment is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// The largest the database file may grow to, in bytes.
    pub max_size: usize,
    /// How much the file grows at a time, in bytes.
    pub growth_step: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        // Address space, not memory: MDBX maps this much and grows the file in steps.
        Self { max_size: 1 << 40, growth_step: 64 << 20 }
    }
}

/// The MDBX store. Cheap to clone; all clones share one environment.
///
/// MDBX allows one write transaction at a time and never makes readers wait for it: every
/// write here is one transaction, so batch commits, reorg records and checkpoint changes are
/// serialised against each other, and reads see the last committed state.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// Set on the handle a standby replays the group's journal through: the journal entry
    /// being applied (see `journal.rs`).
    replaying: Option<journal::Replaying>,
}

#[derive(Debug)]
struct Inner {
    env: Environment,
    tables: Tables,
    config: StoreConfig,
    /// The group's journal every write is appended to before it commits (high availability);
    /// unset for a node on its own.
    journal: std::sync::OnceLock<Arc<dyn Journal>>,
    #[cfg(any(test, feature = "test-utils"))]
    faults: Faults,
}

/// Faults a test can inject (feature `test-utils`).
#[cfg(any(test, feature = "test-utils"))]
#[derive(Debug, Default)]
struct Faults {
    fail_commit_after: std::sync::Mutex<Option<usize>>,
    fail_change: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens the database in `path` (creating the directory and the database if needed) for
    /// the chain and contract in `config`, with default sizing.
    pub fn open(path: &Path, config: StoreConfig) -> Result<Self> {
        Self::open_with(path, config, StoreOptions::default())
    }

    /// Opens the database in `path` with explicit sizing.
    ///
    /// A database created for another chain id or contract, or by a build with a newer
    /// schema version, is refused with an error naming both values, and is left untouched.
    /// An older version (1 to 4) is migrated in place, in one transaction. A changed `from_block` is recorded: it only
    /// matters while no checkpoint is stored.
    pub fn open_with(path: &Path, config: StoreConfig, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|source| Error::CreateDir { path: path.to_owned(), source })?;
        Self::open_env(path, options, |_| Ok(config))
    }

    /// Opens the database in `path` for the chain it was created for, without knowing the
    /// chain id first, so that a node can serve what it stored while L1 cannot be asked;
    /// `None` when `path` holds no database yet (nothing is created). The contract is
    /// checked as [`Store::open`] checks it, and the caller checks the stored chain id
    /// (`config().chain_id`) against L1's once L1 answers.
    pub fn open_existing(path: &Path, contract: Address, from_block: u64) -> Result<Option<Self>> {
        if !path.join(DATA_FILE).exists() {
            return Ok(None);
        }
        let opened = Self::open_env(path, StoreOptions::default(), |txn| {
            let chain_id = meta::stored_chain_id(txn)?
                .ok_or_else(|| Error::NoDatabase { path: path.to_owned() })?;
            Ok(StoreConfig { chain_id, contract, from_block })
        });
        match opened {
            Ok(store) => Ok(Some(store)),
            Err(Error::NoDatabase { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Opens the environment and checks (or writes) its metadata against the config `choose`
    /// settles on, seeing what is stored; an error from it closes the environment again.
    fn open_env(
        path: &Path,
        options: StoreOptions,
        choose: impl FnOnce(&WriteTxn<'_>) -> Result<StoreConfig>,
    ) -> Result<Self> {
        let env = environment(path, options, Mode::ReadWrite { sync_mode: SyncMode::Durable })?;

        let txn = env.begin_rw_unsync().map_err(Error::mdbx("begin a write transaction"))?;
        let tables = Tables::create(&txn).map_err(Error::mdbx("create the tables"))?;
        let txn = WriteTxn::new(txn, &tables);
        let config = choose(&txn)?;
        meta::check_or_init(&txn, path, config)?;
        txn.commit("commit the metadata")?;

        Ok(Self::assemble(env, tables, config))
    }

    /// A store over an opened environment and its tables.
    fn assemble(env: Environment, tables: Tables, config: StoreConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                env,
                tables,
                config,
                journal: std::sync::OnceLock::new(),
                #[cfg(any(test, feature = "test-utils"))]
                faults: Faults::default(),
            }),
            replaying: None,
        }
    }

    /// The chain, contract and start block this store was opened for.
    pub fn config(&self) -> StoreConfig {
        self.inner.config
    }

    /// Where reading starts when `checkpoint` is stored: the checkpoint itself, or the start of
    /// the configured start block when there is none.
    pub fn resume_position(&self, checkpoint: Checkpoint) -> Position {
        checkpoint.unwrap_or(Position::block_start(self.inner.config.from_block))
    }

    /// Makes the next commit fail after it has written `messages` messages, before it
    /// commits, as a disk or MDBX error would.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn fail_next_commit_after(&self, messages: usize) {
        *self.inner.faults.fail_commit_after.lock().expect("fault lock is never poisoned") =
            Some(messages);
    }

    /// Makes the next [`Store::change_checkpoint`] fail before it commits.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn fail_next_checkpoint_change(&self) {
        self.inner.faults.fail_change.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    #[cfg(any(test, feature = "test-utils"))]
    fn maybe_fail_commit(&self, written: usize) -> Result<()> {
        let mut fail_after =
            self.inner.faults.fail_commit_after.lock().expect("fault lock is never poisoned");
        if *fail_after == Some(written) {
            *fail_after = None;
            return Err(Error::InjectedFault { written });
        }
        Ok(())
    }

    #[cfg(any(test, feature = "test-utils"))]
    fn maybe_fail_change(&self) -> Result<()> {
        if self.inner.faults.fail_change.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::InjectedFault { written: 0 });
        }
        Ok(())
    }

    fn read(&self) -> Result<ReadTxn<'_>> {
        let tx =
            self.inner.env.begin_ro_unsync().map_err(Error::mdbx("begin a read transaction"))?;
        Ok(ReadTxn::new(tx, &self.inner.tables))
    }

    fn write(&self) -> Result<WriteTxn<'_>> {
        crate::clock::start_write(self.replaying.map(|replaying| replaying.at_millis));
        let tx =
            self.inner.env.begin_rw_unsync().map_err(Error::mdbx("begin a write transaction"))?;
        Ok(WriteTxn::new(tx, &self.inner.tables))
    }
}

/// The MDBX environment in `path`, in `mode`, sized as `options` says.
fn environment(path: &Path, options: StoreOptions, mode: Mode) -> Result<Environment> {
    Environment::builder()
        // One more than the tables: version 1's Blocks table, dropped when migrating.
        .set_max_dbs(Table::ALL.len() + 1)
        .set_flags(mode.into())
        .set_geometry(Geometry {
            size: Some(0..options.max_size),
            growth_step: Some(options.growth_step as isize),
            ..Default::default()
        })
        .open(path)
        .map_err(Error::mdbx("open the environment"))
}

#[cfg(test)]
mod tests;
