//! ferry's high availability: several nodes form a group on the NATS servers the sink uses;
//! one of them leads and the others stand by, ready to take over within seconds.
//!
//! ```text
//! leader:   L1 -> drain -> store write ──append (expected last seq)──> journal stream
//!                             (commits only once the journal holds it)     │
//!                          -> publisher -> log stream (consumers)           │
//! standby:  journal stream ──ordered consumer──> store.replay(seq) ─────────┘
//!           (same seqs, same entries, same checkpoint; serves reads)
//! ```
//!
//! - **Lease** (`lease.rs`): a key in a JetStream KV bucket whose entries live `--ha.lease`;
//!   taken with a create (only if absent), renewed every third of it with a compare-and-set
//!   on its revision. The revision it was taken at is the leader's term.
//! - **Journal** (`journal.rs`): every store write of the leader is appended, inside its
//!   write transaction, to the group's journal stream with `Nats-Expected-Last-Sequence` equal
//!   to the journal writes the store holds, after the lease is read back as this node's term:
//!   a leader that lost its lease, or whose store is behind, can append nothing, so it
//!   commits nothing (see `ferry_storage::Journal`).
//! - **Follower** (`follower.rs`): a standby replays the journal into its store in order, each
//!   write in one transaction with its sequence; on taking the lease it first replays to the
//!   journal's end, and only then leads.
//! - **Member** (`member.rs`): the task that joins the group and tells the node its role; each
//!   connection to the group is a `Session` (`session.rs`), which takes, renews or loses the
//!   lease and follows or catches up with the journal.

mod config;
mod follower;
mod journal;
mod lease;
mod member;
mod report;
mod session;
#[cfg(test)]
mod tests;

pub use config::{HaConfig, check_group_name};
pub use journal::GroupJournal;
pub use member::{GroupHandle, JoinError, Member, Role};
pub use report::GroupReport;

const LOG_TARGET: &str = "ferry::ha";
