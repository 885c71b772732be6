//! The group's journal: a JetStream stream of the leader's store writes, in the order they
//! committed, and the [`ferry_storage::Journal`] a member's store appends through.

use crate::{HaConfig, lease::Lease};
use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        context::{GetStreamErrorKind, PublishErrorKind},
        message::PublishMessage,
        stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream},
    },
};
use bytes::Bytes;
use ferry_primitives::HaLeader;
use ferry_storage::{JournalEntry, JournalRefusal, StoreConfig};
use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::{runtime::Handle, sync::Notify};
use tracing::warn;

/// The longest a write of under a megabyte waits for the journal (its transaction is open
/// meanwhile); a second more per megabyte beyond.
const APPEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The header naming the term a write was appended under.
const TERM: &str = "Ferry-Term";
/// The header naming the member that appended it.
const NODE: &str = "Ferry-Node";
/// The header saying which part of its write a message is: `1/1` for a write in one message,
/// `i/n` for a write cut to the servers' largest message.
pub(crate) const PART: &str = "Ferry-Part";

/// Room left in each message for its headers and the protocol's framing.
const HEADROOM: usize = 4_096;

/// What the leader appends with, while it leads.
#[derive(Debug, Clone)]
pub(crate) struct Leading {
    pub(crate) term: u64,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) lease: Lease,
    /// Where the journal ended when this member caught up with it before leading: anything
    /// after the last write it applied, up to here, is a write abandoned half-way, which the
    /// first append goes after.
    pub(crate) caught_up_to: u64,
}

/// `jetstream` as appends use it: an append's acknowledgement may take as long as the whole
/// append is given (a large write on a busy cluster).
pub(crate) fn appending(jetstream: &jetstream::Context) -> jetstream::Context {
    let mut appending = jetstream.clone();
    appending.set_timeout(APPEND_TIMEOUT);
    appending
}

/// What the member task and the store's journal share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) group: String,
    pub(crate) node: String,
    pub(crate) subject: String,
    /// Set while this member leads; the store's writes are refused otherwise.
    leading: Mutex<Option<Leading>>,
    /// Who leads, as this member last saw it: what a refused write names.
    known_leader: Mutex<Option<HaLeader>>,
    /// Woken when the journal refused a write because it holds writes this store lacks, or
    /// because the lease names someone else: the member must step down or catch up.
    pub(crate) fault: Notify,
    /// Set once the node can ingest (L1 answered): only then may this member take the lease.
    pub(crate) eligible: std::sync::atomic::AtomicBool,
    runtime: Handle,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: &HaConfig, node: String, runtime: Handle) -> Self {
        Self {
            group: config.group.clone(),
            node,
            subject: config.journal_subject(),
            leading: Mutex::new(None),
            known_leader: Mutex::new(None),
            fault: Notify::new(),
            eligible: std::sync::atomic::AtomicBool::new(false),
            runtime,
        }
    }

    /// From now on the store's writes are appended under `leading`'s term (`None`: refused).
    pub(crate) fn set_leading(&self, leading: Option<Leading>) {
        *lock(&self.leading) = leading;
    }

    pub(crate) fn set_known_leader(&self, leader: Option<HaLeader>) {
        *lock(&self.known_leader) = leader;
    }

    pub(crate) fn known_leader(&self) -> Option<HaLeader> {
        lock(&self.known_leader).clone()
    }

    fn not_leader(&self) -> JournalRefusal {
        JournalRefusal::NotLeader { group: self.group.clone(), leader: self.known_leader() }
    }
}

/// The store's journal in a group: appends only while this member leads, under its term.
#[derive(Debug, Clone)]
pub struct GroupJournal {
    pub(crate) shared: Arc<Shared>,
}

impl ferry_storage::Journal for GroupJournal {
    fn check_writable(&self) -> Result<(), JournalRefusal> {
        match *lock(&self.shared.leading) {
            Some(_) => Ok(()),
            None => Err(self.shared.not_leader()),
        }
    }

    fn append(&self, after: u64, entry: &JournalEntry) -> Result<u64, JournalRefusal> {
        let shared = &self.shared;
        let Some(leading) = lock(&shared.leading).clone() else {
            return Err(shared.not_leader());
        };
        let body = serde_json::to_vec(entry)
            .map_err(|error| JournalRefusal::Unavailable(format!("cannot encode: {error}")))?;
        let within = APPEND_TIMEOUT + Duration::from_secs((body.len() >> 20) as u64);
        // The store calls this on the blocking thread that runs its write transaction.
        let appended = shared.runtime.block_on(tokio::time::timeout(
            within,
            append(shared, &leading, after, Bytes::from(body)),
        ));
        let refusal = match appended {
            Ok(Ok(seq)) => return Ok(seq),
            Ok(Err(refusal)) => refusal,
            Err(_) => JournalRefusal::Unavailable(format!("no answer within {within:?}")),
        };
        if !matches!(refusal, JournalRefusal::Unavailable(_)) {
            shared.fault.notify_one();
        }
        warn!(target: crate::LOG_TARGET, %refusal, after, write = entry.write.name(),
            "The journal refused a write; nothing was committed");
        metrics::counter!("ferry_ha_journal_refusals_total").increment(1);
        Err(refusal)
    }
}

/// Appends `body` after write `after` (or after the writes abandoned half-way that followed
/// it), once the lease is read back as this member's term: in as many messages as the
/// servers' largest message needs, each expecting the one before. The sequence of the last.
async fn append(
    shared: &Shared,
    leading: &Leading,
    after: u64,
    body: Bytes,
) -> Result<u64, JournalRefusal> {
    let unavailable = JournalRefusal::Unavailable;
    match leading.lease.is_held(leading.term).await.map_err(unavailable)? {
        Ok(()) => {}
        Err(holder) => {
            shared.set_leading(None);
            shared.set_known_leader(holder);
            return Err(shared.not_leader());
        }
    }
    let expected = after.max(leading.caught_up_to);
    let largest = leading.jetstream.client().server_info().max_payload;
    let part_size = largest.saturating_sub(HEADROOM).max(HEADROOM);
    let parts = body.len().div_ceil(part_size).max(1);
    let mut acks = Vec::with_capacity(parts);
    for part in 0..parts {
        let start = part * part_size;
        let payload = body.slice(start..(start + part_size).min(body.len()));
        let mut headers = HeaderMap::new();
        headers.insert(TERM, leading.term.to_string().as_str());
        headers.insert(NODE, shared.node.as_str());
        headers.insert(PART, format!("{}/{parts}", part + 1).as_str());
        let message = PublishMessage::build()
            .payload(payload)
            .headers(headers)
            .expected_last_sequence(expected + part as u64);
        let ack = leading
            .jetstream
            .send_publish(shared.subject.clone(), message)
            .await
            .map_err(|error| unavailable(format!("cannot append: {error}")))?;
        acks.push(ack);
    }
    let mut last = expected;
    for ack in acks {
        last = match ack.await {
            Ok(ack) => ack.sequence,
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                return Err(JournalRefusal::Behind { after: expected, last: 0 });
            }
            Err(error) => {
                return Err(unavailable(format!("the append was not acknowledged: {error}")));
            }
        };
    }
    Ok(last)
}

/// The group's journal stream, created if missing; refused when it journals another chain,
/// contract or start block than this store's (its writes would not apply the same here).
pub(crate) async fn open_stream(
    jetstream: &jetstream::Context,
    config: &HaConfig,
    store: StoreConfig,
    replicas: usize,
) -> Result<Stream, String> {
    let name = config.journal_stream();
    let identity = format!(
        "ferry HA group {:?} journal: chain {} contract {} from block {}",
        config.group, store.chain_id, store.contract, store.from_block
    );
    let stream = match jetstream.get_stream(&name).await {
        Ok(stream) => stream,
        Err(error)
            if matches!(error.kind(), GetStreamErrorKind::JetStream(reply)
            if reply.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            jetstream
                .create_stream(Config {
                    name: name.clone(),
                    description: Some(identity.clone()),
                    subjects: vec![config.journal_subject()],
                    storage: StorageType::File,
                    num_replicas: replicas,
                    retention: RetentionPolicy::Limits,
                    discard: DiscardPolicy::New,
                    max_messages: -1,
                    max_bytes: -1,
                    deny_delete: true,
                    deny_purge: true,
                    allow_direct: true,
                    ..Config::default()
                })
                .await
                .map_err(|error| format!("cannot create the journal stream {name}: {error}"))?
        }
        Err(error) => return Err(format!("cannot read the journal stream {name}: {error}")),
    };
    let found = stream.cached_info().config.description.clone().unwrap_or_default();
    if found != identity {
        return Err(format!(
            "the journal stream {name} is {found:?}, but this node is {identity:?}: every member \
             of a group must read the same chain and contract from the same start block"
        ));
    }
    Ok(stream)
}
