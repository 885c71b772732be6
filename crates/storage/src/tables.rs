use signet_libmdbx::{Database, DatabaseFlags, MdbxResult, tx::aliases::RwTxUnsync};

/// Every table of the store, declared once.
///
/// Keys are fixed-width big-endian where they are numbers, so MDBX's byte order is numeric
/// order; the value encodings are in `codec.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `name` → value: schema version, chain id, contract address, start block.
    Meta,
    /// singleton → `(block, index)`; absent means "start at the configured start block".
    Checkpoint,
    /// seq (u64, big-endian) → the message, its hash and where it was logged.
    Messages,
    /// message hash → seq (u64, big-endian).
    MessageHashes,
    /// message nonce (U256, big-endian) → seq; tells which nonces are stored and which are
    /// missing.
    Nonces,
    /// block number (u64, big-endian) → block hash, for the most recently scanned blocks; tells
    /// whether what was scanned is still canonical.
    Blocks,
    /// change id (u64, big-endian) → time, method, previous and new checkpoint, caller.
    Audit,
}

impl Table {
    /// All tables, in the order their handles are kept.
    pub const ALL: [Self; 7] = [
        Self::Meta,
        Self::Checkpoint,
        Self::Messages,
        Self::MessageHashes,
        Self::Nonces,
        Self::Blocks,
        Self::Audit,
    ];

    /// The MDBX name of the table.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Meta => "Meta",
            Self::Checkpoint => "Checkpoint",
            Self::Messages => "Messages",
            Self::MessageHashes => "MessageHashes",
            Self::Nonces => "Nonces",
            Self::Blocks => "Blocks",
            Self::Audit => "Audit",
        }
    }
}

/// Open handles of every table; MDBX handles stay valid for the environment's lifetime once
/// the transaction that opened them has committed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables([Database; Table::ALL.len()]);

impl Tables {
    /// Creates the tables that are missing and opens them all.
    pub(crate) fn create(txn: &RwTxUnsync) -> MdbxResult<Self> {
        let mut handles = [Database::freelist_db(); Table::ALL.len()];
        for (handle, table) in handles.iter_mut().zip(Table::ALL) {
            *handle = txn.create_db(Some(table.name()), DatabaseFlags::empty())?;
        }
        Ok(Self(handles))
    }

    pub(crate) const fn get(&self, table: Table) -> Database {
        self.0[table as usize]
    }
}
