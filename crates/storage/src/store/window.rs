//! The header window's upkeep: a committed batch's headers appended to the contiguous,
//! parent-linked window of canonical headers (invariant: header window), the window pruned
//! below its floor, and its heads raised to the provider's tags it can check.

use crate::{
    Result,
    codec::{HeaderValue, WINDOW},
    models::{FinalityTags, WindowBounds},
    tables,
    txn::WriteTxn,
};
use ferry_primitives::{B256, BlockHeader, BlockRef, Seq};
use std::ops::ControlFlow;

/// The header window started again: the batch's first header had no kept parent, and what
/// the window kept ended below the floor (see [`Store::commit`](crate::Store::commit)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRestart {
    /// The newest block the window kept before.
    pub previous_tip: u64,
    /// The block it starts again at.
    pub first: u64,
}

/// A batch's headers, for the window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Extension<'a> {
    /// Ascending and linked; empty: the range is not anchored, and the window starts again
    /// with the next batch.
    pub(super) headers: &'a [BlockHeader],
    /// The lowest block the window keeps; older headers are pruned.
    pub(super) floor: u64,
    /// The provider's safe and finalized blocks as the node fetched them.
    pub(super) tags: FinalityTags,
}

/// What [`extend`] did.
#[derive(Debug)]
pub(super) enum Extended {
    /// The headers are in the window.
    Fits {
        /// Set when the window started again with them.
        restarted: Option<WindowRestart>,
    },
    /// They do not fit the window: the kept header `kept` is not the parent the batch's
    /// header names (`parent_hash`), or a kept header at one of its numbers is another block.
    /// Nothing was written.
    Unlinked {
        /// The kept header.
        kept: BlockHeader,
        /// The parent hash the batch's header names.
        parent_hash: B256,
    },
    /// Starting the window again at `first` would leave a gap above the window's newest
    /// block `tip`, at or above the floor. Nothing was written.
    Gap {
        /// The newest block the window keeps below the headers.
        tip: u64,
        /// The first of the headers.
        first: u64,
    },
}

/// Appends the headers to the window, or starts the window again with them when the window
/// holds no header for the block below them (refused when that would leave a gap at or above
/// the floor); prunes below the floor; raises the window's heads to the tags it can check.
///
/// Headers kept above the batch stay: after an operator moved the checkpoint back, the re-scan
/// must find those blocks again unchanged, or the mismatch is a reorg.
pub(super) fn extend(txn: &WriteTxn<'_>, extension: Extension<'_>) -> Result<Extended> {
    let Extension { headers, floor, tags } = extension;
    let Some(first) = headers.first() else {
        txn.delete_from::<tables::Headers>(&0)?;
        txn.delete_from::<tables::WindowMessages>(&(0, Seq::ZERO))?;
        return Ok(Extended::Fits { restarted: None });
    };
    for header in headers {
        if let Some(kept) = txn.get::<tables::Headers>(&header.number)?
            && kept.hash != header.hash
        {
            let kept = kept.at(header.number);
            return Ok(Extended::Unlinked { kept, parent_hash: header.parent_hash });
        }
    }
    let previous = bounds(txn)?;
    let restarted = match link(txn, first, floor, previous.floor)? {
        Linked::Continues => None,
        Linked::StartsAgain(restarted) => restarted,
        Linked::Refused(refused) => return Ok(refused),
    };
    for header in headers {
        txn.put::<tables::Headers>(&header.number, &HeaderValue::of(header))?;
    }
    let newest = headers.last().map_or(first.number, |header| header.number);
    let keep_from = floor.min(newest);
    let next = WindowBounds {
        floor,
        safe: previous.safe.max(checked_tag(txn, tags.safe)?),
        finalized: previous.finalized.max(checked_tag(txn, tags.finalized)?),
    };
    txn.put::<tables::WindowState>(&WINDOW, &next)?;
    txn.delete_below::<tables::Headers>(&keep_from)?;
    txn.delete_below::<tables::WindowMessages>(&(keep_from, Seq::ZERO))?;
    Ok(Extended::Fits { restarted })
}

/// How a batch's first header meets the window below it.
enum Linked {
    /// Its parent is the kept header below it.
    Continues,
    /// Nothing is kept right below it: the window starts again with it (and what it kept
    /// below is dropped); `Some` when what it held below was a window (at or above the floor
    /// it was kept under), not the one header that anchors a range far below the floor.
    StartsAgain(Option<WindowRestart>),
    /// It does not fit: nothing may be written.
    Refused(Extended),
}

/// Checks `first` against the kept header below it, and drops what is kept below it when the
/// window starts again. Starting again is right when what the window keeps below ends under
/// the floor (the node fell behind further than the window, or an operator moved the
/// checkpoint beyond it); a kept header at or above the floor would leave unchecked blocks
/// inside the window, where a reorg would go unseen and an ordinary one could halt the node.
fn link(
    txn: &WriteTxn<'_>,
    first: &BlockHeader,
    floor: u64,
    previous_floor: u64,
) -> Result<Linked> {
    let below = match first.number.checked_sub(1) {
        Some(number) => txn.get::<tables::Headers>(&number)?.map(|value| value.at(number)),
        None => None,
    };
    match below {
        Some(kept) if !kept.is_parent_of(first) => {
            Ok(Linked::Refused(Extended::Unlinked { kept, parent_hash: first.parent_hash }))
        }
        Some(_) => Ok(Linked::Continues),
        None => {
            let tip = newest_below(txn, first.number)?;
            if let Some(tip) = tip.filter(|tip| tip + 1 >= floor) {
                return Ok(Linked::Refused(Extended::Gap { tip, first: first.number }));
            }
            txn.delete_below::<tables::Headers>(&first.number)?;
            txn.delete_below::<tables::WindowMessages>(&(first.number, Seq::ZERO))?;
            let restarted = tip
                .filter(|tip| *tip >= previous_floor)
                .map(|previous_tip| WindowRestart { previous_tip, first: first.number });
            Ok(Linked::StartsAgain(restarted))
        }
    }
}

/// What the window's state says, or nothing known.
pub(super) fn bounds(txn: &WriteTxn<'_>) -> Result<WindowBounds> {
    Ok(txn.get::<tables::WindowState>(&WINDOW)?.unwrap_or_default())
}

/// The newest header the window keeps below block `number`.
fn newest_below(txn: &WriteTxn<'_>, number: u64) -> Result<Option<u64>> {
    let Some(below) = number.checked_sub(1) else { return Ok(None) };
    let mut newest = None;
    txn.walk_back::<tables::Headers>(Some(&below), |number, _| {
        newest = Some(number);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(newest)
}

/// The tag's block number if the window (with the batch's headers already written) holds that
/// very block; otherwise the tag says nothing about the stored chain.
fn checked_tag(txn: &WriteTxn<'_>, tag: Option<BlockRef>) -> Result<Option<u64>> {
    let Some(tag) = tag else { return Ok(None) };
    let kept = txn.get::<tables::Headers>(&tag.number)?;
    Ok(kept.filter(|kept| kept.hash == tag.hash).map(|_| tag.number))
}
