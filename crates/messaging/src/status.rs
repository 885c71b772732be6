//! The pipeline's live state and counters, shared by every task and read by the status RPC,
//! `/ready` and the metrics. What a snapshot of it holds is plain data in `ferry-primitives`
//! (`StatusSnapshot`), the same type on the wire.

use crate::{Heads, MalformedLog, NonceTracker, halt};
use alloy::primitives::U256;
use ferry_primitives::{
    EndpointSnapshot, HaSnapshot, Halt, HaltCause, Phase, Position, Seq, SinkSnapshot,
    StatusSnapshot, UpstreamSnapshot, WindowRestartNote,
};
use ferry_storage::{CommitSummary, FinalityTags, ReorgSummary, Store};
use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::watch;
use tracing::{error, warn};

const LOG_TARGET: &str = "ferry::messaging::status";

/// How many nonce gaps a snapshot lists (the count of missing nonces covers all of them).
const NONCE_GAPS_LISTED: usize = 100;

/// The pipeline's live state and counters, shared by the stream, the drain task, the collector
/// and the controller, and read by the status RPC. Every counter here is also a metric.
#[derive(Debug)]
pub struct Status {
    phase: Mutex<Phase>,
    heads: watch::Sender<Option<Heads>>,
    cursor: Mutex<Option<Position>>,
    last_seq: watch::Sender<Option<Seq>>,
    /// Bumped by every commit and reorg: what moved the heads consumers waiting for finality
    /// are told by.
    writes: watch::Sender<u64>,
    nonces: Mutex<NonceTracker>,
    halted: Mutex<Option<Halt>>,
    /// Set while the L1 endpoints keep disagreeing (quorum): nothing commits, and the stream
    /// goes on asking; cleared by the next answer a quorum gives.
    disagreeing: Mutex<Disagreements>,
    endpoints: Mutex<Vec<EndpointSnapshot>>,
    answers_refused: AtomicU64,
    upstream: Mutex<Upstream>,
    messages_stored: AtomicU64,
    duplicates_skipped: AtomicU64,
    reincluded: AtomicU64,
    orphaned: AtomicU64,
    malformed_logs: AtomicU64,
    reorgs_detected: AtomicU64,
    rewinds: AtomicU64,
    storage_errors: AtomicU64,
    l1_requests: AtomicU64,
    window_restarts: AtomicU64,
    last_window_restart: Mutex<Option<WindowRestartNote>>,
    /// The distributed sink, when one is configured.
    sink: Mutex<Option<SinkSnapshot>>,
    /// The high-availability group, when the node is a member of one.
    ha: Mutex<Option<HaSnapshot>>,
}

/// The endpoints' disagreements: how many, how many in a row, and the halt past the limit.
#[derive(Debug)]
struct Disagreements {
    total: u64,
    in_a_row: u32,
    limit: u32,
    halt: Option<Halt>,
}

impl Default for Disagreements {
    fn default() -> Self {
        Self { total: 0, in_a_row: 0, limit: 10, halt: None }
    }
}

#[derive(Debug, Default)]
struct Upstream {
    failing: bool,
    backing_off_until: Option<SystemTime>,
    last_error: Option<(String, SystemTime)>,
    errors: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind, still usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

impl Status {
    /// Status for a store: the last seq and the stored nonces are read from it.
    pub fn load(store: &Store) -> ferry_storage::Result<Self> {
        let status = Self::new();
        status.restore(store)?;
        Ok(status)
    }

    /// Status with nothing known yet, for a node whose store is not open yet;
    /// [`Status::restore`] fills in what the store holds. Not a `Default`: "nothing known
    /// yet" is a state the node passes through, not a value to fall back on.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            phase: Mutex::default(),
            heads: watch::Sender::new(None),
            cursor: Mutex::default(),
            last_seq: watch::Sender::new(None),
            writes: watch::Sender::new(0),
            nonces: Mutex::default(),
            halted: Mutex::default(),
            disagreeing: Mutex::default(),
            endpoints: Mutex::default(),
            answers_refused: AtomicU64::default(),
            upstream: Mutex::default(),
            messages_stored: AtomicU64::default(),
            duplicates_skipped: AtomicU64::default(),
            reincluded: AtomicU64::default(),
            orphaned: AtomicU64::default(),
            malformed_logs: AtomicU64::default(),
            reorgs_detected: AtomicU64::default(),
            rewinds: AtomicU64::default(),
            storage_errors: AtomicU64::default(),
            l1_requests: AtomicU64::default(),
            window_restarts: AtomicU64::default(),
            last_window_restart: Mutex::default(),
            sink: Mutex::default(),
            ha: Mutex::default(),
        }
    }

    /// Updates what the sink reports (and starts reporting it, the first time).
    pub fn update_sink(&self, update: impl FnOnce(&mut SinkSnapshot)) {
        let mut sink = lock(&self.sink);
        let state = sink.get_or_insert_with(SinkSnapshot::default);
        update(state);
        let lag = self.sink_lag(state);
        metrics::gauge!("ferry_sink_lag_seq").set(lag as f64);
        metrics::gauge!("ferry_sink_up").set(if state.connected && !state.fenced {
            1.0
        } else {
            0.0
        });
    }

    /// Updates what the group membership reports (and starts reporting it, the first time).
    pub fn update_ha(&self, update: impl FnOnce(&mut HaSnapshot)) {
        let mut ha = lock(&self.ha);
        let state = ha.get_or_insert_with(HaSnapshot::default);
        update(state);
        metrics::gauge!("ferry_ha_is_leader")
            .set(if state.role == ferry_primitives::HaRole::Leader { 1.0 } else { 0.0 });
        metrics::gauge!("ferry_ha_term").set(state.term.unwrap_or(0) as f64);
        metrics::gauge!("ferry_ha_journal_applied").set(state.journal_applied as f64);
    }

    /// The group membership's state; `None` outside a group.
    pub fn ha(&self) -> Option<HaSnapshot> {
        lock(&self.ha).clone()
    }

    /// Takes what a standby replayed from the group's journal into `store`: the last seq (and
    /// so the consumers waiting on it), the nonces, a halt, as after a commit.
    pub fn record_replicated(&self, store: &Store) -> ferry_storage::Result<()> {
        self.restore(store)?;
        self.writes.send_modify(|writes| *writes += 1);
        Ok(())
    }

    /// The sink's state, with its lag behind the log now; `None` without a sink.
    pub fn sink(&self) -> Option<SinkSnapshot> {
        let sink = lock(&self.sink).clone()?;
        Some(SinkSnapshot { lag_seq: self.sink_lag(&sink), ..sink })
    }

    fn sink_lag(&self, sink: &SinkSnapshot) -> u64 {
        let stored = self.last_seq.borrow().map_or(0, |seq| seq.0 + 1);
        let published = sink.published_seq.map_or(0, |seq| seq.0 + 1);
        stored.saturating_sub(published)
    }

    /// Reads the last seq, the stored nonces and a halt from `store`.
    pub fn restore(&self, store: &Store) -> ferry_storage::Result<()> {
        let last_seq = store.last_seq()?;
        *lock(&self.nonces) = NonceTracker::from_runs(store.stored_nonce_runs()?);
        self.last_seq.send_replace(last_seq);
        self.set_halted(store.halt()?.as_ref().map(halt::status_of));
        Ok(())
    }

    /// The newest seq of the log, updated after every commit and reorg: consumers wait on it.
    pub fn subscribe_last_seq(&self) -> watch::Receiver<Option<Seq>> {
        self.last_seq.subscribe()
    }

    /// Changes with every commit and reorg, empty ones included: consumers waiting for
    /// finality wait on it, since every commit may move the heads they are told by.
    pub fn subscribe_writes(&self) -> watch::Receiver<u64> {
        self.writes.subscribe()
    }

    /// The heads last seen.
    pub fn heads(&self) -> Option<Heads> {
        *self.heads.borrow()
    }

    /// The provider's safe and finalized blocks as last seen, for a commit to check.
    pub fn finality_tags(&self) -> FinalityTags {
        self.heads().map(|heads| heads.tags()).unwrap_or_default()
    }

    /// Why ingestion is halted, if it is.
    pub fn halted(&self) -> Option<Halt> {
        lock(&self.halted).clone()
    }

    /// A copy for reporting.
    pub fn snapshot(&self) -> StatusSnapshot {
        let heads = self.heads();
        let nonces = lock(&self.nonces);
        let range = nonces.range();
        let mut gaps = nonces.gaps();
        let missing_nonces = nonces.missing();
        drop(nonces);
        gaps.truncate(NONCE_GAPS_LISTED);
        let upstream = lock(&self.upstream);
        let upstream_snapshot = UpstreamSnapshot {
            healthy: !upstream.failing,
            backing_off_until: upstream.backing_off_until.map(unix_millis),
            last_error: upstream.last_error.as_ref().map(|(error, _)| error.clone()),
            last_error_at: upstream.last_error.as_ref().map(|(_, at)| unix_millis(*at)),
            errors: upstream.errors,
        };
        drop(upstream);
        StatusSnapshot {
            phase: if lock(&self.disagreeing).halt.is_some() {
                Phase::Halted
            } else {
                *lock(&self.phase)
            },
            l1_head: heads.map(|heads| heads.latest),
            safe_head: heads.and_then(|heads| heads.safe),
            l1_safe: heads.and_then(|heads| heads.l1_safe).map(|safe| safe.number),
            l1_finalized: heads.and_then(|heads| heads.finalized).map(|finalized| finalized.number),
            cursor: *lock(&self.cursor),
            last_seq: *self.last_seq.borrow(),
            stored_since_start: self.messages_stored.load(Ordering::Relaxed),
            duplicates_skipped: self.duplicates_skipped.load(Ordering::Relaxed),
            malformed_logs: self.malformed_logs.load(Ordering::Relaxed),
            reorgs_detected: self.reorgs_detected.load(Ordering::Relaxed),
            orphaned_since_start: self.orphaned.load(Ordering::Relaxed),
            reincluded_since_start: self.reincluded.load(Ordering::Relaxed),
            halted: self.halted().or_else(|| lock(&self.disagreeing).halt.clone()),
            rewinds: self.rewinds.load(Ordering::Relaxed),
            storage_errors: self.storage_errors.load(Ordering::Relaxed),
            lowest_nonce: range.map(|(lowest, _)| lowest),
            highest_nonce: range.map(|(_, highest)| highest),
            nonce_gaps: gaps,
            missing_nonces,
            upstream: upstream_snapshot,
            upstreams: lock(&self.endpoints).clone(),
            l1_disagreements: lock(&self.disagreeing).total,
            l1_answers_refused: self.answers_refused.load(Ordering::Relaxed),
            l1_requests: self.l1_requests.load(Ordering::Relaxed),
            window_restarts: self.window_restarts.load(Ordering::Relaxed),
            last_window_restart: *lock(&self.last_window_restart),
            sink: self.sink(),
            ha: self.ha(),
        }
    }

    /// Marks the provider as not reached yet (at start, before it has answered): status
    /// shows the upstream unhealthy, with `reason`, until its first answer.
    pub fn set_connecting(&self, reason: String) {
        self.set_phase(Phase::Connecting);
        let mut upstream = lock(&self.upstream);
        upstream.failing = true;
        upstream.last_error = Some((reason, SystemTime::now()));
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        *lock(&self.phase) = phase;
    }

    pub(crate) fn set_heads(&self, heads: Heads) {
        self.heads.send_replace(Some(heads));
        metrics::gauge!("ferry_l1_head").set(heads.latest as f64);
        if let Some(safe) = heads.safe {
            metrics::gauge!("ferry_l1_safe_head").set(safe as f64);
        }
        if let Some(finalized) = heads.finalized {
            metrics::gauge!("ferry_l1_finalized_head").set(finalized.number as f64);
        }
        self.update_lag();
    }

    pub(crate) fn set_cursor(&self, cursor: Option<Position>) {
        *lock(&self.cursor) = cursor;
        if let Some(cursor) = cursor {
            metrics::gauge!("ferry_checkpoint_block").set(cursor.block as f64);
        }
        self.update_lag();
    }

    fn update_lag(&self) {
        let cursor = *lock(&self.cursor);
        let safe = self.heads().and_then(|heads| heads.safe);
        if let (Some(cursor), Some(safe)) = (cursor, safe) {
            metrics::gauge!("ferry_lag_blocks").set(cursor.blocks_behind(safe) as f64);
        }
    }

    /// Records a committed batch: counters, the last seq for consumers, nonces, and the
    /// malformed logs it moved past (invariant: no silent drop; logged, counted, never silent).
    pub(crate) fn record_commit(
        &self,
        summary: &CommitSummary,
        nonces: impl IntoIterator<Item = U256>,
        malformed: &[MalformedLog],
    ) {
        self.writes.send_modify(|writes| *writes += 1);
        self.messages_stored.fetch_add(summary.stored, Ordering::Relaxed);
        self.duplicates_skipped.fetch_add(summary.skipped, Ordering::Relaxed);
        self.reincluded.fetch_add(summary.reincluded, Ordering::Relaxed);
        metrics::counter!("ferry_messages_stored_total").increment(summary.stored);
        metrics::counter!("ferry_duplicates_skipped_total").increment(summary.skipped);
        metrics::counter!("ferry_messages_reincluded_total").increment(summary.reincluded);
        for log in malformed {
            error!(target: LOG_TARGET, position = %log.position,
                transaction = ?log.transaction_hash, reason = %log.reason,
                "Skipped a LogMessageToL2 log that cannot be decoded");
        }
        self.malformed_logs.fetch_add(malformed.len() as u64, Ordering::Relaxed);
        metrics::counter!("ferry_malformed_logs_total").increment(malformed.len() as u64);

        if summary.entries > 0 {
            let mut tracker = lock(&self.nonces);
            let before = tracker.gaps();
            for nonce in nonces {
                tracker.insert(nonce);
            }
            let after = tracker.gaps();
            metrics::gauge!("ferry_missing_nonces").set(f64::from(tracker.missing()));
            drop(tracker);
            for gap in after.iter().filter(|gap| !before.contains(gap)) {
                warn!(target: LOG_TARGET, first = %gap.first, last = %gap.last,
                    "Nonces missing between stored messages: messages were missed upstream");
            }
            self.last_seq.send_replace(summary.last_seq());
        }
    }

    /// Records that the header window started again.
    pub(crate) fn record_window_restart(&self, restart: ferry_storage::WindowRestart) {
        self.window_restarts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ferry_header_window_restarts_total").increment(1);
        *lock(&self.last_window_restart) = Some(WindowRestartNote {
            previous_tip: restart.previous_tip,
            first: restart.first,
            time: unix_millis(SystemTime::now()),
        });
    }

    pub(crate) fn record_rewind(&self) {
        self.rewinds.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ferry_rewinds_total").increment(1);
    }

    /// Records a reorg the store wrote: counters, the nonces it released, and the last seq
    /// for consumers (its notices are entries of the log).
    pub(crate) fn record_reorg(&self, reorg: &ReorgSummary) {
        self.writes.send_modify(|writes| *writes += 1);
        self.reorgs_detected.fetch_add(1, Ordering::Relaxed);
        self.orphaned.fetch_add(reorg.orphaned.len() as u64, Ordering::Relaxed);
        metrics::counter!("ferry_reorgs_total").increment(1);
        metrics::counter!("ferry_messages_orphaned_total").increment(reorg.orphaned.len() as u64);
        if let Some(ancestor) = reorg.record.common_ancestor
            && let Some(tip) = reorg.record.old_tip
        {
            metrics::histogram!("ferry_reorg_depth_blocks")
                .record(tip.number.saturating_sub(ancestor.number) as f64);
        }
        let mut tracker = lock(&self.nonces);
        for nonce in &reorg.released_nonces {
            tracker.remove(*nonce);
        }
        metrics::gauge!("ferry_missing_nonces").set(f64::from(tracker.missing()));
        drop(tracker);
        if reorg.last_seq.is_some() {
            self.last_seq.send_replace(reorg.last_seq);
        }
    }

    /// Sets or clears the halt (a deep reorg, until an operator moves the checkpoint).
    pub(crate) fn set_halted(&self, halt: Option<Halt>) {
        *lock(&self.halted) = halt;
        self.publish_halted();
    }

    fn publish_halted(&self) {
        let halted = lock(&self.halted).is_some() || lock(&self.disagreeing).halt.is_some();
        metrics::gauge!("ferry_ingestion_halted").set(if halted { 1.0 } else { 0.0 });
    }

    /// After how many disagreements in a row ingestion shows as halted.
    pub(crate) fn set_disagreement_limit(&self, limit: u32) {
        lock(&self.disagreeing).limit = limit.max(1);
    }

    /// Records that the L1 endpoints gave different answers to one request: counted, and
    /// past the limit in a row, shown as a halt with `reason`.
    pub(crate) fn record_disagreement(&self, reason: String) {
        metrics::counter!("ferry_l1_disagreements_total").increment(1);
        let mut disagreeing = lock(&self.disagreeing);
        disagreeing.total += 1;
        disagreeing.in_a_row += 1;
        if disagreeing.in_a_row >= disagreeing.limit && disagreeing.halt.is_none() {
            error!(target: LOG_TARGET, in_a_row = disagreeing.in_a_row, %reason,
                "Ingestion halted: the L1 endpoints keep disagreeing");
            disagreeing.halt = Some(Halt {
                cause: HaltCause::EndpointsDisagree,
                reason: format!(
                    "the L1 endpoints disagreed {} times in a row; nothing is committed from a \
                     minority answer, and reading goes on by itself once enough of them agree; \
                     check the endpoints (messaging_status.upstreams) and remove the one on \
                     another chain; last: {reason}",
                    disagreeing.in_a_row
                ),
                replaced_block: None,
                common_ancestor: None,
                finalized: None,
                since: unix_millis(SystemTime::now()),
            });
            drop(disagreeing);
            self.publish_halted();
        }
    }

    /// Records that a quorum of endpoints agreed: a halt for disagreement ends.
    pub(crate) fn record_agreement(&self) {
        let mut disagreeing = lock(&self.disagreeing);
        disagreeing.in_a_row = 0;
        if disagreeing.halt.take().is_some() {
            warn!(target: LOG_TARGET, "The L1 endpoints agree again; reading goes on");
            drop(disagreeing);
            self.publish_halted();
        }
    }

    /// Records that an endpoint contradicted the others and the header window (failover):
    /// counted with the disagreements, never a halt (the next endpoint answers).
    pub(crate) fn record_contradiction(&self) {
        metrics::counter!("ferry_l1_disagreements_total").increment(1);
        lock(&self.disagreeing).total += 1;
    }

    /// Records an answer refused because it contradicts the block it claims.
    pub(crate) fn record_answer_refused(&self) {
        self.answers_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// What status shows of each L1 endpoint.
    pub(crate) fn set_endpoints(&self, endpoints: Vec<EndpointSnapshot>) {
        *lock(&self.endpoints) = endpoints;
    }

    pub(crate) fn record_storage_error(&self) {
        self.storage_errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ferry_storage_errors_total").increment(1);
    }

    /// Records a failed L1 request that will be retried after `delay`.
    pub(crate) fn record_upstream_backoff(&self, error: String, delay: Duration) {
        let now = SystemTime::now();
        let mut upstream = lock(&self.upstream);
        upstream.failing = true;
        upstream.backing_off_until = Some(now + delay);
        upstream.last_error = Some((error, now));
        upstream.errors += 1;
        metrics::counter!("ferry_upstream_errors_total").increment(1);
        metrics::gauge!("ferry_upstream_up").set(0.0);
        metrics::gauge!("ferry_upstream_backoff_seconds").set(delay.as_secs_f64());
    }

    /// Records a failed L1 request that will not be retried.
    pub(crate) fn record_upstream_failure(&self, error: String) {
        let mut upstream = lock(&self.upstream);
        upstream.failing = true;
        upstream.backing_off_until = None;
        upstream.last_error = Some((error, SystemTime::now()));
        upstream.errors += 1;
        metrics::counter!("ferry_upstream_errors_total").increment(1);
        metrics::gauge!("ferry_upstream_up").set(0.0);
        metrics::gauge!("ferry_upstream_backoff_seconds").set(0.0);
    }

    /// Counts JSON-RPC calls sent to the provider.
    pub(crate) fn record_upstream_calls(&self, calls: u64) {
        self.l1_requests.fetch_add(calls, Ordering::Relaxed);
    }

    /// Records a successful L1 request.
    pub(crate) fn record_upstream_success(&self) {
        let mut upstream = lock(&self.upstream);
        upstream.failing = false;
        upstream.backing_off_until = None;
        metrics::gauge!("ferry_upstream_up").set(1.0);
        metrics::gauge!("ferry_upstream_backoff_seconds").set(0.0);
    }
}
