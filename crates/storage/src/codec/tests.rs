//! Round trips, pinned layouts and fuzzing of every value codec.

use super::{message::MESSAGE_HEADER_LEN, *};
use crate::models::{HaltRecord, KnownHeads, ReorgCause, ReorgRecord, WindowBounds};
use ferry_primitives::{
    Address, B256, EventMessage, L1Message, Message, Origin, Position, Seq, U256,
};
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
            crate::codec::AuditRecord {
                at_millis: at,
                method: if set {
                    crate::ChangeMethod::SetCheckpoint
                } else {
                    crate::ChangeMethod::ReorgRewind
                },
                caller,
                previous: set.then(|| Position::new(at, 1)),
                current: None,
                skipped: set
                    .then_some(ferry_primitives::Skipped { blocks: at, stored_messages: 2 }),
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
        decodes_canonically::<crate::codec::AuditRecord>(&bytes)?;
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
