//! The byte encodings of keys and values: one explicit layout per type, versioned as a whole
//! by [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) in the Meta table.
//!
//! Numbers in keys are fixed-width big-endian so that MDBX's lexicographic byte order is
//! numeric order: iterating Messages walks seqs upwards, and positions compare as they do in
//! Rust. Every table's key and value types are declared once, in `tables.rs`.

mod lifecycle;

pub use lifecycle::EventMessage;
pub(crate) use lifecycle::{ChangeRecord, EventRecord, LifecycleRecord};

use ferry_primitives::{
    Address, B256, BlockHeader, L1Message, Message, Origin, Position, Seq, U256,
};

/// Bytes that do not have the layout their table promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DecodeError(String);

impl DecodeError {
    pub(crate) fn length(expected: usize, found: usize) -> Self {
        Self(format!("expected {expected} bytes, found {found}"))
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

pub(crate) type DecodeResult<T> = Result<T, DecodeError>;

/// A table key: fixed-width where it is a number, so byte order is numeric order.
pub(crate) trait Key: Sized {
    /// The encoded key.
    fn encode(&self) -> impl AsRef<[u8]>;
    /// The key back from its bytes.
    fn decode(bytes: &[u8]) -> DecodeResult<Self>;
}

/// A table value.
pub(crate) trait Value: Sized {
    /// Appends the encoding to `buf`.
    fn encode_into(&self, buf: &mut Vec<u8>);
    /// The value back from its bytes.
    fn decode(bytes: &[u8]) -> DecodeResult<Self>;
}

/// Something that encodes as a `V` without being one: a borrowed form, so that the hot path
/// writes messages without copying them first.
pub(crate) trait EncodeAs<V> {
    /// Appends the encoding of the `V` it stands for to `buf`.
    fn encode_as(&self, buf: &mut Vec<u8>);
}

impl<V: Value> EncodeAs<V> for V {
    fn encode_as(&self, buf: &mut Vec<u8>) {
        self.encode_into(buf);
    }
}

fn fixed<const N: usize>(bytes: &[u8]) -> DecodeResult<[u8; N]> {
    bytes.try_into().map_err(|_| DecodeError::length(N, bytes.len()))
}

/// Reads fixed-width fields off the front of a value whose length was checked.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> DecodeResult<&'a [u8]> {
        if self.0.len() < len {
            return Err(DecodeError::invalid(format!(
                "value ends {} bytes early",
                len - self.0.len()
            )));
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Ok(head)
    }

    fn b256(&mut self) -> DecodeResult<B256> {
        self.take(32).map(B256::from_slice)
    }

    fn u256(&mut self) -> DecodeResult<U256> {
        self.take(32).map(U256::from_be_slice)
    }

    fn u64(&mut self) -> DecodeResult<u64> {
        self.take(8).and_then(fixed).map(u64::from_be_bytes)
    }

    fn u32(&mut self) -> DecodeResult<u32> {
        self.take(4).and_then(fixed).map(u32::from_be_bytes)
    }

    fn u8(&mut self) -> DecodeResult<u8> {
        Ok(self.take(1)?[0])
    }

    /// A flag byte then a `u64`: `1` and the value, or `0` and zeros. Anything else is
    /// refused as corrupt rather than read one way and written back another.
    fn optional_u64(&mut self) -> DecodeResult<Option<u64>> {
        let present = self.u8()?;
        let value = self.u64()?;
        match (present, value) {
            (1, value) => Ok(Some(value)),
            (0, 0) => Ok(None),
            (0, value) => Err(DecodeError::invalid(format!("absent value holding {value}"))),
            (flag, _) => Err(DecodeError::invalid(format!("presence flag {flag} (0 or 1)"))),
        }
    }

    fn end(self) -> DecodeResult<()> {
        match self.0.len() {
            0 => Ok(()),
            extra => Err(DecodeError::invalid(format!("{extra} bytes past the end of the value"))),
        }
    }
}

fn put_optional_u64(value: Option<u64>, buf: &mut Vec<u8>) {
    buf.push(u8::from(value.is_some()));
    buf.extend_from_slice(&value.unwrap_or(0).to_be_bytes());
}

impl Key for u64 {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.to_be_bytes()
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed(bytes).map(Self::from_be_bytes)
    }
}

impl Value for u64 {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed(bytes).map(Self::from_be_bytes)
    }
}

impl Key for Seq {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.0.to_be_bytes()
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        <u64 as Key>::decode(bytes).map(Self)
    }
}

impl Value for Seq {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        self.0.encode_into(buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        <u64 as Value>::decode(bytes).map(Self)
    }
}

impl Key for B256 {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.0
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from)
    }
}

impl Value for B256 {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.as_slice());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from)
    }
}

impl Key for U256 {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.to_be_bytes::<32>()
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from_be_bytes)
    }
}

impl Value for U256 {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.to_be_bytes::<32>());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        fixed::<32>(bytes).map(Self::from_be_bytes)
    }
}

/// A key of the hash index: the partition of the message's seq, then the message's hash (see
/// `store/index.rs` for why the partition comes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HashKey {
    /// The seq of the message's entry divided by the partition size.
    pub(crate) partition: u64,
    /// The message's hash.
    pub(crate) hash: B256,
}

impl Key for HashKey {
    fn encode(&self) -> impl AsRef<[u8]> {
        let mut bytes = [0; 40];
        bytes[..8].copy_from_slice(&self.partition.to_be_bytes());
        bytes[8..].copy_from_slice(self.hash.as_slice());
        bytes
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let bytes: [u8; 40] = fixed(bytes)?;
        let (partition, hash) = bytes.split_at(8);
        Ok(Self { partition: <u64 as Key>::decode(partition)?, hash: <B256 as Key>::decode(hash)? })
    }
}

/// A key of the nonce index: a message's nonce, then the seq of its entry, so that the
/// messages stored with one nonce (several after reorgs) are neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonceKey {
    /// The message's nonce.
    pub(crate) nonce: U256,
    /// The seq of its message entry.
    pub(crate) seq: Seq,
}

impl Key for NonceKey {
    fn encode(&self) -> impl AsRef<[u8]> {
        let mut bytes = [0; 40];
        bytes[..32].copy_from_slice(&self.nonce.to_be_bytes::<32>());
        bytes[32..].copy_from_slice(&self.seq.0.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let bytes: [u8; 40] = fixed(bytes)?;
        let (nonce, seq) = bytes.split_at(32);
        Ok(Self { nonce: <U256 as Key>::decode(nonce)?, seq: <Seq as Key>::decode(seq)? })
    }
}

/// Two numbers in one key, compared first by the first: `(block, seq)`, `(message, notice)`.
impl<A: From<u64> + Into<u64> + Copy, B: From<u64> + Into<u64> + Copy> Key for (A, B) {
    fn encode(&self) -> impl AsRef<[u8]> {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.0.into().to_be_bytes());
        bytes[8..].copy_from_slice(&self.1.into().to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let bytes: [u8; 16] = fixed(bytes)?;
        let (first, second) = bytes.split_at(8);
        Ok((A::from(<u64 as Key>::decode(first)?), B::from(<u64 as Key>::decode(second)?)))
    }
}

/// The provider's safe and finalized blocks, by number and hash, as the node fetched them
/// with its heads: a commit raises the window's heads to them only where the hash is the one
/// of the block the store holds (or the batch brings) at that number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FinalityTags {
    /// The provider's `safe` block.
    pub safe: Option<ferry_primitives::BlockRef>,
    /// The provider's `finalized` block.
    pub finalized: Option<ferry_primitives::BlockRef>,
}

/// Why a reorg halts ingestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HaltKind {
    /// No block of the header window is on the chain any more.
    BeyondWindow,
    /// The common ancestor is below the finalized block: a finalized block was replaced.
    BelowFinalized,
}

/// A halt, as the Halt table keeps it: it survives restarts, and the operator's next
/// checkpoint change resolves it in the same transaction that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaltRecord {
    /// When, in Unix milliseconds.
    pub at_millis: u64,
    /// Why.
    pub kind: HaltKind,
    /// The newest block of the window that was replaced, with the hash kept.
    pub replaced: ferry_primitives::BlockRef,
    /// The lowest block of the window checked (all replaced, beyond the window).
    pub lowest_checked: u64,
    /// The common ancestor, below a finalized block.
    pub common_ancestor: Option<u64>,
    /// The finalized block the window was read under.
    pub finalized: Option<u64>,
}

impl Value for HaltRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.at_millis.to_be_bytes());
        buf.push(match self.kind {
            HaltKind::BeyondWindow => 1,
            HaltKind::BelowFinalized => 2,
        });
        buf.extend_from_slice(&self.replaced.number.to_be_bytes());
        buf.extend_from_slice(self.replaced.hash.as_slice());
        buf.extend_from_slice(&self.lowest_checked.to_be_bytes());
        put_optional_u64(self.common_ancestor, buf);
        put_optional_u64(self.finalized, buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let at_millis = fields.u64()?;
        let kind = match fields.u8()? {
            1 => HaltKind::BeyondWindow,
            2 => HaltKind::BelowFinalized,
            other => return Err(DecodeError::invalid(format!("unknown halt kind {other}"))),
        };
        let replaced = ferry_primitives::BlockRef { number: fields.u64()?, hash: fields.b256()? };
        let record = Self {
            at_millis,
            kind,
            replaced,
            lowest_checked: fields.u64()?,
            common_ancestor: fields.optional_u64()?,
            finalized: fields.optional_u64()?,
        };
        fields.end()?;
        Ok(record)
    }
}

/// What the node knew of the chain when it last extended the header window: the lowest block
/// it had to keep, and the provider's safe and finalized blocks, each raised only to a block
/// whose hash is the one the store holds at that number.
///
/// A block at or below these heads is final on the chain the node stored, which fresh heads,
/// fetched from another backend or before the node has seen a reorg, do not promise.
/// Consumers waiting for finality are told by these, and notices record them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowBounds {
    /// The window's floor then: blocks below it were final enough not to keep.
    pub floor: u64,
    /// The provider's safe block.
    pub safe: Option<u64>,
    /// The provider's finalized block.
    pub finalized: Option<u64>,
}

impl WindowBounds {
    /// The heads as notices record them.
    pub const fn heads(&self) -> KnownHeads {
        KnownHeads { safe: self.safe, finalized: self.finalized }
    }
}

impl Value for WindowBounds {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.floor.to_be_bytes());
        put_optional_u64(self.safe, buf);
        put_optional_u64(self.finalized, buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let bounds = Self {
            floor: fields.u64()?,
            safe: fields.optional_u64()?,
            finalized: fields.optional_u64()?,
        };
        fields.end()?;
        Ok(bounds)
    }
}

/// A key that is a name: a Meta setting, or the only row of a singleton table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name(pub(crate) &'static str);

/// The Checkpoint table's only key.
pub(crate) const CHECKPOINT: Name = Name("checkpoint");
/// The WindowState table's only key.
pub(crate) const WINDOW: Name = Name("window");
/// The Halt table's only key.
pub(crate) const HALT: Name = Name("halt");

impl Key for Name {
    fn encode(&self) -> impl AsRef<[u8]> {
        self.0.as_bytes()
    }

    fn decode(_: &[u8]) -> DecodeResult<Self> {
        Err(DecodeError::invalid("named keys are looked up by name, never listed"))
    }
}

/// The bytes of a Meta setting; each setting says how to read them.
impl Value for Vec<u8> {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        Ok(bytes.to_vec())
    }
}

/// Index tables keep their facts in their keys.
impl Value for () {
    fn encode_into(&self, _: &mut Vec<u8>) {}

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        match bytes.len() {
            0 => Ok(()),
            found => Err(DecodeError::length(0, found)),
        }
    }
}

/// `block` then `index`, both big-endian, so encoded positions sort like [`Position`]s.
impl Value for Position {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.block.to_be_bytes());
        buf.extend_from_slice(&self.index.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let position = Self::new(fields.u64()?, fields.u64()?);
        fields.end()?;
        Ok(position)
    }
}

/// A Messages value: the message's hash and what was found on L1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageRecord {
    pub(crate) hash: B256,
    pub(crate) l1: L1Message,
}

/// A message to store, borrowed: encodes as a [`MessageRecord`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageRef<'a> {
    pub(crate) hash: B256,
    pub(crate) l1: &'a L1Message,
}

/// Length of a Messages value without its payload:
/// hash 32, from 20, to 32, selector 32, nonce 32, fee 32, block 8, block hash 32,
/// transaction hash 32, log index 8, payload length 4.
const MESSAGE_HEADER_LEN: usize = 32 + 20 + 32 * 4 + 8 + 32 + 32 + 8 + 4;

impl EncodeAs<MessageRecord> for MessageRef<'_> {
    fn encode_as(&self, buf: &mut Vec<u8>) {
        let Message { from, to, selector, payload, nonce, fee } = &self.l1.message;
        buf.reserve(MESSAGE_HEADER_LEN + 32 * payload.len());
        buf.extend_from_slice(self.hash.as_slice());
        buf.extend_from_slice(from.as_slice());
        for felt in [to, selector, nonce, fee] {
            buf.extend_from_slice(&felt.to_be_bytes::<32>());
        }
        encode_origin(&self.l1.origin, buf);
        let payload_len =
            u32::try_from(payload.len()).expect("payload lengths are bounded by L1 gas");
        buf.extend_from_slice(&payload_len.to_be_bytes());
        for felt in payload {
            buf.extend_from_slice(&felt.to_be_bytes::<32>());
        }
    }
}

impl Value for MessageRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        MessageRef { hash: self.hash, l1: &self.l1 }.encode_as(buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        if bytes.len() < MESSAGE_HEADER_LEN {
            return Err(DecodeError::length(MESSAGE_HEADER_LEN, bytes.len()));
        }
        let payload_len =
            u32::from_be_bytes(fixed(&bytes[MESSAGE_HEADER_LEN - 4..MESSAGE_HEADER_LEN])?) as usize;
        let expected = MESSAGE_HEADER_LEN + 32 * payload_len;
        if bytes.len() != expected {
            return Err(DecodeError::length(expected, bytes.len()));
        }
        let mut fields = Fields(bytes);
        let hash = fields.b256()?;
        let from = Address::from_slice(fields.take(20)?);
        let (to, selector) = (fields.u256()?, fields.u256()?);
        let (nonce, fee) = (fields.u256()?, fields.u256()?);
        let origin = decode_origin(&mut fields)?;
        fields.take(4)?;
        let payload = (0..payload_len).map(|_| fields.u256()).collect::<DecodeResult<_>>()?;
        fields.end()?;
        let message = Message { from, to, selector, payload, nonce, fee };
        Ok(Self { hash, l1: L1Message { message, origin } })
    }
}

/// Block 8, block hash 32, transaction hash 32, log index 8.
fn encode_origin(origin: &Origin, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&origin.block_number.to_be_bytes());
    buf.extend_from_slice(origin.block_hash.as_slice());
    buf.extend_from_slice(origin.transaction_hash.as_slice());
    buf.extend_from_slice(&origin.log_index.to_be_bytes());
}

fn decode_origin(fields: &mut Fields<'_>) -> DecodeResult<Origin> {
    Ok(Origin {
        block_number: fields.u64()?,
        block_hash: fields.b256()?,
        transaction_hash: fields.b256()?,
        log_index: fields.u64()?,
    })
}

/// A Headers value: the block's hash and its parent's (the number is the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderValue {
    pub(crate) hash: B256,
    pub(crate) parent_hash: B256,
}

impl HeaderValue {
    pub(crate) const fn of(header: &BlockHeader) -> Self {
        Self { hash: header.hash, parent_hash: header.parent_hash }
    }

    pub(crate) const fn at(self, number: u64) -> BlockHeader {
        BlockHeader { number, hash: self.hash, parent_hash: self.parent_hash }
    }
}

impl Value for HeaderValue {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(self.hash.as_slice());
        buf.extend_from_slice(self.parent_hash.as_slice());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let value = Self { hash: fields.b256()?, parent_hash: fields.b256()? };
        fields.end()?;
        Ok(value)
    }
}

/// The L1 safe and finalized heads the node knew when it wrote a notice: whether a consumer
/// following `safe` or `finalized` had been told of what the notice retracts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnownHeads {
    /// The provider's `safe` block.
    pub safe: Option<u64>,
    /// The provider's `finalized` block.
    pub finalized: Option<u64>,
}

/// What a notice says about the message it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    /// A reorg removed it.
    Removed,
    /// It is on the canonical chain again.
    Reincluded,
    /// A lifecycle event changed its state, or a reorg removed one (schema version 3).
    StateChanged(ChangeRecord),
}

/// A Notices value: a log entry that is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoticeRecord {
    pub(crate) kind: NoticeKind,
    /// The seq of the message entry.
    pub(crate) message: Seq,
    /// The reorg it comes from: always one for a removal or a re-inclusion, and for a state
    /// change that a reorg reverted.
    pub(crate) reorg: Option<u64>,
    /// Where the message was removed from, or included again; for a state change, where the
    /// message was when it changed.
    pub(crate) origin: Origin,
    /// The heads when it was written.
    pub(crate) heads: KnownHeads,
}

impl Value for NoticeRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        // Removals and re-inclusions keep the layout of schema version 2.
        buf.push(match self.kind {
            NoticeKind::Removed => 1,
            NoticeKind::Reincluded => 2,
            NoticeKind::StateChanged(_) => 3,
        });
        buf.extend_from_slice(&self.message.0.to_be_bytes());
        match self.kind {
            NoticeKind::StateChanged(_) => put_optional_u64(self.reorg, buf),
            _ => buf.extend_from_slice(
                &self.reorg.expect("removals and re-inclusions come from a reorg").to_be_bytes(),
            ),
        }
        encode_origin(&self.origin, buf);
        put_optional_u64(self.heads.safe, buf);
        put_optional_u64(self.heads.finalized, buf);
        if let NoticeKind::StateChanged(change) = &self.kind {
            change.encode(buf);
        }
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let kind = fields.u8()?;
        let message = Seq(fields.u64()?);
        let reorg = match kind {
            1 | 2 => Some(fields.u64()?),
            3 => fields.optional_u64()?,
            other => return Err(DecodeError::invalid(format!("unknown notice kind {other}"))),
        };
        let origin = decode_origin(&mut fields)?;
        let heads = KnownHeads { safe: fields.optional_u64()?, finalized: fields.optional_u64()? };
        let kind = match kind {
            1 => NoticeKind::Removed,
            2 => NoticeKind::Reincluded,
            _ => NoticeKind::StateChanged(ChangeRecord::decode(&mut fields)?),
        };
        fields.end()?;
        Ok(Self { kind, message, reorg, origin, heads })
    }
}

/// An Orphans value: which reorg orphaned the message, and the entry that said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrphanRecord {
    pub(crate) reorg: u64,
    pub(crate) notice: Seq,
}

impl Value for OrphanRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.reorg.to_be_bytes());
        buf.extend_from_slice(&self.notice.0.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let record = Self { reorg: fields.u64()?, notice: Seq(fields.u64()?) };
        fields.end()?;
        Ok(record)
    }
}

/// What found a reorg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReorgCause {
    /// The node: a block it had scanned, inside its header window, was replaced.
    Detected,
    /// An operator moved the checkpoint while the node was halted by a reorg deeper than its
    /// window: what was stored from the new checkpoint on was orphaned, to be found again.
    Resolved,
    /// A re-scan found stored messages at another origin, in blocks the node had not kept
    /// headers of (an operator had skipped them): each was moved, a removal and a re-inclusion.
    Moved,
}

impl ReorgCause {
    /// The name operators see.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::Resolved => "resolvedByOperator",
            Self::Moved => "movedOnRescan",
        }
    }
}

/// One reorg, as the Reorgs table keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorgRecord {
    /// When it was handled, in Unix milliseconds.
    pub at_millis: u64,
    /// What found it.
    pub cause: ReorgCause,
    /// Reading went on from here: the position after the common ancestor, or the operator's.
    pub rewind_to: Position,
    /// The newest block still canonical, with its hash, when the node found one.
    pub common_ancestor: Option<ferry_primitives::BlockRef>,
    /// The newest block scanned before the reorg, with its hash.
    pub old_tip: Option<ferry_primitives::BlockRef>,
    /// Messages it orphaned.
    pub orphaned: u64,
    /// The seq of its first removal notice, if it orphaned any.
    pub first_notice: Option<Seq>,
}

impl Value for ReorgRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.at_millis.to_be_bytes());
        buf.push(match self.cause {
            ReorgCause::Detected => 1,
            ReorgCause::Resolved => 2,
            ReorgCause::Moved => 3,
        });
        self.rewind_to.encode_into(buf);
        for block in [self.common_ancestor, self.old_tip] {
            put_optional_u64(block.map(|block| block.number), buf);
            buf.extend_from_slice(block.map_or(B256::ZERO, |block| block.hash).as_slice());
        }
        buf.extend_from_slice(&self.orphaned.to_be_bytes());
        put_optional_u64(self.first_notice.map(|seq| seq.0), buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let at_millis = fields.u64()?;
        let cause = match fields.u8()? {
            1 => ReorgCause::Detected,
            2 => ReorgCause::Resolved,
            3 => ReorgCause::Moved,
            other => return Err(DecodeError::invalid(format!("unknown reorg cause {other}"))),
        };
        let rewind_to = Position::new(fields.u64()?, fields.u64()?);
        let mut block = || -> DecodeResult<_> {
            let number = fields.optional_u64()?;
            let hash = fields.b256()?;
            match number {
                Some(number) => Ok(Some(ferry_primitives::BlockRef { number, hash })),
                None if hash.is_zero() => Ok(None),
                None => Err(DecodeError::invalid(format!("absent block with hash {hash}"))),
            }
        };
        let (common_ancestor, old_tip) = (block()?, block()?);
        let orphaned = fields.u64()?;
        let first_notice = fields.optional_u64()?.map(Seq);
        fields.end()?;
        Ok(Self { at_millis, cause, rewind_to, common_ancestor, old_tip, orphaned, first_notice })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_u256() -> impl Strategy<Value = U256> {
        any::<[u8; 32]>().prop_map(U256::from_be_bytes)
    }

    prop_compose! {
        fn arb_origin()(
            block_number in any::<u64>(),
            (block_hash, transaction_hash) in (any::<[u8; 32]>(), any::<[u8; 32]>()),
            log_index in any::<u64>(),
        ) -> Origin {
            Origin {
                block_number,
                block_hash: B256::from(block_hash),
                transaction_hash: B256::from(transaction_hash),
                log_index,
            }
        }
    }

    prop_compose! {
        fn arb_l1_message()(
            from in any::<[u8; 20]>(),
            (to, selector, nonce, fee) in (arb_u256(), arb_u256(), arb_u256(), arb_u256()),
            payload in prop::collection::vec(arb_u256(), 0..8),
            origin in arb_origin(),
        ) -> L1Message {
            L1Message {
                message: Message { from: Address::from(from), to, selector, payload, nonce, fee },
                origin,
            }
        }
    }

    fn round_trip<V: Value + PartialEq + std::fmt::Debug>(value: &V) {
        let mut buf = Vec::new();
        value.encode_into(&mut buf);
        assert_eq!(&V::decode(&buf).unwrap(), value);
        assert!(buf.is_empty() || V::decode(&buf[..buf.len() - 1]).is_err(), "truncated");
    }

    prop_compose! {
        fn arb_event_at()(
            origin in arb_origin(),
            timestamp in any::<u64>(),
            delay_ends_at in any::<Option<u64>>(),
        ) -> ferry_primitives::EventAt {
            ferry_primitives::EventAt {
                block: origin.block_number,
                block_hash: origin.block_hash,
                transaction_hash: origin.transaction_hash,
                log_index: origin.log_index,
                timestamp,
                delay_ends_at,
            }
        }
    }

    fn arb_kind() -> impl Strategy<Value = ferry_primitives::LifecycleKind> {
        use ferry_primitives::LifecycleKind::*;
        prop_oneof![Just(CancellationStarted), Just(Cancelled), Just(Consumed)]
    }

    fn arb_state() -> impl Strategy<Value = ferry_primitives::MessageState> {
        prop::sample::select(ferry_primitives::MessageState::ALL.to_vec())
    }

    prop_compose! {
        fn arb_lifecycle_record()(
            unmatched in prop::option::of(arb_l1_message()),
            events in prop::collection::vec(
                (arb_kind(), arb_event_at(), any::<Option<u64>>()),
                0..4,
            ),
        ) -> LifecycleRecord {
            LifecycleRecord {
                unmatched: unmatched.map(|l1| EventMessage {
                    from: l1.message.from,
                    to: l1.message.to,
                    selector: l1.message.selector,
                    nonce: l1.message.nonce,
                    payload: l1.message.payload,
                }),
                events: events
                    .into_iter()
                    .map(|(kind, at, notice)| EventRecord { kind, at, notice: notice.map(Seq) })
                    .collect(),
            }
        }
    }

    prop_compose! {
        fn arb_state_notice()(
            origin in arb_origin(),
            (message, reorg, reverts) in (any::<u64>(), any::<Option<u64>>(), any::<Option<u64>>()),
            (event, at, previous, current, reverted) in
                (arb_kind(), arb_event_at(), arb_state(), arb_state(), any::<bool>()),
            (safe, finalized) in (any::<Option<u64>>(), any::<Option<u64>>()),
        ) -> NoticeRecord {
            let change = ferry_primitives::StateChange { event, at, previous, current, reverted };
            NoticeRecord {
                kind: NoticeKind::StateChanged(ChangeRecord { change, reverts: reverts.map(Seq) }),
                message: Seq(message),
                reorg,
                origin,
                heads: KnownHeads { safe, finalized },
            }
        }
    }

    proptest! {
        #[test]
        fn lifecycle_values_and_state_notices_round_trip(
            record in arb_lifecycle_record(),
            notice in arb_state_notice(),
            counts in any::<(u64, u64, u64, u64)>(),
        ) {
            round_trip(&record);
            round_trip(&notice);
            let (cancellation_started, cancelled, consumed, unmatched) = counts;
            round_trip(&ferry_primitives::StateCounts {
                pending: 0, cancellation_started, cancelled, consumed, unmatched,
            });
            round_trip(&notice.heads);
        }

        #[test]
        fn big_endian_u64_keys_sort_in_numeric_order(a in any::<u64>(), b in any::<u64>()) {
            prop_assert_eq!(a.encode().as_ref().cmp(b.encode().as_ref()), a.cmp(&b));
        }

        #[test]
        fn pair_keys_sort_by_their_first_then_second_number(
            a in (any::<u64>(), any::<u64>()),
            b in (any::<u64>(), any::<u64>()),
        ) {
            let (ka, kb) = ((a.0, Seq(a.1)), (b.0, Seq(b.1)));
            prop_assert_eq!(ka.encode().as_ref().cmp(kb.encode().as_ref()), a.cmp(&b));
            prop_assert_eq!(<(u64, Seq)>::decode(ka.encode().as_ref()), Ok(ka));
        }

        #[test]
        fn encoded_positions_sort_like_positions(
            a in (any::<u64>(), any::<u64>()),
            b in (any::<u64>(), any::<u64>()),
        ) {
            let (a, b) = (Position::new(a.0, a.1), Position::new(b.0, b.1));
            let (mut ea, mut eb) = (Vec::new(), Vec::new());
            a.encode_into(&mut ea);
            b.encode_into(&mut eb);
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
            prop_assert_eq!(Position::decode(&ea), Ok(a));
        }

        #[test]
        fn message_values_round_trip(l1 in arb_l1_message(), hash in any::<[u8; 32]>()) {
            round_trip(&MessageRecord { hash: B256::from(hash), l1 });
        }

        #[test]
        fn truncated_message_values_are_refused(l1 in arb_l1_message(), cut in 1usize..64) {
            let mut buf = Vec::new();
            MessageRecord { hash: B256::ZERO, l1 }.encode_into(&mut buf);
            buf.truncate(buf.len().saturating_sub(cut));
            prop_assert!(MessageRecord::decode(&buf).is_err());
        }

        #[test]
        fn notices_orphans_and_reorgs_round_trip(
            origin in arb_origin(),
            (message, reorg, notice) in (any::<u64>(), any::<u64>(), any::<u64>()),
            (safe, finalized) in (any::<Option<u64>>(), any::<Option<u64>>()),
            removed in any::<bool>(),
        ) {
            let kind = if removed { NoticeKind::Removed } else { NoticeKind::Reincluded };
            let heads = KnownHeads { safe, finalized };
            round_trip(&NoticeRecord { kind, message: Seq(message), reorg: Some(reorg), origin, heads });
            round_trip(&OrphanRecord { reorg, notice: Seq(notice) });
            let block = ferry_primitives::BlockRef { number: message, hash: origin.block_hash };
            round_trip(&ReorgRecord {
                at_millis: reorg,
                cause: if removed { ReorgCause::Detected } else { ReorgCause::Resolved },
                rewind_to: origin.position(),
                common_ancestor: safe.map(|_| block),
                old_tip: finalized.map(|_| block),
                orphaned: notice,
                first_notice: safe.map(Seq),
            });
        }
    }

    /// A stored value decoded from any bytes: an error or a value, never a panic; a value read
    /// writes back as the very bytes it was read from (one encoding per value, so nothing
    /// read is silently changed by a rewrite) and reads back as itself.
    fn decodes_canonically<V: Value + PartialEq + std::fmt::Debug>(
        bytes: &[u8],
    ) -> Result<(), TestCaseError> {
        if let Ok(value) = V::decode(bytes) {
            let mut again = Vec::new();
            value.encode_into(&mut again);
            prop_assert_eq!(&again, bytes, "{:?} from {:?}", value, bytes);
            let reread = V::decode(&again);
            prop_assert_eq!(reread.as_ref(), Ok(&value));
        }
        Ok(())
    }

    /// Valid encodings of every kind of value, then cut, extended or with one byte changed:
    /// inputs that pass the length checks and reach the field decoders.
    fn near_valid_bytes() -> impl Strategy<Value = Vec<u8>> {
        let valid = prop_oneof![
            arb_lifecycle_record().prop_map(|record| {
                let mut buf = Vec::new();
                record.encode_into(&mut buf);
                buf
            }),
            arb_state_notice().prop_map(|notice| {
                let mut buf = Vec::new();
                notice.encode_into(&mut buf);
                buf
            }),
            (arb_l1_message(), any::<[u8; 32]>()).prop_map(|(l1, hash)| {
                let mut buf = Vec::new();
                MessageRecord { hash: B256::from(hash), l1 }.encode_into(&mut buf);
                buf
            }),
            (arb_origin(), any::<(u64, u64, Option<u64>, bool)>()).prop_map(
                |(origin, (message, reorg, finalized, removed))| {
                    let mut buf = Vec::new();
                    let kind = if removed { NoticeKind::Removed } else { NoticeKind::Reincluded };
                    let heads = KnownHeads { safe: Some(reorg), finalized };
                    NoticeRecord { kind, message: Seq(message), reorg: Some(reorg), origin, heads }
                        .encode_into(&mut buf);
                    buf
                }
            ),
            (any::<(u64, u64, u64, bool)>(), arb_origin()).prop_map(
                |((at, number, orphaned, detected), origin)| {
                    let mut buf = Vec::new();
                    let block = ferry_primitives::BlockRef { number, hash: origin.block_hash };
                    ReorgRecord {
                        at_millis: at,
                        cause: if detected { ReorgCause::Detected } else { ReorgCause::Moved },
                        rewind_to: origin.position(),
                        common_ancestor: detected.then_some(block),
                        old_tip: (!detected).then_some(block),
                        orphaned,
                        first_notice: detected.then_some(Seq(orphaned)),
                    }
                    .encode_into(&mut buf);
                    buf
                }
            ),
            (any::<(u64, bool)>(), ".{0,12}").prop_map(|((at, set), caller)| {
                let mut buf = Vec::new();
                crate::audit::AuditRecord {
                    at_millis: at,
                    method: if set {
                        crate::ChangeMethod::SetCheckpoint
                    } else {
                        crate::ChangeMethod::ReorgRewind
                    },
                    caller,
                    previous: set.then(|| Position::new(at, 1)),
                    current: None,
                    skipped: set.then_some(crate::Skipped { blocks: at, stored_messages: 2 }),
                }
                .encode_into(&mut buf);
                buf
            }),
            prop::collection::vec(any::<u8>(), 0..160),
        ];
        (valid, any::<u16>(), any::<u8>(), 0..3u8).prop_map(|(mut bytes, at, byte, how)| {
            match how {
                0 if !bytes.is_empty() => {
                    let at = at as usize % bytes.len();
                    bytes[at] = byte;
                }
                1 => bytes.truncate(at as usize % (bytes.len() + 1)),
                _ => bytes.push(byte),
            }
            bytes
        })
    }

    #[test]
    fn fuzz_value_codec() {
        ferry_primitives::test_utils::fuzz("value-codec", near_valid_bytes(), |bytes| {
            decodes_canonically::<u64>(&bytes)?;
            decodes_canonically::<Seq>(&bytes)?;
            decodes_canonically::<B256>(&bytes)?;
            decodes_canonically::<Position>(&bytes)?;
            decodes_canonically::<HaltRecord>(&bytes)?;
            decodes_canonically::<WindowBounds>(&bytes)?;
            decodes_canonically::<MessageRecord>(&bytes)?;
            decodes_canonically::<HeaderValue>(&bytes)?;
            decodes_canonically::<NoticeRecord>(&bytes)?;
            decodes_canonically::<OrphanRecord>(&bytes)?;
            decodes_canonically::<ReorgRecord>(&bytes)?;
            decodes_canonically::<crate::audit::AuditRecord>(&bytes)?;
            decodes_canonically::<LifecycleRecord>(&bytes)?;
            decodes_canonically::<ferry_primitives::StateCounts>(&bytes)?;
            decodes_canonically::<KnownHeads>(&bytes)?;
            Ok(())
        });
    }

    #[test]
    fn message_value_layout_is_pinned() {
        // Changing this layout means bumping SCHEMA_VERSION (it is the same in versions 1 and 2).
        let l1 = L1Message {
            message: Message {
                from: Address::repeat_byte(0x11),
                to: U256::from(2),
                selector: U256::from(3),
                payload: vec![U256::from(7)],
                nonce: U256::from(4),
                fee: U256::from(5),
            },
            origin: Origin {
                block_number: 6,
                block_hash: B256::repeat_byte(0x66),
                transaction_hash: B256::repeat_byte(0x77),
                log_index: 8,
            },
        };
        let mut buf = Vec::new();
        MessageRef { hash: B256::repeat_byte(0xaa), l1: &l1 }.encode_as(&mut buf);
        assert_eq!(buf.len(), MESSAGE_HEADER_LEN + 32);
        assert_eq!(&buf[..32], &[0xaa; 32]);
        assert_eq!(&buf[32..52], &[0x11; 20]);
        assert_eq!(buf[52 + 31], 2, "to");
        assert_eq!(buf[84 + 31], 3, "selector");
        assert_eq!(buf[116 + 31], 4, "nonce");
        assert_eq!(buf[148 + 31], 5, "fee");
        assert_eq!(&buf[180..188], &6u64.to_be_bytes());
        assert_eq!(&buf[188..220], &[0x66; 32]);
        assert_eq!(&buf[220..252], &[0x77; 32]);
        assert_eq!(&buf[252..260], &8u64.to_be_bytes());
        assert_eq!(&buf[260..264], &1u32.to_be_bytes());
        assert_eq!(buf[264 + 31], 7, "payload[0]");
    }
}
