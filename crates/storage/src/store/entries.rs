//! Writing at the end of the log: the seq the next entry gets, the notices a commit or a reorg
//! appends (each under the heads the stored chain was read under), and reorg records.

use crate::{
    Result,
    codec::NoticeRecord,
    models::{KnownHeads, ReorgRecord},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::Seq;

/// The seq the next entry of the log gets: after the newest message or notice.
pub(super) fn next_seq(txn: &WriteTxn<'_>) -> Result<Seq> {
    let last_message = txn.last::<tables::Messages>()?.map(|(seq, _)| seq);
    let last_notice = txn.last::<tables::Notices>()?.map(|(seq, _)| seq);
    Ok(last_message.max(last_notice).map_or(Seq::ZERO, Seq::next))
}

/// Appends notices at the end of the log, in one write transaction.
pub(super) struct EntryWriter<'t, 's> {
    pub(super) txn: &'t WriteTxn<'s>,
    /// The seq the next entry gets.
    pub(super) next: Seq,
    /// The heads notices record.
    known: KnownHeads,
}

impl<'t, 's> EntryWriter<'t, 's> {
    pub(super) const fn new(txn: &'t WriteTxn<'s>, next: Seq, known: KnownHeads) -> Self {
        Self { txn, next, known }
    }

    /// The heads notices record.
    pub(super) const fn heads(&self) -> KnownHeads {
        self.known
    }

    /// Appends a `stateChanged` notice; its seq. It is not indexed among the message's
    /// removals and re-inclusions, which decide whether an inclusion was retracted.
    pub(super) fn state_notice(&mut self, record: NoticeRecord) -> Result<Seq> {
        let seq = self.next;
        self.txn.append::<tables::Notices>(&seq, &record)?;
        self.next = seq.next();
        Ok(seq)
    }

    /// Appends a notice about `message`; its seq.
    pub(super) fn notice(&mut self, message: Seq, record: NoticeRecord) -> Result<Seq> {
        let seq = self.next;
        debug_assert_eq!(record.message, message);
        self.txn.append::<tables::Notices>(&seq, &record)?;
        self.txn.put::<tables::MessageNotices>(&(message, seq), &())?;
        self.next = seq.next();
        Ok(seq)
    }
}

/// Appends a reorg record; its id.
pub(super) fn append_reorg(txn: &WriteTxn<'_>, record: &ReorgRecord) -> Result<u64> {
    let id = txn.last::<tables::Reorgs>()?.map_or(0, |(id, _)| id + 1);
    txn.append::<tables::Reorgs>(&id, record)?;
    Ok(id)
}
