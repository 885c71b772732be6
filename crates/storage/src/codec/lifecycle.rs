//! The encodings of what the store keeps of message lifecycles (schema version 3): each
//! message's events, the per-state counts, and the stateChanged part of a notice.

use super::{DecodeError, DecodeResult, Fields, Value, put_optional_u64};
use crate::models::KnownHeads;
use ferry_primitives::{
    Address, EventAt, EventMessage, LifecycleKind, MessageState, Seq, StateChange, StateCounts,
};

/// One lifecycle event of a message, as its Lifecycles value keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventRecord {
    pub(crate) kind: LifecycleKind,
    pub(crate) at: EventAt,
    /// The stateChanged notice that told consumers of it, if the message was stored then.
    pub(crate) notice: Option<Seq>,
}

/// A Lifecycles value: a message's lifecycle events in L1 order, and its fields while the
/// message itself is not stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LifecycleRecord {
    pub(crate) unmatched: Option<EventMessage>,
    pub(crate) events: Vec<EventRecord>,
}

/// kind 1, block 8, block hash 32, transaction hash 32, log index 8, timestamp 8, delay end
/// 9, notice 9.
const EVENT_LEN: usize = 1 + 8 + 32 + 32 + 8 + 8 + 9 + 9;

const fn kind_byte(kind: LifecycleKind) -> u8 {
    match kind {
        LifecycleKind::CancellationStarted => 1,
        LifecycleKind::Cancelled => 2,
        LifecycleKind::Consumed => 3,
    }
}

fn kind_of(byte: u8) -> DecodeResult<LifecycleKind> {
    Ok(match byte {
        1 => LifecycleKind::CancellationStarted,
        2 => LifecycleKind::Cancelled,
        3 => LifecycleKind::Consumed,
        other => return Err(DecodeError::invalid(format!("unknown lifecycle event {other}"))),
    })
}

const fn state_byte(state: MessageState) -> u8 {
    match state {
        MessageState::Pending => 0,
        MessageState::CancellationStarted => 1,
        MessageState::Cancelled => 2,
        MessageState::Consumed => 3,
    }
}

fn state_of(byte: u8) -> DecodeResult<MessageState> {
    Ok(match byte {
        0 => MessageState::Pending,
        1 => MessageState::CancellationStarted,
        2 => MessageState::Cancelled,
        3 => MessageState::Consumed,
        other => return Err(DecodeError::invalid(format!("unknown message state {other}"))),
    })
}

fn flag(fields: &mut Fields<'_>) -> DecodeResult<bool> {
    match fields.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(DecodeError::invalid(format!("flag {other} (0 or 1)"))),
    }
}

fn encode_at(at: &EventAt, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&at.block.to_be_bytes());
    buf.extend_from_slice(at.block_hash.as_slice());
    buf.extend_from_slice(at.transaction_hash.as_slice());
    buf.extend_from_slice(&at.log_index.to_be_bytes());
    buf.extend_from_slice(&at.timestamp.to_be_bytes());
    put_optional_u64(at.delay_ends_at, buf);
}

fn decode_at(fields: &mut Fields<'_>) -> DecodeResult<EventAt> {
    Ok(EventAt {
        block: fields.u64()?,
        block_hash: fields.b256()?,
        transaction_hash: fields.b256()?,
        log_index: fields.u64()?,
        timestamp: fields.u64()?,
        delay_ends_at: fields.optional_u64()?,
    })
}

impl Value for LifecycleRecord {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        match &self.unmatched {
            None => buf.push(0),
            Some(message) => {
                buf.push(1);
                buf.extend_from_slice(message.from.as_slice());
                for felt in [message.to, message.selector, message.nonce] {
                    buf.extend_from_slice(&felt.to_be_bytes::<32>());
                }
                let len = u32::try_from(message.payload.len())
                    .expect("payload lengths are bounded by L1 gas");
                buf.extend_from_slice(&len.to_be_bytes());
                for felt in &message.payload {
                    buf.extend_from_slice(&felt.to_be_bytes::<32>());
                }
            }
        }
        let count = u32::try_from(self.events.len()).expect("a message has few events");
        buf.reserve(4 + EVENT_LEN * self.events.len());
        buf.extend_from_slice(&count.to_be_bytes());
        for event in &self.events {
            buf.push(kind_byte(event.kind));
            encode_at(&event.at, buf);
            put_optional_u64(event.notice.map(|seq| seq.0), buf);
        }
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let unmatched = if flag(&mut fields)? {
            let from = Address::from_slice(fields.take(20)?);
            let (to, selector, nonce) = (fields.u256()?, fields.u256()?, fields.u256()?);
            let len = fields.u32()? as usize;
            if fields.0.len() < 32 * len {
                return Err(DecodeError::length(32 * len, fields.0.len()));
            }
            let payload = (0..len).map(|_| fields.u256()).collect::<DecodeResult<_>>()?;
            Some(EventMessage { from, to, selector, nonce, payload })
        } else {
            None
        };
        let count = fields.u32()? as usize;
        if fields.0.len() != EVENT_LEN * count {
            return Err(DecodeError::length(EVENT_LEN * count, fields.0.len()));
        }
        let events = (0..count)
            .map(|_| {
                Ok(EventRecord {
                    kind: kind_of(fields.u8()?)?,
                    at: decode_at(&mut fields)?,
                    notice: fields.optional_u64()?.map(Seq),
                })
            })
            .collect::<DecodeResult<_>>()?;
        fields.end()?;
        Ok(Self { unmatched, events })
    }
}

/// The LifecycleCounts value: stored messages by state (but pending, which is what the
/// others leave of the canonical messages), and unmatched lifecycles.
impl Value for StateCounts {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        for count in [self.cancellation_started, self.cancelled, self.consumed, self.unmatched] {
            buf.extend_from_slice(&count.to_be_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let counts = Self {
            pending: 0,
            cancellation_started: fields.u64()?,
            cancelled: fields.u64()?,
            consumed: fields.u64()?,
            unmatched: fields.u64()?,
        };
        fields.end()?;
        Ok(counts)
    }
}

/// A RevertedChanges value: the heads when a reorg removed the event a notice told of.
impl Value for KnownHeads {
    fn encode_into(&self, buf: &mut Vec<u8>) {
        put_optional_u64(self.safe, buf);
        put_optional_u64(self.finalized, buf);
    }

    fn decode(bytes: &[u8]) -> DecodeResult<Self> {
        let mut fields = Fields(bytes);
        let heads = Self { safe: fields.optional_u64()?, finalized: fields.optional_u64()? };
        fields.end()?;
        Ok(heads)
    }
}

/// The stateChanged part of a notice: the change, and for a reverting one the notice it
/// undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeRecord {
    pub(crate) change: StateChange,
    pub(crate) reverts: Option<Seq>,
}

impl ChangeRecord {
    pub(super) fn encode(&self, buf: &mut Vec<u8>) {
        let StateChange { event, at, previous, current, reverted } = self.change;
        buf.push(kind_byte(event));
        encode_at(&at, buf);
        buf.push(state_byte(previous));
        buf.push(state_byte(current));
        buf.push(u8::from(reverted));
        put_optional_u64(self.reverts.map(|seq| seq.0), buf);
    }

    pub(super) fn decode(fields: &mut Fields<'_>) -> DecodeResult<Self> {
        let event = kind_of(fields.u8()?)?;
        let at = decode_at(fields)?;
        let previous = state_of(fields.u8()?)?;
        let current = state_of(fields.u8()?)?;
        let reverted = flag(fields)?;
        let reverts = fields.optional_u64()?.map(Seq);
        Ok(Self { change: StateChange { event, at, previous, current, reverted }, reverts })
    }
}
