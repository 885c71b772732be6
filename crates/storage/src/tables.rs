//! Every table of the store, declared once with its key and value types (reth's `tables!` is
//! the model): a read is `txn.get::<tables::Headers>(&number)`, and the encoding and the error
//! mapping live in `codec/` and `txn.rs`, never at the call site.

use crate::{
    codec::{
        AuditRecord, HashKey, HeaderValue, LifecycleRecord, MessageRecord, Name, NonceKey,
        NoticeRecord, OrphanRecord,
    },
    models::{HaltRecord, KnownHeads, ReorgRecord, WindowBounds},
};
use ferry_primitives::{B256, Position, Seq, StateCounts, U256};
use signet_libmdbx::{
    Database, DatabaseFlags, MdbxResult,
    tx::aliases::{RoTxUnsync, RwTxUnsync},
};

/// A table: its name and the types of its keys and values.
pub(crate) trait TableDef {
    /// Which table.
    const TABLE: Table;
    /// The key type.
    type Key: crate::codec::Key;
    /// The value type.
    type Value: crate::codec::Value;
}

macro_rules! tables {
    ($( $(#[$doc:meta])* $name:ident: $key:ty => $value:ty; )*) => {
        /// Every table of the store. Keys are fixed-width big-endian where they are numbers, so
        /// MDBX's byte order is numeric order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Table {
            $( $(#[$doc])* $name, )*
        }

        impl Table {
            /// All tables, in the order their handles are kept.
            pub const ALL: &'static [Self] = &[$( Self::$name, )*];

            /// The MDBX name of the table.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$name => stringify!($name), )*
                }
            }
        }

        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub(crate) struct $name;

            impl TableDef for $name {
                const TABLE: Table = Table::$name;
                type Key = $key;
                type Value = $value;
            }
        )*
    };
}

tables! {
    /// setting name → bytes: schema version, chain id, contract address, start block.
    Meta: Name => Vec<u8>;
    /// singleton → `(block, index)`; absent means "start at the configured start block".
    Checkpoint: Name => Position;
    /// seq of a message entry → the message, its hash and where it is (updated when a reorg
    /// moves it).
    Messages: Seq => MessageRecord;
    /// seq of a notice entry → what it says about which message. Every seq of the log is in
    /// exactly one of Messages and Notices.
    Notices: Seq => NoticeRecord;
    /// (partition of the seq, message hash) → seq of its message entry: lookups by hash alone
    /// (`store/index.rs`).
    HashIndex: HashKey => Seq;
    /// (nonce, seq of its message entry) → message hash: every stored message, canonical or
    /// orphaned, by nonce; what a commit checks to know whether a message is stored
    /// (`store/index.rs`).
    NonceIndex: NonceKey => B256;
    /// nonce → seq of the canonical message with it; tells which nonces are missing.
    Nonces: U256 => Seq;
    /// first nonce → last nonce of each run of consecutive nonces in Nonces: what the node's
    /// gap tracker starts from, read in a few rows however large the store (`store/nonces.rs`).
    NonceRuns: U256 => U256;
    /// block number → hash and parent hash: the contiguous window of canonical headers below
    /// the checkpoint, from the finalized block (or the configured depth) up.
    Headers: u64 => HeaderValue;
    /// singleton → the window's floor and the finalized block when it was last extended: what
    /// was final enough to leave out, and what a reorg must not reach.
    WindowState: Name => WindowBounds;
    /// singleton → why ingestion is halted (a reorg deeper than the window or below a
    /// finalized block), until an operator moves the checkpoint; absent while it is not.
    Halt: Name => HaltRecord;
    /// (block, message seq) → (): the messages logged in the blocks of the header window, which
    /// a reorg inside the window may remove.
    WindowMessages: (u64, Seq) => ();
    /// message seq → the reorg that orphaned it and the notice that said so; present while the
    /// message is orphaned.
    Orphans: Seq => OrphanRecord;
    /// (message seq, notice seq) → (): the notices about each message, in order.
    MessageNotices: (Seq, Seq) => ();
    /// reorg id → when, why, from where to where, what it orphaned.
    Reorgs: u64 => ReorgRecord;
    /// change id → time, method, previous and new checkpoint, what a forward move skipped,
    /// caller.
    Audit: u64 => AuditRecord;
    /// message hash → the lifecycle events logged about it, in L1 order (and its fields while
    /// the node has not stored the message itself); absent while it has none.
    Lifecycles: B256 => LifecycleRecord;
    /// (block, log index) of a lifecycle event → the hash of the message it is about: what a
    /// re-scan finds again, and what a reorg removes.
    LifecycleEvents: (u64, u64) => B256;
    /// singleton → stored messages per state (but pending) and unmatched lifecycles.
    LifecycleCounts: Name => StateCounts;
    /// seq of a stateChanged notice → the heads when a reorg removed the event it told of.
    RevertedChanges: Seq => KnownHeads;
}

/// Open handles of every table; MDBX handles stay valid for the environment's lifetime once
/// the transaction that opened them has committed.
#[derive(Debug, Clone)]
pub(crate) struct Tables(Vec<Database>);

impl Tables {
    /// Creates the tables that are missing and opens them all.
    pub(crate) fn create(txn: &RwTxUnsync) -> MdbxResult<Self> {
        Table::ALL
            .iter()
            .map(|table| txn.create_db(Some(table.name()), DatabaseFlags::empty()))
            .collect::<MdbxResult<_>>()
            .map(Self)
    }

    /// Opens every table of an existing database in a read-only transaction: for inspecting a
    /// datadir without writing to it (a running node may hold the writer).
    pub(crate) fn open(txn: &RoTxUnsync) -> MdbxResult<Self> {
        Table::ALL
            .iter()
            .map(|table| txn.open_db(Some(table.name())))
            .collect::<MdbxResult<_>>()
            .map(Self)
    }

    pub(crate) fn get(&self, table: Table) -> Database {
        self.0[table as usize]
    }
}
