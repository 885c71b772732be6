//! What a node reports about its ingestion: the pipeline's live state and counters, as the
//! node keeps them and as `messaging_status` carries them on the wire (one type for both).

use crate::{Position, Seq};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// What the message stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// The drain task is not running.
    #[default]
    Stopped,
    /// Waiting for the L1 provider to answer at start: what is stored is served, nothing new
    /// is read yet.
    Connecting,
    /// Caught up: waiting for a new L1 head.
    Idle,
    /// Asking the provider for its heads.
    CheckingHead,
    /// Fetching logs and committing them.
    Gathering,
    /// Halted by a reorg deeper than the header window or below a finalized block, until an
    /// operator moves the checkpoint.
    Halted,
}

/// A consistent-enough copy of the node's status for reporting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusSnapshot {
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
    /// The seq of the newest stored message.
    pub last_seq: Option<Seq>,
    /// Messages stored since the node started.
    pub stored_since_start: u64,
    /// Messages found again (after a rewind or reorg) and skipped, since the node started.
    pub duplicates_skipped: u64,
    /// Undecodable message logs skipped since the node started.
    pub malformed_logs: u64,
    /// Reorgs detected below the checkpoint since the node started.
    pub reorgs_detected: u64,
    /// Messages a reorg orphaned since the node started.
    pub orphaned_since_start: u64,
    /// Orphaned messages found again on the canonical chain since the node started.
    pub reincluded_since_start: u64,
    /// Set while ingestion is halted by a reorg deeper than the header window or below a
    /// finalized block, until an operator moves the checkpoint.
    pub halted: Option<Halt>,
    /// Rewinds applied (operator sets and resets, reorg recoveries) since the node started.
    pub rewinds: u64,
    /// Failed commits since the node started (each one retried).
    pub storage_errors: u64,
    /// The lowest stored nonce.
    pub lowest_nonce: Option<U256>,
    /// The highest stored nonce.
    pub highest_nonce: Option<U256>,
    /// Runs of nonces missing between the lowest and highest (the first ones).
    pub nonce_gaps: Vec<NonceGap>,
    /// How many nonces are missing in all.
    pub missing_nonces: U256,
    /// The L1 provider, as the requests in flight see it.
    pub upstream: UpstreamSnapshot,
    /// Each L1 endpoint (one, or several in failover or quorum mode).
    pub upstreams: Vec<EndpointSnapshot>,
    /// Requests on which the endpoints gave different answers (quorum mode, or failover
    /// catching an endpoint that contradicts the header window), since the node started.
    pub l1_disagreements: u64,
    /// Answers refused because they contradict the block they claim (a log its block's bloom
    /// cannot hold, receipts whose trie root is not the header's), since the node started.
    pub l1_answers_refused: u64,
    /// JSON-RPC calls made to the L1 provider since the node started (what it bills).
    pub l1_requests: u64,
    /// Times the header window started again since the node started.
    pub window_restarts: u64,
    /// The last of them.
    pub last_window_restart: Option<WindowRestartNote>,
    /// The distributed sink, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkSnapshot>,
    /// The high-availability group, when the node is a member of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaSnapshot>,
}

impl StatusSnapshot {
    /// Blocks between the cursor and the safe head still to read, once both are known.
    pub fn lag_blocks(&self) -> Option<u64> {
        self.cursor.zip(self.safe_head).map(|(cursor, safe)| cursor.blocks_behind(safe))
    }
}

/// Why ingestion is halted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HaltCause {
    /// No block of the header window is on the chain any more.
    ReorgBeyondWindow,
    /// A reorg replaced a block at or below the finalized one.
    ReorgBelowFinalized,
    /// The L1 endpoints kept giving different answers (no quorum, or in failover no majority
    /// behind the active endpoint's newest block): nothing is committed from a minority
    /// answer; ingestion goes on by itself once enough of them agree again.
    EndpointsDisagree,
}

/// Why ingestion is halted, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Halt {
    /// What kind of halt.
    pub cause: HaltCause,
    /// What happened, and what the operator can do.
    pub reason: String,
    /// The newest block of the header window that was replaced (reorgs only).
    pub replaced_block: Option<u64>,
    /// The common ancestor, when one was found (below a finalized block).
    pub common_ancestor: Option<u64>,
    /// The provider's finalized block then.
    pub finalized: Option<u64>,
    /// When, in Unix milliseconds.
    pub since: u64,
}

/// The upstream (L1 provider) as status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSnapshot {
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

/// The distributed sink (NATS JetStream) as status reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkSnapshot {
    /// The stream it publishes to.
    pub stream: String,
    /// Whether the last attempt to reach the stream succeeded.
    pub connected: bool,
    /// The newest seq of the log the stream holds.
    pub published_seq: Option<Seq>,
    /// Entries stored but not in the stream yet (filled in by snapshots).
    pub lag_seq: u64,
    /// Set while another ferry owns the stream: this node publishes nothing.
    pub fenced: bool,
    /// The last error, if the sink is failing.
    pub last_error: Option<String>,
}

/// A member of a high-availability group, as status reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HaSnapshot {
    /// The group (`--ha.group`).
    pub group: String,
    /// This member's id in the group.
    pub node: String,
    /// `leader` (ingests from L1, writes the journal, publishes), `candidate` (took the lease,
    /// catching up with the journal first) or `standby` (replays the journal).
    pub role: HaRole,
    /// The lease's term this member knows: the journal's writer changes with it.
    pub term: Option<u64>,
    /// Who holds the lease, as far as this member knows.
    pub leader: Option<HaLeader>,
    /// Milliseconds since the lease was last renewed, as this member saw it.
    pub lease_age_millis: Option<u64>,
    /// The journal writes this member's store holds.
    pub journal_applied: u64,
    /// The journal writes the group's journal holds, when last read.
    pub journal_last: Option<u64>,
    /// Whether this member reaches the group's NATS servers.
    pub connected: bool,
    /// The last error, while the member is failing.
    pub last_error: Option<String>,
}

/// What a member does in its group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HaRole {
    /// Replays the journal; serves reads; refuses admin writes.
    #[default]
    Standby,
    /// Holds the lease and catches up with the journal before leading.
    Candidate,
    /// Holds the lease: ingests, writes the journal, publishes the log.
    Leader,
}

impl HaRole {
    /// Its name in status and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Candidate => "candidate",
            Self::Leader => "leader",
        }
    }
}

/// The lease holder of a group: where writes go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HaLeader {
    /// Its id in the group.
    pub node: String,
    /// Its admin listener.
    pub admin: String,
    /// Its public listener.
    pub public: String,
    /// Its term.
    pub term: u64,
}

/// The header window started again above what it kept (the node fell behind further than
/// the window, or an operator moved the checkpoint beyond it): reorgs reaching below its new
/// first block halt ingestion instead of healing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRestartNote {
    /// The newest block the window kept before.
    pub previous_tip: u64,
    /// The block it starts again at.
    pub first: u64,
    /// When, in Unix milliseconds.
    pub time: u64,
}

/// A run of nonces that should be stored but is not: `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceGap {
    /// The first missing nonce.
    pub first: U256,
    /// The last missing nonce.
    pub last: U256,
}

/// One L1 endpoint as status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSnapshot {
    /// Its URL, with anything that could be a credential (user info, path, query) hidden.
    pub url: String,
    /// Whether it answers now (failover: the one in use; quorum: all of them).
    pub active: bool,
    /// `false` after a failed request or an answer that contradicted the others, until it
    /// answers well again.
    pub healthy: bool,
    /// Its newest block, as last asked.
    pub head: Option<u64>,
    /// The last error it gave.
    pub last_error: Option<String>,
    /// When, in Unix milliseconds.
    pub last_error_at: Option<u64>,
    /// JSON-RPC calls sent to it since the node started.
    pub requests: u64,
    /// Requests it failed since the node started.
    pub errors: u64,
}
