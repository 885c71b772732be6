//! Damage a test can do to a store, as a lost write, a faulty disk or a hand edit would
//! (feature `test-utils`): what `ferry verify` must find.

use super::Store;
use crate::{
    Error, Result,
    codec::{EncodeAs, MessageRecord, MessageRef},
    tables,
};
use ferry_primitives::{L1Message, Seq};
use signet_libmdbx::WriteFlags;

impl Store {
    /// Deletes message entry `seq` with its hash and nonce rows.
    pub fn damage_delete_message(&self, seq: Seq) -> Result<()> {
        let txn = self.write()?;
        let record = stored(&txn, seq)?;
        txn.delete::<tables::Messages>(&seq)?;
        super::index::unindex_message(&txn, seq, record.hash, record.l1.message.nonce)?;
        if txn.delete::<tables::Nonces>(&record.l1.message.nonce)? {
            super::nonces::remove(&txn, record.l1.message.nonce)?;
        }
        txn.commit("delete a message (damage)")
    }

    /// Replaces what message entry `seq` says with `l1`, keeping the hash it was stored under.
    pub fn damage_rewrite_message(&self, seq: Seq, l1: &L1Message) -> Result<()> {
        let txn = self.write()?;
        let record = stored(&txn, seq)?;
        let mut value = Vec::new();
        EncodeAs::<MessageRecord>::encode_as(&MessageRef { hash: record.hash, l1 }, &mut value);
        txn.write_encoded::<tables::Messages>(&seq, &value, WriteFlags::empty())?;
        txn.commit("rewrite a message (damage)")
    }
}

fn stored(txn: &crate::txn::WriteTxn<'_>, seq: Seq) -> Result<MessageRecord> {
    txn.get::<tables::Messages>(&seq)?.ok_or_else(|| Error::Corrupt {
        table: tables::Table::Messages.name(),
        key: format!("seq {seq}"),
        reason: "no such message to damage".to_owned(),
    })
}
