//! `messaging_status` on the wire: the node's state from the store, and the pipeline's live
//! state and counters (kept as plain Rust types in `ferry-messaging`, named for the wire here).

use ferry_messaging::StatusSnapshot;
use ferry_primitives::{Address, BlockRef, Checkpoint, Position, Seq, StateCounts, U256};
use ferry_storage::ReorgRecord;
use serde::{Deserialize, Serialize};

/// The answer of `messaging_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The ferry version.
    pub version: String,
    /// The L1 chain id the database is for.
    pub chain_id: u64,
    /// The messaging contract the database is for.
    pub contract: Address,
    /// The block reading starts at when no checkpoint is stored.
    pub from_block: u64,
    /// The stored checkpoint: the next L1 position the node reads (`null`: the start block).
    pub checkpoint: Checkpoint,
    /// Blocks between the cursor and the safe head still to read.
    pub lag_blocks: Option<u64>,
    /// Messages in the store, canonical and orphaned.
    pub messages_stored: u64,
    /// Stored messages a reorg orphaned and the chain has not included again.
    pub orphaned_messages: u64,
    /// Canonical stored messages by state (`pending`, `cancellationStarted`, `cancelled`,
    /// `consumed`), and `unmatched`: messages the node read lifecycle events of but never
    /// the message itself (sent before the start block).
    pub message_states: StateCounts,
    /// The seqs of the newest of them (at most 100).
    pub orphaned_seqs: Vec<Seq>,
    /// Reorgs recorded since the database was created.
    pub reorgs: u64,
    /// The newest of them.
    pub last_reorg: Option<ReorgEntry>,
    /// The window of canonical headers kept below the checkpoint: a reorg inside it is
    /// healed, a deeper one halts ingestion.
    pub header_window: Option<HeaderWindow>,
    /// The pipeline's live state and counters.
    #[serde(flatten)]
    pub pipeline: PipelineStatus,
}

/// The blocks the header window holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderWindow {
    /// Its lowest block.
    pub from: u64,
    /// Its newest block: the one before the checkpoint.
    pub to: u64,
}

/// One reorg, as `messaging_getReorgs` and `messaging_status` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReorgEntry {
    /// Its id: notices name it in their `reorg` field.
    pub id: u64,
    /// When it was handled, in Unix milliseconds.
    pub time: u64,
    /// `detected` (the node found it), `resolvedByOperator` (a checkpoint move ended a halt) or
    /// `movedOnRescan` (a re-scan found messages elsewhere).
    pub cause: String,
    /// Where reading went on from.
    pub rewind_to: Position,
    /// The newest block still canonical, when the node found one.
    pub common_ancestor: Option<BlockRef>,
    /// The newest block scanned before it.
    pub old_tip: Option<BlockRef>,
    /// Messages it orphaned.
    pub orphaned: u64,
    /// The seq of its first removal notice.
    pub first_notice_seq: Option<Seq>,
}

impl ReorgEntry {
    /// The wire form of reorg `id`.
    pub fn new(id: u64, record: ReorgRecord) -> Self {
        Self {
            id,
            time: record.at_millis,
            cause: record.cause.name().to_owned(),
            rewind_to: record.rewind_to,
            common_ancestor: record.common_ancestor,
            old_tip: record.old_tip,
            orphaned: record.orphaned,
            first_notice_seq: record.first_notice,
        }
    }
}

/// What the message stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// The drain task is not running.
    Stopped,
    /// Waiting for the L1 provider to answer at start: what is stored is served.
    Connecting,
    /// Caught up: waiting for a new L1 head.
    Idle,
    /// Asking the provider for its heads.
    CheckingHead,
    /// Fetching logs and committing them.
    Gathering,
    /// Halted by a deep reorg until an operator moves the checkpoint.
    Halted,
}

impl From<ferry_messaging::Phase> for Phase {
    fn from(phase: ferry_messaging::Phase) -> Self {
        use ferry_messaging::Phase as Live;
        match phase {
            Live::Stopped => Self::Stopped,
            Live::Connecting => Self::Connecting,
            Live::Idle => Self::Idle,
            Live::CheckingHead => Self::CheckingHead,
            Live::Gathering => Self::Gathering,
            Live::Halted => Self::Halted,
        }
    }
}

/// Why ingestion is halted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HaltStatus {
    /// What happened, and what the operator can do.
    pub reason: String,
    /// The newest block of the header window that was replaced.
    pub replaced_block: u64,
    /// The common ancestor, when one was found (below a finalized block).
    pub common_ancestor: Option<u64>,
    /// The provider's finalized block then.
    pub finalized: Option<u64>,
    /// When, in Unix milliseconds.
    pub since: u64,
}

/// A run of nonces missing between stored ones: `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceGap {
    /// The first missing nonce.
    pub first: U256,
    /// The last missing nonce.
    pub last: U256,
}

/// The L1 provider's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamStatus {
    /// `false` while the last request failed (and is being retried).
    pub healthy: bool,
    /// When the retry in progress will be sent, in Unix milliseconds.
    pub backing_off_until: Option<u64>,
    /// The last error the provider gave.
    pub last_error: Option<String>,
    /// When it gave it, in Unix milliseconds.
    pub last_error_at: Option<u64>,
    /// Failed requests since the node started.
    pub errors: u64,
}

/// The pipeline's live state and counters (`ferry_messaging::StatusSnapshot` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    /// What the stream is doing.
    pub phase: Phase,
    /// The newest L1 block seen.
    pub l1_head: Option<u64>,
    /// The newest L1 block the node may read.
    pub safe_head: Option<u64>,
    /// The provider's `safe` block.
    pub l1_safe: Option<u64>,
    /// The provider's `finalized` block.
    pub l1_finalized: Option<u64>,
    /// The in-memory cursor: the next position the stream reads.
    pub cursor: Option<Position>,
    /// The seq of the newest entry of the log.
    pub last_seq: Option<Seq>,
    /// Messages stored since the node started.
    pub stored_since_start: u64,
    /// Messages found again and skipped since the node started.
    pub duplicates_skipped: u64,
    /// Undecodable logs skipped since the node started.
    pub malformed_logs: u64,
    /// Reorgs detected since the node started.
    pub reorgs_detected: u64,
    /// Messages a reorg orphaned since the node started.
    pub orphaned_since_start: u64,
    /// Orphaned messages found again since the node started.
    pub reincluded_since_start: u64,
    /// Set while ingestion is halted.
    pub halted: Option<HaltStatus>,
    /// Rewinds applied since the node started.
    pub rewinds: u64,
    /// Failed commits since the node started (each one retried).
    pub storage_errors: u64,
    /// The lowest stored nonce.
    pub lowest_nonce: Option<U256>,
    /// The highest stored nonce.
    pub highest_nonce: Option<U256>,
    /// Runs of nonces missing between the lowest and highest (the first 100).
    pub nonce_gaps: Vec<NonceGap>,
    /// How many nonces are missing in all.
    pub missing_nonces: U256,
    /// The L1 provider.
    pub upstream: UpstreamStatus,
    /// JSON-RPC calls made to the L1 provider since the node started (what it bills).
    pub l1_requests: u64,
    /// Times the header window started again since the node started: what it kept ended
    /// below its floor (the node fell behind further than the window, or an operator moved
    /// the checkpoint beyond it).
    pub window_restarts: u64,
    /// The last of them.
    pub last_window_restart: Option<WindowRestartStatus>,
    /// The NATS JetStream sink, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkStatus>,
}

/// A restart of the header window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRestartStatus {
    /// The newest block the window kept before.
    pub previous_tip: u64,
    /// The block it started again at.
    pub first: u64,
    /// When, in Unix milliseconds.
    pub time: u64,
}

/// The distributed sink's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    /// The JetStream stream.
    pub stream: String,
    /// Whether the stream was reachable at the last attempt.
    pub connected: bool,
    /// The newest seq of the log in the stream.
    pub published_seq: Option<Seq>,
    /// Entries stored but not in the stream yet.
    pub lag_seq: u64,
    /// Another ferry owns the stream: nothing is published.
    pub fenced: bool,
    /// The last error, while the sink is failing.
    pub last_error: Option<String>,
}

impl From<StatusSnapshot> for PipelineStatus {
    fn from(live: StatusSnapshot) -> Self {
        Self {
            phase: live.phase.into(),
            l1_head: live.l1_head,
            safe_head: live.safe_head,
            l1_safe: live.l1_safe,
            l1_finalized: live.l1_finalized,
            cursor: live.cursor,
            last_seq: live.last_seq,
            stored_since_start: live.stored_since_start,
            duplicates_skipped: live.duplicates_skipped,
            malformed_logs: live.malformed_logs,
            reorgs_detected: live.reorgs_detected,
            orphaned_since_start: live.orphaned_since_start,
            reincluded_since_start: live.reincluded_since_start,
            halted: live.halted.map(|halt| HaltStatus {
                reason: halt.reason,
                replaced_block: halt.replaced_block,
                common_ancestor: halt.common_ancestor,
                finalized: halt.finalized,
                since: halt.since,
            }),
            rewinds: live.rewinds,
            storage_errors: live.storage_errors,
            lowest_nonce: live.lowest_nonce,
            highest_nonce: live.highest_nonce,
            nonce_gaps: live
                .nonce_gaps
                .into_iter()
                .map(|gap| NonceGap { first: gap.first, last: gap.last })
                .collect(),
            missing_nonces: live.missing_nonces,
            upstream: UpstreamStatus {
                healthy: live.upstream.healthy,
                backing_off_until: live.upstream.backing_off_until,
                last_error: live.upstream.last_error,
                last_error_at: live.upstream.last_error_at,
                errors: live.upstream.errors,
            },
            l1_requests: live.l1_requests,
            window_restarts: live.window_restarts,
            last_window_restart: live.last_window_restart.map(|restart| WindowRestartStatus {
                previous_tip: restart.previous_tip,
                first: restart.first,
                time: restart.at,
            }),
            sink: live.sink.map(|sink| SinkStatus {
                stream: sink.stream,
                connected: sink.connected,
                published_seq: sink.published_seq,
                lag_seq: sink.lag_seq,
                fenced: sink.fenced,
                last_error: sink.last_error,
            }),
        }
    }
}
