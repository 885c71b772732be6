use crate::{
    AuditEntry, ChangeOrigin, Error, Result, Table, audit,
    codec::{self, CHECKPOINT_KEY, meta},
    tables::Tables,
};
use ferry_primitives::{
    Address, B256, BlockRef, Checkpoint, L1Message, Position, Seq, StoredMessage, U256,
};
use signet_libmdbx::{
    Environment, Geometry, MdbxError, Mode, SyncMode, WriteFlags,
    tx::{
        TransactionKind, Tx,
        aliases::{RoTxUnsync, RwTxUnsync},
    },
};
use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};
use tracing::{info, warn};

const LOG_TARGET: &str = "ferry::storage";

/// The version of the table layout and value encodings this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// How many recently scanned block hashes are kept for reorg detection: deeper reorgs than
/// this re-scan from the oldest kept block.
pub const RETAINED_BLOCKS: u64 = 256;

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

/// What a committed batch stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitSummary {
    /// The seq of the first stored message; when none was stored, the seq the next one gets.
    pub first_seq: Seq,
    /// How many messages were stored, with seqs `first_seq..first_seq + stored`.
    pub stored: u64,
    /// How many messages were skipped because their hash was already stored.
    pub skipped: u64,
}

impl CommitSummary {
    /// The seq of the last stored message, if the batch stored any.
    pub const fn last_seq(&self) -> Option<Seq> {
        match self.stored {
            0 => None,
            n => Some(Seq(self.first_seq.0 + n - 1)),
        }
    }
}

/// The outcome of [`Store::commit_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a batch may not have been committed"]
pub enum CommitOutcome {
    /// The messages, their hash rows and the new checkpoint were written together.
    Committed(CommitSummary),
    /// The stored checkpoint was no longer the one the batch was gathered from (an operator
    /// moved it, or another writer did); nothing was written.
    CheckpointMoved {
        /// The position the batch was gathered from.
        expected: Position,
        /// The checkpoint the store holds.
        found: Checkpoint,
    },
}

/// The MDBX store. Cheap to clone; all clones share one environment.
///
/// MDBX allows one write transaction at a time and never makes readers wait for it: every
/// write here is one transaction, so [`Store::commit_batch`] and [`Store::set_checkpoint`]
/// are serialised against each other, and reads see the last committed state.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    env: Environment,
    tables: Tables,
    path: PathBuf,
    config: StoreConfig,
    #[cfg(any(test, feature = "test-utils"))]
    fail_after: std::sync::Mutex<Option<usize>>,
    #[cfg(any(test, feature = "test-utils"))]
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
    /// A database created for another chain id or contract, or by a build with another
    /// schema version, is refused with an error naming both values, and is left untouched.
    /// A changed `from_block` is recorded: it only matters while no checkpoint is stored.
    pub fn open_with(path: &Path, config: StoreConfig, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|source| Error::CreateDir { path: path.to_owned(), source })?;
        let env = Environment::builder()
            .set_max_dbs(Table::ALL.len())
            .set_flags(Mode::ReadWrite { sync_mode: SyncMode::Durable }.into())
            .set_geometry(Geometry {
                size: Some(0..options.max_size),
                growth_step: Some(options.growth_step as isize),
                ..Default::default()
            })
            .open(path)
            .map_err(Error::mdbx("open the environment"))?;

        let txn = env.begin_rw_unsync().map_err(Error::mdbx("begin a write transaction"))?;
        let tables = Tables::create(&txn).map_err(Error::mdbx("create the tables"))?;
        check_or_init_meta(&txn, &tables, path, config)?;
        txn.commit().map_err(Error::mdbx("commit the metadata"))?;

        Ok(Self {
            inner: Arc::new(Inner {
                env,
                tables,
                path: path.to_owned(),
                config,
                #[cfg(any(test, feature = "test-utils"))]
                fail_after: Default::default(),
                #[cfg(any(test, feature = "test-utils"))]
                fail_change: Default::default(),
            }),
        })
    }

    /// The chain, contract and start block this store was opened for.
    pub fn config(&self) -> StoreConfig {
        self.inner.config
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Where reading starts when `checkpoint` is stored: the checkpoint itself, or the start of
    /// the configured start block when there is none.
    pub fn resume_position(&self, checkpoint: Checkpoint) -> Position {
        checkpoint.unwrap_or(Position::block_start(self.inner.config.from_block))
    }

    /// The stored source checkpoint; `None` means "start at the configured start block".
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let txn = self.read_txn()?;
        self.read_checkpoint(&txn)
    }

    /// Stores `messages` gathered from position `from` up to (not including) `next`, and moves
    /// the checkpoint to `next`, in one write transaction: all of it or none of it.
    ///
    /// The batch commits only if reading would still start at `from` (the stored checkpoint,
    /// or the start block's first log when none is stored); otherwise nothing is written and
    /// [`CommitOutcome::CheckpointMoved`] says what is stored. Messages whose hash is already
    /// stored are skipped and take no seq. Messages must lie in `[from, next)` in ascending
    /// position order, or the batch is refused with [`Error::BatchOutOfRange`].
    ///
    /// `scanned` are blocks the batch read, with their hashes, ascending (the blocks holding
    /// messages and the last block of the range): they are kept, for the most recent
    /// [`RETAINED_BLOCKS`] blocks, so that a reorg below the checkpoint can be detected; kept
    /// hashes from `from.block` up are from before a rewind and are replaced.
    pub fn commit_batch(
        &self,
        from: Position,
        messages: &[L1Message],
        next: Position,
        scanned: &[BlockRef],
    ) -> Result<CommitOutcome> {
        let hashes: Vec<B256> = messages.iter().map(L1Message::hash).collect();
        self.commit_hashed_batch(from, messages, &hashes, next, scanned)
    }

    /// [`Store::commit_batch`] with the messages' hashes computed beforehand (`hashes[i]` is
    /// `messages[i].hash()`), so that hashing stays off the single writer's path.
    pub fn commit_hashed_batch(
        &self,
        from: Position,
        messages: &[L1Message],
        hashes: &[B256],
        next: Position,
        scanned: &[BlockRef],
    ) -> Result<CommitOutcome> {
        check_batch_range(from, messages, next)?;
        if hashes.len() != messages.len() {
            return Err(Error::HashCountMismatch {
                messages: messages.len(),
                hashes: hashes.len(),
            });
        }
        debug_assert!(messages.iter().zip(hashes).all(|(l1, hash)| l1.hash() == *hash));

        let txn = self.write_txn()?;
        let found = self.read_checkpoint(&txn)?;
        if self.resume_position(found) != from {
            return Ok(CommitOutcome::CheckpointMoved { expected: from, found });
        }

        let tables = &self.inner.tables;
        let first_seq = self.read_last_seq(&txn)?.map_or(Seq::ZERO, Seq::next);
        let mut summary = CommitSummary { first_seq, stored: 0, skipped: 0 };
        let mut value = Vec::new();
        for (l1, &hash) in messages.iter().zip(hashes) {
            #[cfg(any(test, feature = "test-utils"))]
            self.maybe_inject_fault(summary.stored as usize)?;

            let seq = Seq(first_seq.0 + summary.stored);
            let key = codec::u64_key(seq.0);
            // Indexing the hash first finds a message stored before (a re-scan) in the same
            // descent of the tree that would index it.
            match txn.put(tables.get(Table::MessageHashes), hash, key, WriteFlags::NO_OVERWRITE) {
                Ok(()) => {}
                Err(MdbxError::KeyExist) => {
                    summary.skipped += 1;
                    continue;
                }
                Err(error) => return Err(Error::mdbx("index a message hash")(error)),
            }
            value.clear();
            codec::encode_message(hash, l1, &mut value);
            txn.append(tables.get(Table::Messages), key, &value)
                .map_err(Error::mdbx("append a message"))?;
            txn.put(
                tables.get(Table::Nonces),
                l1.message.nonce.to_be_bytes::<32>(),
                key,
                WriteFlags::empty(),
            )
            .map_err(Error::mdbx("index a message nonce"))?;
            summary.stored += 1;
        }
        self.record_scanned_blocks(&txn, from.block, scanned)?;
        txn.put(
            tables.get(Table::Checkpoint),
            CHECKPOINT_KEY,
            codec::encode_position(next),
            WriteFlags::empty(),
        )
        .map_err(Error::mdbx("write the checkpoint"))?;
        txn.commit().map_err(Error::mdbx("commit a batch"))?;
        Ok(CommitOutcome::Committed(summary))
    }

    /// Replaces the kept hashes from block `from` up with `scanned`, and prunes those more
    /// than [`RETAINED_BLOCKS`] below the newest.
    fn record_scanned_blocks(
        &self,
        txn: &RwTxUnsync,
        from: u64,
        scanned: &[BlockRef],
    ) -> Result<()> {
        let db = self.inner.tables.get(Table::Blocks);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Blocks"))?;
        while cursor
            .set_range::<(), ()>(&codec::u64_key(from))
            .map_err(Error::read(Table::Blocks))?
            .is_some()
        {
            cursor.del().map_err(Error::mdbx("drop a stale block hash"))?;
        }
        let newest = scanned.last().map(|block| block.number);
        let keep_from = newest.map_or(0, |newest| newest.saturating_sub(RETAINED_BLOCKS));
        while let Some((key, ())) =
            cursor.first::<Cow<'_, [u8]>, ()>().map_err(Error::read(Table::Blocks))?
        {
            let number = codec::decode_u64(&key).map_err(Error::corrupt(Table::Blocks, &key))?;
            if number >= keep_from {
                break;
            }
            cursor.del().map_err(Error::mdbx("prune an old block hash"))?;
        }
        drop(cursor);
        for block in scanned.iter().filter(|block| block.number >= keep_from) {
            txn.put(db, codec::u64_key(block.number), block.hash, WriteFlags::empty())
                .map_err(Error::mdbx("record a scanned block"))?;
        }
        Ok(())
    }

    /// Sets the checkpoint to `position` and returns the one it replaced.
    pub fn set_checkpoint(&self, position: Position) -> Result<Checkpoint> {
        self.change_checkpoint(Some(position), None)
    }

    /// Deletes the checkpoint, so reading restarts at the configured start block, and returns
    /// the one it deleted.
    pub fn delete_checkpoint(&self) -> Result<Checkpoint> {
        self.change_checkpoint(None, None)
    }

    /// Sets (`Some`) or deletes (`None`) the checkpoint and returns the one it replaced; with
    /// an `origin`, the change is appended to the audit trail in the same transaction.
    pub fn change_checkpoint(
        &self,
        new: Checkpoint,
        origin: Option<&ChangeOrigin>,
    ) -> Result<Checkpoint> {
        let txn = self.write_txn()?;
        let previous = self.read_checkpoint(&txn)?;
        self.write_checkpoint(&txn, previous, new, origin)?;
        #[cfg(any(test, feature = "test-utils"))]
        if self.inner.fail_change.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::InjectedFault { written: 0 });
        }
        txn.commit().map_err(Error::mdbx("commit a checkpoint change"))?;
        Ok(previous)
    }

    /// Moves the checkpoint from `expected` to `new` if reading still starts at `expected`
    /// (compare-and-set, as [`Store::commit_batch`] does), recording `origin` in the audit
    /// trail. `Ok(Err(found))` means it had moved and nothing was written.
    pub fn replace_checkpoint(
        &self,
        expected: Position,
        new: Position,
        origin: Option<&ChangeOrigin>,
    ) -> Result<Result<Checkpoint, Checkpoint>> {
        let txn = self.write_txn()?;
        let found = self.read_checkpoint(&txn)?;
        if self.resume_position(found) != expected {
            return Ok(Err(found));
        }
        self.write_checkpoint(&txn, found, Some(new), origin)?;
        txn.commit().map_err(Error::mdbx("commit a checkpoint change"))?;
        Ok(Ok(found))
    }

    fn write_checkpoint(
        &self,
        txn: &RwTxUnsync,
        previous: Checkpoint,
        new: Checkpoint,
        origin: Option<&ChangeOrigin>,
    ) -> Result<()> {
        let table = self.inner.tables.get(Table::Checkpoint);
        match new {
            Some(position) => txn
                .put(table, CHECKPOINT_KEY, codec::encode_position(position), WriteFlags::empty())
                .map_err(Error::mdbx("write the checkpoint"))?,
            None => {
                txn.del(table, CHECKPOINT_KEY, None)
                    .map_err(Error::mdbx("delete the checkpoint"))?;
            }
        }
        let Some(origin) = origin else { return Ok(()) };
        let audit = self.inner.tables.get(Table::Audit);
        let mut cursor = txn.cursor(audit).map_err(Error::mdbx("open a cursor on Audit"))?;
        let last: Option<(Cow<'_, [u8]>, ())> = cursor.last().map_err(Error::read(Table::Audit))?;
        let id = match last {
            Some((key, ())) => {
                codec::decode_u64(&key).map_err(Error::corrupt(Table::Audit, &key))? + 1
            }
            None => 0,
        };
        drop(cursor);
        let at_millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let entry = audit::encode_entry(at_millis, origin, previous, new);
        txn.append(audit, codec::u64_key(id), entry)
            .map_err(Error::mdbx("append to the audit trail"))
    }

    /// The newest `limit` checkpoint changes of the audit trail, newest first.
    pub fn checkpoint_history(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let txn = self.read_txn()?;
        let db = self.inner.tables.get(Table::Audit);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Audit"))?;
        let mut entries = Vec::new();
        let mut entry = cursor.last::<Cow<'_, [u8]>, Cow<'_, [u8]>>();
        while entries.len() < limit {
            let Some((key, value)) = entry.map_err(Error::read(Table::Audit))? else { break };
            let id = codec::decode_u64(&key).map_err(Error::corrupt(Table::Audit, &key))?;
            entries
                .push(audit::decode_entry(id, &value).map_err(Error::corrupt(Table::Audit, &key))?);
            entry = cursor.prev();
        }
        Ok(entries)
    }

    /// How many stored messages were logged at a position in `from..to`.
    ///
    /// Reads every stored message's position (not the whole message): meant for operator
    /// previews, not for hot paths.
    pub fn count_messages_between(&self, from: Position, to: Position) -> Result<u64> {
        let txn = self.read_txn()?;
        let db = self.inner.tables.get(Table::Messages);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Messages"))?;
        let mut iter = cursor
            .iter_start::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
            .map_err(Error::read(Table::Messages))?;
        let mut count = 0;
        while let Some((key, value)) = iter.borrow_next().map_err(Error::read(Table::Messages))? {
            let position =
                codec::message_position(&value).map_err(Error::corrupt(Table::Messages, &key))?;
            if from <= position && position < to {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The checkpoint and the newest seq, read together: a consistent picture of how far the
    /// store has got, even while batches are being committed.
    pub fn progress(&self) -> Result<(Checkpoint, Option<Seq>)> {
        let txn = self.read_txn()?;
        Ok((self.read_checkpoint(&txn)?, self.read_last_seq(&txn)?))
    }

    /// The seq of the newest stored message; `None` while nothing is stored.
    pub fn last_seq(&self) -> Result<Option<Seq>> {
        let txn = self.read_txn()?;
        self.read_last_seq(&txn)
    }

    /// Up to `limit` stored messages with seqs from `from` upwards, in seq order.
    pub fn messages_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredMessage>> {
        let txn = self.read_txn()?;
        let db = self.inner.tables.get(Table::Messages);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Messages"))?;
        let mut iter = cursor
            .iter_from::<Cow<'_, [u8]>, Cow<'_, [u8]>>(&codec::u64_key(from.0))
            .map_err(Error::read(Table::Messages))?;
        let mut messages = Vec::with_capacity(limit.min(1024));
        while messages.len() < limit {
            let Some((key, value)) = iter.borrow_next().map_err(Error::read(Table::Messages))?
            else {
                break;
            };
            messages.push(decode_stored(&key, &value)?);
        }
        Ok(messages)
    }

    /// The stored message with this hash, if any.
    pub fn message_by_hash(&self, hash: B256) -> Result<Option<StoredMessage>> {
        let txn = self.read_txn()?;
        let tables = &self.inner.tables;
        let seq: Option<Cow<'_, [u8]>> = txn
            .get(tables.get(Table::MessageHashes).dbi(), hash.as_slice())
            .map_err(Error::read(Table::MessageHashes))?;
        let Some(seq) = seq else { return Ok(None) };
        let value: Option<Cow<'_, [u8]>> = txn
            .get(tables.get(Table::Messages).dbi(), &seq)
            .map_err(Error::read(Table::Messages))?;
        let value = value.ok_or_else(|| Error::Corrupt {
            table: Table::MessageHashes.name(),
            key: hash.to_string(),
            reason: "points at a seq that has no message".to_owned(),
        })?;
        decode_stored(&seq, &value).map(Some)
    }

    /// The hash recorded for block `number` when it was last scanned, if it is among the
    /// [`RETAINED_BLOCKS`] most recent.
    pub fn block_hash(&self, number: u64) -> Result<Option<B256>> {
        let txn = self.read_txn()?;
        let key = codec::u64_key(number);
        let value: Option<Cow<'_, [u8]>> = txn
            .get(self.inner.tables.get(Table::Blocks).dbi(), &key)
            .map_err(Error::read(Table::Blocks))?;
        value
            .map(|bytes| codec::decode_b256(&bytes).map_err(Error::corrupt(Table::Blocks, &key)))
            .transpose()
    }

    /// The recorded scanned blocks at or below `number`, newest first, at most `limit`.
    pub fn scanned_blocks_down_from(&self, number: u64, limit: usize) -> Result<Vec<BlockRef>> {
        let txn = self.read_txn()?;
        let db = self.inner.tables.get(Table::Blocks);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Blocks"))?;
        // The table holds at most RETAINED_BLOCKS + 1 rows: reading it whole is cheap.
        let mut iter = cursor
            .iter_start::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
            .map_err(Error::read(Table::Blocks))?;
        let mut blocks = Vec::new();
        while let Some((key, value)) = iter.borrow_next().map_err(Error::read(Table::Blocks))? {
            let block = decode_block(&key, &value)?;
            if block.number > number {
                break;
            }
            blocks.push(block);
        }
        blocks.reverse();
        blocks.truncate(limit);
        Ok(blocks)
    }

    /// Every stored message nonce, ascending.
    pub fn stored_nonces(&self) -> Result<Vec<U256>> {
        let txn = self.read_txn()?;
        let db = self.inner.tables.get(Table::Nonces);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Nonces"))?;
        let mut iter =
            cursor.iter_start::<Cow<'_, [u8]>, ()>().map_err(Error::read(Table::Nonces))?;
        let mut nonces = Vec::new();
        while let Some((key, ())) = iter.borrow_next().map_err(Error::read(Table::Nonces))? {
            nonces.push(
                codec::decode_b256(&key).map_err(Error::corrupt(Table::Nonces, &key))?.into(),
            );
        }
        Ok(nonces)
    }

    /// The newest stored messages (looking at no more than `max_scan` of them, newest first)
    /// that were logged in a block above `block`; their seqs, ascending.
    pub fn recent_seqs_above_block(&self, block: u64, max_scan: usize) -> Result<Vec<Seq>> {
        let txn = self.read_txn()?;
        let db = self.inner.tables.get(Table::Messages);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Messages"))?;
        let mut seqs = Vec::new();
        let mut entry = cursor.last::<Cow<'_, [u8]>, Cow<'_, [u8]>>();
        for _ in 0..max_scan {
            let Some((key, value)) = entry.map_err(Error::read(Table::Messages))? else { break };
            let stored = decode_stored(&key, &value)?;
            if stored.l1.origin.block_number > block {
                seqs.push(stored.seq);
            }
            entry = cursor.prev();
        }
        seqs.reverse();
        Ok(seqs)
    }

    /// Makes the next commit fail after it has written `messages` messages, before it
    /// commits, as a disk or MDBX error would.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn fail_next_commit_after(&self, messages: usize) {
        *self.inner.fail_after.lock().expect("fault lock is never poisoned") = Some(messages);
    }

    /// Makes the next [`Store::change_checkpoint`] fail before it commits.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn fail_next_checkpoint_change(&self) {
        self.inner.fail_change.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    #[cfg(any(test, feature = "test-utils"))]
    fn maybe_inject_fault(&self, written: usize) -> Result<()> {
        let mut fail_after = self.inner.fail_after.lock().expect("fault lock is never poisoned");
        if *fail_after == Some(written) {
            *fail_after = None;
            return Err(Error::InjectedFault { written });
        }
        Ok(())
    }

    fn read_txn(&self) -> Result<RoTxUnsync> {
        self.inner.env.begin_ro_unsync().map_err(Error::mdbx("begin a read transaction"))
    }

    fn write_txn(&self) -> Result<RwTxUnsync> {
        self.inner.env.begin_rw_unsync().map_err(Error::mdbx("begin a write transaction"))
    }

    fn read_checkpoint<K: TransactionKind>(&self, txn: &Tx<K>) -> Result<Checkpoint> {
        let value: Option<Cow<'_, [u8]>> = txn
            .get(self.inner.tables.get(Table::Checkpoint).dbi(), CHECKPOINT_KEY)
            .map_err(Error::read(Table::Checkpoint))?;
        value
            .map(|bytes| {
                codec::decode_position(&bytes)
                    .map_err(Error::corrupt(Table::Checkpoint, CHECKPOINT_KEY))
            })
            .transpose()
    }

    fn read_last_seq<K: TransactionKind>(&self, txn: &Tx<K>) -> Result<Option<Seq>> {
        let db = self.inner.tables.get(Table::Messages);
        let mut cursor = txn.cursor(db).map_err(Error::mdbx("open a cursor on Messages"))?;
        let last: Option<(Cow<'_, [u8]>, ())> =
            cursor.last().map_err(Error::read(Table::Messages))?;
        last.map(|(key, ())| codec::decode_seq(&key).map_err(Error::corrupt(Table::Messages, &key)))
            .transpose()
    }
}

fn decode_block(key: &[u8], value: &[u8]) -> Result<BlockRef> {
    let number = codec::decode_u64(key).map_err(Error::corrupt(Table::Blocks, key))?;
    let hash = codec::decode_b256(value).map_err(Error::corrupt(Table::Blocks, key))?;
    Ok(BlockRef { number, hash })
}

fn decode_stored(key: &[u8], value: &[u8]) -> Result<StoredMessage> {
    let seq = codec::decode_seq(key).map_err(Error::corrupt(Table::Messages, key))?;
    let (hash, l1) = codec::decode_message(value).map_err(Error::corrupt(Table::Messages, key))?;
    Ok(StoredMessage { seq, hash, l1 })
}

/// Refuses batches that would move the checkpoint backwards or hold messages outside the
/// range they were gathered from: either is a bug upstream, and storing it would break the
/// order consumers rely on.
fn check_batch_range(from: Position, messages: &[L1Message], next: Position) -> Result<()> {
    let out_of_range = |position, reason| Error::BatchOutOfRange { from, next, position, reason };
    if next < from {
        return Err(out_of_range(next, "is before the position the batch was gathered from"));
    }
    let mut previous: Option<Position> = None;
    for position in messages.iter().map(|l1| l1.origin.position()) {
        if position < from || position >= next {
            return Err(out_of_range(position, "is outside the gathered range"));
        }
        if previous.is_some_and(|previous| previous >= position) {
            return Err(out_of_range(position, "does not follow the previous message"));
        }
        previous = Some(position);
    }
    Ok(())
}

/// Writes Meta into a new database, or checks an existing one against `config`.
fn check_or_init_meta(
    txn: &RwTxUnsync,
    tables: &Tables,
    path: &Path,
    config: StoreConfig,
) -> Result<()> {
    let db = tables.get(Table::Meta);
    let get = |key: &[u8]| -> Result<Option<Vec<u8>>> {
        txn.get(db.dbi(), key).map_err(Error::read(Table::Meta))
    };
    let put = |key: &[u8], value: &[u8]| {
        txn.put(db, key, value, WriteFlags::empty()).map_err(Error::mdbx("write Meta"))
    };

    let Some(version) = get(meta::SCHEMA_VERSION)? else {
        info!(target: LOG_TARGET, path = %path.display(), chain_id = config.chain_id,
            contract = %config.contract, from_block = config.from_block, "Creating database");
        put(meta::SCHEMA_VERSION, &SCHEMA_VERSION.to_be_bytes())?;
        put(meta::CHAIN_ID, &config.chain_id.to_be_bytes())?;
        put(meta::CONTRACT, config.contract.as_slice())?;
        return put(meta::FROM_BLOCK, &config.from_block.to_be_bytes());
    };

    let corrupt = |key| Error::corrupt(Table::Meta, key);
    let missing = |key: &'static [u8]| Error::Corrupt {
        table: Table::Meta.name(),
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "missing".to_owned(),
    };
    let found = codec::decode_u32(&version).map_err(corrupt(meta::SCHEMA_VERSION))?;
    if found != SCHEMA_VERSION {
        return Err(Error::SchemaVersion {
            path: path.to_owned(),
            found,
            expected: SCHEMA_VERSION,
        });
    }
    let chain_id = get(meta::CHAIN_ID)?.ok_or_else(|| missing(meta::CHAIN_ID))?;
    let stored = codec::decode_u64(&chain_id).map_err(corrupt(meta::CHAIN_ID))?;
    if stored != config.chain_id {
        return Err(Error::ChainIdMismatch {
            path: path.to_owned(),
            stored,
            configured: config.chain_id,
        });
    }
    let contract = get(meta::CONTRACT)?.ok_or_else(|| missing(meta::CONTRACT))?;
    let stored = codec::decode_address(&contract).map_err(corrupt(meta::CONTRACT))?;
    if stored != config.contract {
        return Err(Error::ContractMismatch {
            path: path.to_owned(),
            stored,
            configured: config.contract,
        });
    }
    let from_block = get(meta::FROM_BLOCK)?.ok_or_else(|| missing(meta::FROM_BLOCK))?;
    let stored = codec::decode_u64(&from_block).map_err(corrupt(meta::FROM_BLOCK))?;
    if stored != config.from_block {
        warn!(target: LOG_TARGET, previous = stored, current = config.from_block,
            "Start block changed; it applies while no checkpoint is stored");
        put(meta::FROM_BLOCK, &config.from_block.to_be_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
