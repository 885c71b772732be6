//! Typed transactions: every read and write names its table, and the encoding and the error
//! mapping happen here, once.

use crate::{
    Error, Result,
    codec::{DecodeError, EncodeAs, Key, Value},
    tables::{TableDef, Tables},
};
use signet_libmdbx::{Cursor, MdbxError, Ro, Rw, TransactionKind, WriteFlags, tx::Tx};
use std::{borrow::Cow, cell::RefCell, ops::ControlFlow};

/// A read-only or read-write transaction over the store's tables.
#[derive(Debug)]
pub(crate) struct Txn<'s, K: TransactionKind> {
    tx: Tx<K>,
    tables: &'s Tables,
    /// One buffer for the values a write encodes, instead of an allocation per row.
    scratch: RefCell<Vec<u8>>,
}

/// A read-only transaction: it sees the last committed state and never waits for the writer.
pub(crate) type ReadTxn<'s> = Txn<'s, Ro>;

/// A read-write transaction: MDBX runs one at a time.
pub(crate) type WriteTxn<'s> = Txn<'s, Rw>;

/// A key and value as MDBX hands them out.
type RawEntry<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

fn corrupt<T: TableDef>(key: &[u8]) -> impl FnOnce(DecodeError) -> Error + '_ {
    move |reason| Error::Corrupt {
        table: T::TABLE.name(),
        key: key.iter().map(|byte| format!("{byte:02x}")).collect(),
        reason: reason.to_string(),
    }
}

fn decode_pair<T: TableDef>(key: &[u8], value: &[u8]) -> Result<(T::Key, T::Value)> {
    let decoded_key = T::Key::decode(key).map_err(corrupt::<T>(key))?;
    let decoded_value = T::Value::decode(value).map_err(corrupt::<T>(key))?;
    Ok((decoded_key, decoded_value))
}

fn read_error<T: TableDef>(source: signet_libmdbx::ReadError) -> Error {
    Error::Read { table: T::TABLE.name(), source }
}

impl<'s, K: TransactionKind> Txn<'s, K> {
    pub(crate) const fn new(tx: Tx<K>, tables: &'s Tables) -> Self {
        Self { tx, tables, scratch: RefCell::new(Vec::new()) }
    }

    /// The value under `key`.
    pub(crate) fn get<T: TableDef>(&self, key: &T::Key) -> Result<Option<T::Value>> {
        let encoded = key.encode();
        let key = encoded.as_ref();
        let value: Option<Cow<'_, [u8]>> =
            self.tx.get(self.tables.get(T::TABLE).dbi(), key).map_err(read_error::<T>)?;
        value.map(|value| T::Value::decode(&value).map_err(corrupt::<T>(key))).transpose()
    }

    /// The first (lowest) entry.
    pub(crate) fn first<T: TableDef>(&self) -> Result<Option<(T::Key, T::Value)>> {
        let mut found = None;
        self.walk::<T>(None, |key, value| {
            found = Some((key, value));
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// The last (highest) entry.
    pub(crate) fn last<T: TableDef>(&self) -> Result<Option<(T::Key, T::Value)>> {
        let mut found = None;
        self.walk_back::<T>(None, |key, value| {
            found = Some((key, value));
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// Calls `visit` on the entries from `from` (or the first) upwards, until it breaks.
    pub(crate) fn walk<T: TableDef>(
        &self,
        from: Option<&T::Key>,
        mut visit: impl FnMut(T::Key, T::Value) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let from = from.map(|from| from.encode());
        self.walk_bytes::<T>(from.as_ref().map(AsRef::as_ref), |key, value| {
            let (key, value) = decode_pair::<T>(key, value)?;
            visit(key, value)
        })
    }

    /// Calls `visit` on every entry's raw bytes, in key order: for migrations, which read
    /// values in a layout the table no longer promises, and for walks that read a field or two
    /// of every value.
    pub(crate) fn walk_raw<T: TableDef>(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.walk_bytes::<T>(None, |key, value| visit(key, value).map(ControlFlow::Continue))
    }

    /// Calls `visit` on the raw entries from the encoded key `from` (or the first) upwards,
    /// until it breaks.
    fn walk_bytes<T: TableDef>(
        &self,
        from: Option<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let mut cursor = self.cursor::<T>()?;
        let mut entry: Option<RawEntry<'_>> = match from {
            Some(from) => cursor.set_range(from),
            None => cursor.first(),
        }
        .map_err(read_error::<T>)?;
        while let Some((key, value)) = entry {
            if visit(&key, &value)?.is_break() {
                break;
            }
            entry = cursor.next().map_err(read_error::<T>)?;
        }
        Ok(())
    }

    /// Calls `visit` on the entries from `from` (or the last) downwards, until it breaks.
    pub(crate) fn walk_back<T: TableDef>(
        &self,
        from: Option<&T::Key>,
        mut visit: impl FnMut(T::Key, T::Value) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let mut cursor = self.cursor::<T>()?;
        let mut entry: Option<RawEntry<'_>> = match from {
            Some(from) => {
                let encoded = from.encode();
                let at_or_after: Option<(Cow<'_, [u8]>, ())> =
                    cursor.set_range(encoded.as_ref()).map_err(read_error::<T>)?;
                match at_or_after {
                    Some((key, ())) if key.as_ref() == encoded.as_ref() => cursor.get_current(),
                    Some(_) => cursor.prev(),
                    None => cursor.last(),
                }
            }
            None => cursor.last(),
        }
        .map_err(read_error::<T>)?;
        while let Some((key, value)) = entry {
            let (key, value) = decode_pair::<T>(&key, &value)?;
            if visit(key, value)?.is_break() {
                break;
            }
            entry = cursor.prev().map_err(read_error::<T>)?;
        }
        Ok(())
    }

    /// How many entries the table holds.
    pub(crate) fn count<T: TableDef>(&self) -> Result<u64> {
        let stat = self
            .tx
            .db_stat(&self.tables.get(T::TABLE))
            .map_err(|source| Error::Mdbx { operation: "read table statistics", source })?;
        Ok(stat.entries() as u64)
    }

    /// The B-tree statistics of `table`: rows, depth, pages.
    pub(crate) fn stat(&self, table: crate::Table) -> Result<signet_libmdbx::Stat> {
        self.tx
            .db_stat(&self.tables.get(table))
            .map_err(|source| Error::Mdbx { operation: "read table statistics", source })
    }

    fn cursor<T: TableDef>(&self) -> Result<Cursor<'_, K>> {
        self.tx
            .cursor(self.tables.get(T::TABLE))
            .map_err(|source| Error::Mdbx { operation: "open a cursor", source })
    }
}

impl WriteTxn<'_> {
    /// Writes `value` under `key`, replacing what was there.
    pub(crate) fn put<T: TableDef>(
        &self,
        key: &T::Key,
        value: &impl EncodeAs<T::Value>,
    ) -> Result<()> {
        self.write::<T>(key, value, WriteFlags::empty())
    }

    /// Writes `value` under `key`, which must sort after every key in the table.
    pub(crate) fn append<T: TableDef>(
        &self,
        key: &T::Key,
        value: &impl EncodeAs<T::Value>,
    ) -> Result<()> {
        self.write::<T>(key, value, WriteFlags::APPEND)
    }

    fn write<T: TableDef>(
        &self,
        key: &T::Key,
        value: &impl EncodeAs<T::Value>,
        flags: WriteFlags,
    ) -> Result<()> {
        let mut buf = self.scratch.take();
        buf.clear();
        value.encode_as(&mut buf);
        let written = self.write_encoded::<T>(key, &buf, flags);
        self.scratch.replace(buf);
        written
    }

    /// Writes an already encoded value (the hot path reuses one buffer for every message).
    pub(crate) fn write_encoded<T: TableDef>(
        &self,
        key: &T::Key,
        value: &[u8],
        flags: WriteFlags,
    ) -> Result<()> {
        self.tx
            .put(self.tables.get(T::TABLE), key.encode(), value, flags)
            .map_err(|source| Error::Write { table: T::TABLE.name(), source })
    }

    /// Deletes `key`; whether it was there.
    pub(crate) fn delete<T: TableDef>(&self, key: &T::Key) -> Result<bool> {
        self.tx
            .del(self.tables.get(T::TABLE), key.encode(), None)
            .map_err(|source| Error::Write { table: T::TABLE.name(), source })
    }

    /// Deletes every entry from `from` up; how many.
    pub(crate) fn delete_from<T: TableDef>(&self, from: &T::Key) -> Result<u64> {
        let mut cursor = self.cursor::<T>()?;
        let mut deleted = 0;
        while cursor.set_range::<(), ()>(from.encode().as_ref()).map_err(read_error::<T>)?.is_some()
        {
            cursor.del().map_err(|source| Error::Write { table: T::TABLE.name(), source })?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Deletes every entry below `below`; how many.
    pub(crate) fn delete_below<T: TableDef>(&self, below: &T::Key) -> Result<u64> {
        let below = below.encode();
        let mut cursor = self.cursor::<T>()?;
        let mut deleted = 0;
        while let Some((key, ())) = cursor.first::<Cow<'_, [u8]>, ()>().map_err(read_error::<T>)? {
            if key.as_ref() >= below.as_ref() {
                break;
            }
            cursor.del().map_err(|source| Error::Write { table: T::TABLE.name(), source })?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Drops a table that is no longer part of the schema, if the database has it.
    pub(crate) fn drop_table_named(&self, name: &'static str) -> Result<()> {
        let db = match self.tx.open_db(Some(name)) {
            Ok(db) => db,
            Err(MdbxError::NotFound) => return Ok(()),
            Err(source) => return Err(Error::Write { table: name, source }),
        };
        // SAFETY: the handle was opened just now and nothing else holds it or a cursor on it.
        unsafe { self.tx.drop_db(db) }.map_err(|source| Error::Write { table: name, source })
    }

    /// Commits everything written in this transaction, or nothing.
    pub(crate) fn commit(self, what: &'static str) -> Result<()> {
        self.tx.commit().map_err(|source| Error::Mdbx { operation: what, source })
    }
}
