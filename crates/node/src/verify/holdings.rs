//! What the store says it holds: read offline from a datadir, or through a running node's
//! public listener as a consumer applies the log.

use crate::CommandError;
use alloy::primitives::{Address, B256};
use ferry_primitives::{EntryKind, Inclusion, Lifecycle, Message, Origin, Position, Seq};
use ferry_rpc_api::PublicApiClient;
use std::collections::BTreeMap;

/// A stored message as verify sees it.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) seq: Seq,
    pub(super) hash: B256,
    pub(super) message: Message,
    pub(super) origin: Origin,
    pub(super) inclusion: Inclusion,
    pub(super) lifecycle: Lifecycle,
}

/// What the store says it holds, wherever it was read from.
#[derive(Debug)]
pub(super) struct Holdings {
    pub(super) chain_id: u64,
    pub(super) contract: Address,
    pub(super) from_block: u64,
    /// The next position the node reads: everything before it was scanned.
    pub(super) next: Position,
    pub(super) messages: Vec<Stored>,
}

pub(super) fn from_datadir(datadir: &std::path::Path) -> Result<Holdings, CommandError> {
    let store = ferry_storage::Store::open_read_only(datadir)?;
    let config = store.config();
    let next = store.resume_position(store.checkpoint()?);
    let mut messages = Vec::new();
    let mut from = Seq::ZERO;
    loop {
        let chunk = store.messages_from(from, 10_000)?;
        let Some(last) = chunk.last() else { break };
        from = last.seq.next();
        messages.extend(chunk.into_iter().map(|stored| Stored {
            seq: stored.seq,
            hash: stored.hash,
            message: stored.l1.message,
            origin: stored.l1.origin,
            inclusion: stored.inclusion,
            lifecycle: stored.lifecycle,
        }));
    }
    Ok(Holdings {
        chain_id: config.chain_id,
        contract: config.contract,
        from_block: config.from_block,
        next,
        messages,
    })
}

/// The log through a node's public listener, applied as a consumer applies it: each message
/// at its latest origin, with its inclusion and state now.
pub(super) async fn from_node(url: &str) -> Result<Holdings, CommandError> {
    let client = jsonrpsee::http_client::HttpClient::builder()
        .max_response_size(ferry_rpc_api::MAX_CLIENT_RESPONSE_BYTES)
        .build(url)
        .map_err(|error| CommandError::Verify(format!("cannot reach {url}: {error}")))?;
    let failed = |error: jsonrpsee::core::ClientError| {
        CommandError::Verify(format!("the node at {url} answered: {error}"))
    };
    let status = client.status().await.map_err(failed)?;
    let mut messages: BTreeMap<Seq, Stored> = BTreeMap::new();
    let mut next_seq = 0;
    loop {
        let page = client.get_messages(next_seq, Some(1_000), None).await.map_err(failed)?;
        if page.entries.is_empty() {
            break;
        }
        next_seq = page.next_seq;
        for entry in page.entries {
            match entry.kind {
                EntryKind::Message => {
                    let stored = Stored {
                        seq: entry.seq,
                        hash: entry.hash,
                        message: entry.l1.message,
                        origin: entry.l1.origin,
                        inclusion: entry.inclusion,
                        lifecycle: entry.lifecycle,
                    };
                    messages.insert(entry.seq, stored);
                }
                EntryKind::Reincluded => {
                    if let Some(stored) = messages.get_mut(&entry.message_seq) {
                        stored.origin = entry.l1.origin;
                    }
                }
                EntryKind::Removed | EntryKind::StateChanged => {}
            }
        }
    }
    // Inclusion and state are the node's now, on every entry: the newest entry read says it.
    let resume = status.checkpoint.unwrap_or(Position::block_start(status.from_block));
    Ok(Holdings {
        chain_id: status.chain_id,
        contract: status.contract,
        from_block: status.from_block,
        next: resume,
        messages: messages.into_values().collect(),
    })
}
