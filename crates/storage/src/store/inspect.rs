//! Looking inside a datadir without a node: a read-only open that never waits for (or
//! blocks) a running node's writer, and what each table and the file hold.

use super::{DATA_FILE, Store, StoreConfig, StoreOptions, meta};
use crate::{
    Error, Result, SCHEMA_VERSION, Table,
    codec::CHECKPOINT,
    tables::{self, Tables},
    txn::ReadTxn,
};
use ferry_primitives::{Checkpoint, Seq};
use signet_libmdbx::{MdbxError, Mode, tx::aliases::RoTxUnsync};
use std::path::Path;

/// One table's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    /// Which table.
    pub table: Table,
    /// Rows.
    pub entries: u64,
    /// Depth of its B-tree.
    pub depth: u32,
    /// Branch, leaf and overflow pages.
    pub pages: u64,
    /// Those pages in bytes.
    pub bytes: u64,
}

/// The database file's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceStats {
    /// Bytes per page.
    pub page_size: u32,
    /// Pages the file holds (used and free).
    pub file_pages: u64,
    /// Pages on the free list, reused before the file grows.
    pub free_pages: u64,
    /// The largest the file may grow to, in bytes.
    pub map_size: u64,
}

/// What a datadir holds, as `ferry db stats` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// The schema version of the tables and encodings.
    pub schema_version: u32,
    /// The chain, contract and start block it was created for.
    pub config: StoreConfig,
    /// The stored checkpoint.
    pub checkpoint: Checkpoint,
    /// The newest seq of the log.
    pub last_seq: Option<Seq>,
    /// Every table.
    pub tables: Vec<TableStats>,
    /// The file.
    pub space: SpaceStats,
}

impl Store {
    /// Opens the database in `path` read-only: nothing is created, migrated or written, and a
    /// node running on it meanwhile is neither blocked nor blocking (MDBX readers see the
    /// last committed state). Refused, naming both versions, when the database has another
    /// schema version (a node of this version migrates it when it opens it).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.join(DATA_FILE).exists() {
            return Err(Error::NoDatabase { path: path.to_owned() });
        }
        let env = super::environment(path, StoreOptions::default(), Mode::ReadOnly)?;
        let txn = env.begin_ro_unsync().map_err(Error::mdbx("begin a read transaction"))?;
        let tables = match Tables::open(&txn) {
            Ok(tables) => tables,
            // A table this version keeps is missing: the database is of an older schema.
            Err(MdbxError::NotFound) => {
                let found = schema_version_of(&txn)?;
                return Err(Error::SchemaVersion {
                    path: path.to_owned(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            Err(source) => return Err(Error::Mdbx { operation: "open the tables", source }),
        };
        // The handles outlive the transaction that opened them once it commits.
        txn.commit().map_err(Error::mdbx("end the read transaction"))?;
        let read = env.begin_ro_unsync().map_err(Error::mdbx("begin a read transaction"))?;
        let (found, config) = meta::stored(&ReadTxn::new(read, &tables))?;
        if found != SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                path: path.to_owned(),
                found,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(Self::assemble(env, tables, config))
    }

    /// Schema, config, checkpoint, and the size of every table and of the file, read in one
    /// read-only transaction.
    pub fn info(&self) -> Result<DatabaseInfo> {
        let txn = self.read()?;
        let (schema_version, config) = meta::stored(&txn)?;
        let checkpoint = txn.get::<tables::Checkpoint>(&CHECKPOINT)?;
        let last_seq = super::reads::last_seq(&txn)?;
        let mut stats = Vec::with_capacity(Table::ALL.len());
        for &table in Table::ALL {
            let stat = txn.stat(table)?;
            let pages = (stat.branch_pages() + stat.leaf_pages() + stat.overflow_pages()) as u64;
            stats.push(TableStats {
                table,
                entries: stat.entries() as u64,
                depth: stat.depth(),
                pages,
                bytes: pages * u64::from(stat.page_size()),
            });
        }
        drop(txn);
        let env = &self.inner.env;
        let info = env.info().map_err(Error::mdbx("read the environment's info"))?;
        let stat = env.stat().map_err(Error::mdbx("read the environment's stat"))?;
        let free_pages =
            env.freelist().map_err(|source| Error::Read { table: "free list", source })?;
        let space = SpaceStats {
            page_size: stat.page_size(),
            file_pages: info.last_pgno() as u64 + 1,
            free_pages: free_pages as u64,
            map_size: info.map_size() as u64,
        };
        Ok(DatabaseInfo { schema_version, config, checkpoint, last_seq, tables: stats, space })
    }
}

/// The schema version in Meta, read without the table list (an older database lacks tables
/// this version has).
fn schema_version_of(txn: &RoTxUnsync) -> Result<u32> {
    let meta = txn.open_db(Some(Table::Meta.name())).map_err(Error::mdbx("open Meta"))?;
    let value: Option<std::borrow::Cow<'_, [u8]>> = txn
        .get(meta.dbi(), b"schema_version")
        .map_err(|source| Error::Read { table: Table::Meta.name(), source })?;
    let bytes = value.ok_or_else(|| Error::Corrupt {
        table: Table::Meta.name(),
        key: "schema_version".to_owned(),
        reason: "missing".to_owned(),
    })?;
    let bytes: [u8; 4] = bytes.as_ref().try_into().map_err(|_| Error::Corrupt {
        table: Table::Meta.name(),
        key: "schema_version".to_owned(),
        reason: format!("expected 4 bytes, found {}", bytes.len()),
    })?;
    Ok(u32::from_be_bytes(bytes))
}
