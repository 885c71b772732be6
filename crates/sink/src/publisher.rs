//! The publisher task: connects, claims the stream (or is fenced out), resumes where the
//! stream stands, and publishes the log from the store in order, in batches acknowledged once,
//! until told to stop; any failure ends the session and a new one starts after a backoff.

use crate::{SinkConfig, SinkReport, config::DUPLICATE_WINDOW, headers};
use async_nats::{
    HeaderMap, HeaderName, header,
    jetstream::{
        self, Context, ErrorCode,
        context::{GetStreamErrorKind, PublishError, PublishErrorKind},
        message::PublishMessage,
        publish::PublishAck,
        stream::{Config, DiscardPolicy, RetentionPolicy, StorageType, Stream},
    },
};
use bytes::Bytes;
use ferry_primitives::{B256, LogEntry, Seq};
use ferry_storage::Store;
use std::time::Duration;
use tokio::{sync::oneshot, task::JoinHandle};
use tracing::{info, warn};

const LOG_TARGET: &str = "ferry::sink";

/// Entries published before the stream's ack of the last is awaited.
const PIPELINE: usize = 256;

/// The first wait after a session ends.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between sessions.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a session must have run to count as healthy (see `run`).
const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Publishes the store's log to a JetStream stream.
#[derive(Debug)]
pub struct Publisher {
    config: SinkConfig,
    store: Store,
    report: SinkReport,
    node: B256,
}

/// The running publisher.
#[derive(Debug)]
pub struct SinkHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl SinkHandle {
    /// Stops publishing (entries not yet in the stream are published after the next start)
    /// and waits for the task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(error) = (&mut self.task).await {
            warn!(target: LOG_TARGET, %error, "The sink task failed");
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum Ended {
    /// Another node owns the stream, or it does not hold this node's log: nothing is
    /// published until an operator sorts it out (checked again now and then).
    Fenced(String),
    /// NATS failed or answered unexpectedly: a new session starts after a backoff.
    Failed(String),
}

impl Publisher {
    /// A publisher of `store`'s log, telling `report` how it stands; its identity (the
    /// fence) is the store's node id.
    pub fn new(
        config: SinkConfig,
        store: Store,
        report: SinkReport,
    ) -> ferry_storage::Result<Self> {
        let node = store.node_id()?;
        Ok(Self { config, store, report, node })
    }

    /// Starts the task.
    pub fn spawn(self) -> SinkHandle {
        let (stop, stopped) = oneshot::channel();
        SinkHandle { stop: Some(stop), task: tokio::spawn(self.run(stopped)) }
    }

    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let stream = self.config.stream.clone();
        self.report.update(|sink| sink.stream = stream);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = tokio::time::Instant::now();
            let ended = tokio::select! {
                biased;
                _ = &mut stop => return,
                ended = self.session() => ended,
            };
            let (fenced, reason) = match ended {
                Ended::Fenced(reason) => (true, reason),
                Ended::Failed(reason) => (false, reason),
            };
            // A session that ran a while was healthy: its end starts the backoff afresh, so
            // that failures far apart (a stream leader moving, days later) wait little.
            if started.elapsed() >= HEALTHY_SESSION {
                backoff = FIRST_BACKOFF;
            }
            warn!(target: LOG_TARGET, stream = %self.config.stream, fenced, %reason, ?backoff,
                "Sink session ended; ingestion goes on, the sink catches up later");
            metrics::counter!("ferry_sink_errors_total").increment(1);
            self.report.update(|sink| {
                sink.connected = false;
                sink.fenced = fenced;
                sink.last_error = Some(reason);
            });
            tokio::select! {
                biased;
                _ = &mut stop => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: claim the stream, resume, publish until something fails.
    async fn session(&self) -> Ended {
        let (jetstream, mut stream) = match self.connect().await {
            Ok(connected) => connected,
            Err(ended) => return ended,
        };
        let mut next = match self.resume(&mut stream).await {
            Ok(next) => next,
            Err(ended) => return ended,
        };
        info!(target: LOG_TARGET, stream = %self.config.stream, next = %next, "Publishing the log");
        self.report.update(|sink| {
            sink.connected = true;
            sink.fenced = false;
            sink.last_error = None;
            sink.published_seq = next.0.checked_sub(1).map(Seq);
        });
        let mut written = self.report.written();
        // Whether the stream's last message was published in this session: resume checked the
        // one before by its content, so the session's first entry expects a sequence only.
        let mut chained = false;
        let ack_each = stream.cached_info().config.num_replicas > 1;
        loop {
            let entries = match self.store.entries_within(next, PIPELINE, 4 << 20) {
                Ok(entries) => entries,
                Err(error) => return Ended::Failed(format!("cannot read the store: {error}")),
            };
            if entries.is_empty() {
                // Caught up: wait for the next commit (or look again in a while), and tell a
                // lost connection even while there is nothing to publish.
                let _ = tokio::time::timeout(Duration::from_secs(1), written.changed()).await;
                if jetstream.client().connection_state()
                    == async_nats::connection::State::Disconnected
                {
                    return Ended::Failed(format!("lost the connection to {}", self.config.url));
                }
                continue;
            }
            let entries: Vec<LogEntry> = entries.into_iter().map(|stored| stored.entry).collect();
            match self.publish(&jetstream, &entries, chained, ack_each).await {
                Ok(published) => {
                    next = published.next();
                    chained = true;
                }
                Err(ended) => return ended,
            }
            self.report.update(|sink| sink.published_seq = next.0.checked_sub(1).map(Seq));
        }
    }

    async fn connect(&self) -> Result<(Context, Stream), Ended> {
        let failed = |what: &str, error: &dyn std::fmt::Display| {
            Ended::Failed(format!("{what} {}: {error}", self.config.url))
        };
        let client = crate::connect(&self.config).await.map_err(Ended::Failed)?;
        let jetstream = jetstream::new(client);
        let stream = match jetstream.get_stream(&self.config.stream).await {
            Ok(stream) => stream,
            Err(error)
                if matches!(error.kind(), GetStreamErrorKind::JetStream(reply)
                    if reply.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
            {
                jetstream
                    .create_stream(self.stream_config())
                    .await
                    .map_err(|error| failed("cannot create the stream on", &error))?
            }
            Err(error) => return Err(failed("cannot read the stream on", &error)),
        };
        let claimed = stream.cached_info().config.description.clone().unwrap_or_default();
        if !claimed.contains(&self.claim_marker()) {
            return Err(Ended::Fenced(format!(
                "stream {} belongs to another ferry ({claimed:?}); this node is {}: refusing to \
                 publish into it (give this node its own --sink.stream)",
                self.config.stream, self.node
            )));
        }
        Ok((jetstream, stream))
    }

    /// The stream's settings when the sink creates it: file storage, the configured replicas,
    /// nothing ever discarded (limits off; a full server refuses new messages rather than
    /// dropping old ones), and the duplicate window for message ids.
    fn stream_config(&self) -> Config {
        let config = self.store.config();
        Config {
            name: self.config.stream.clone(),
            description: Some(format!(
                "ferry log of chain {} contract {}, {}",
                config.chain_id,
                config.contract,
                self.claim_marker()
            )),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: StorageType::File,
            num_replicas: self.config.replicas,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::New,
            max_messages: -1,
            max_bytes: -1,
            duplicate_window: DUPLICATE_WINDOW,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            ..Config::default()
        }
    }

    fn claim_marker(&self) -> String {
        match &self.config.group {
            Some(group) => format!("written by ferry HA group {group:?}"),
            None => format!("written by ferry node {}", self.node),
        }
    }

    /// What names this publisher's messages for JetStream's duplicate window: the group's
    /// members publish the same entries under the same ids.
    fn writer(&self) -> String {
        match &self.config.group {
            Some(group) => format!("group-{group}"),
            None => self.node.to_string(),
        }
    }

    /// The seq to publish next: the stream holds entries `0..next`, checked against the store
    /// (its newest entry's seq and hash): a stream that diverges from the store is fenced.
    async fn resume(&self, stream: &mut Stream) -> Result<Seq, Ended> {
        let info = stream
            .info()
            .await
            .map_err(|error| Ended::Failed(format!("cannot read the stream's state: {error}")))?;
        let (count, last) = (info.state.messages, info.state.last_sequence);
        if count != last {
            return Err(Ended::Fenced(format!(
                "stream {} holds {count} messages up to sequence {last}: not ferry's gapless log",
                self.config.stream
            )));
        }
        let Some(newest) = last.checked_sub(1).map(Seq) else { return Ok(Seq::ZERO) };
        let message = stream
            .get_raw_message(last)
            .await
            .map_err(|error| Ended::Failed(format!("cannot read sequence {last}: {error}")))?;
        let header = |name: &str| message.headers.get(name).map(|value| value.as_str().to_owned());
        let stored = self
            .store
            .entries_from(newest, 1)
            .map_err(|error| Ended::Failed(format!("cannot read the store: {error}")))?;
        let stored = stored.first().filter(|stored| stored.entry.seq == newest);
        let agrees = stored.is_some_and(|stored| {
            header(headers::SEQ) == Some(newest.to_string())
                && header(headers::HASH) == Some(stored.entry.hash.to_string())
        });
        if !agrees {
            return Err(Ended::Fenced(format!(
                "stream {} ends with seq {:?} hash {:?}, which the store does not hold at seq \
                 {newest}: it is not this node's log",
                self.config.stream,
                header(headers::SEQ),
                header(headers::HASH)
            )));
        }
        Ok(newest.next())
    }

    /// Publishes `entries` (consecutive, from the one after the stream's last); the seq of the
    /// last one, once its ack came back. Each entry expects the stream's last sequence. A
    /// sequence alone would let an entry land after one the stream refused, once another
    /// writer's messages made up the count, and leave a hole.
    ///
    /// On a single-replica stream only the last entry asks for an ack (an ack per entry cost
    /// an inbox, a reply and a wake-up each, in the node and in nats-server: most of the
    /// sink's cost, docs/benchmarks.md), and each entry but a session's first also expects the
    /// message id of the entry before it, which no other writer has: the stream takes a prefix
    /// of the batch, and the last's ack at its own sequence says it took all of it.
    ///
    /// A replicated stream gets an ack per entry, pipelined, and no message-id expectation: on
    /// nats-server 2.9 a replica that restarted checks that header against a last message id
    /// it lost, refuses every entry, and stays behind the others (seen in the HA kill test).
    /// There a hole is found rather than prevented: an entry acknowledged after a refused one
    /// fences the publisher.
    async fn publish(
        &self,
        jetstream: &Context,
        entries: &[LogEntry],
        chained: bool,
        ack_each: bool,
    ) -> Result<Seq, Ended> {
        let Some((last, before)) = entries.split_last() else {
            return Err(Ended::Failed("nothing to publish".to_owned()));
        };
        let writer = self.writer();
        let mut chained = chained;
        let mut acks = Vec::with_capacity(if ack_each { entries.len() } else { 1 });
        for entry in before {
            let (subject, headers, payload) = self.message(&writer, entry, chained && !ack_each)?;
            chained = true;
            let failed = |error: &dyn std::fmt::Display| {
                Ended::Failed(format!("cannot publish {}: {error}", entry.seq))
            };
            if ack_each {
                let message = PublishMessage::build().payload(payload).headers(headers);
                let ack = jetstream.send_publish(subject, message).await.map_err(|e| failed(&e))?;
                acks.push((entry.seq, ack));
            } else {
                jetstream
                    .client()
                    .publish_with_headers(subject, headers, payload)
                    .await
                    .map_err(|e| failed(&e))?;
            }
        }
        let (subject, headers, payload) = self.message(&writer, last, chained && !ack_each)?;
        let message = PublishMessage::build().payload(payload).headers(headers);
        let ack = jetstream
            .send_publish(subject, message)
            .await
            .map_err(|error| Ended::Failed(format!("cannot publish {}: {error}", last.seq)))?;
        acks.push((last.seq, ack));
        let entries_per_ack = if ack_each { 1 } else { entries.len() as u64 };
        // The first entry the stream refused outright (not one whose ack was only lost), and
        // the first failure of any kind, which ends the session.
        let (mut refused, mut failed) = (None, None);
        for (seq, ack) in acks {
            let ack = ack.await;
            let refusal = ack.as_ref().is_err_and(stream_refused);
            match check_ack(seq, ack) {
                // An entry stored after one the stream refused: another writer's messages made
                // up the count in between, and the stream has a hole the node cannot fill.
                Ok(_) if let Some(before) = refused => {
                    return Err(Ended::Fenced(format!(
                        "entry {seq} was stored after entry {before} was refused: another writer \
                         wrote into stream {} between them",
                        self.config.stream
                    )));
                }
                Ok(true) => {
                    metrics::counter!("ferry_sink_published_total").increment(entries_per_ack);
                }
                Ok(_) => {}
                Err(ended) => {
                    if refusal && refused.is_none() {
                        refused = Some(seq);
                    }
                    failed.get_or_insert(ended);
                }
            }
        }
        match failed {
            Some(ended) => Err(ended),
            None => Ok(last.seq),
        }
    }

    /// The subject, headers and JSON body of `entry`'s message; `chained`: it expects the
    /// entry before it as the stream's last message.
    fn message(
        &self,
        writer: &str,
        entry: &LogEntry,
        chained: bool,
    ) -> Result<(String, HeaderMap, Bytes), Ended> {
        let body = serde_json::to_vec(entry).map_err(|error| {
            Ended::Failed(format!("cannot encode entry {}: {error}", entry.seq))
        })?;
        let mut headers = entry_headers(entry, writer);
        if chained && let Some(previous) = entry.seq.0.checked_sub(1) {
            headers.insert(header::NATS_EXPECTED_LAST_MESSAGE_ID, format!("{writer}:{previous}"));
        }
        let subject = format!("{}.{}", self.config.subject_prefix, kind_name(entry));
        Ok((subject, headers, Bytes::from(body)))
    }
}

/// What the stream's ack for the entry at `seq` says: stored where it belongs (`true`, or
/// `false` for a duplicate of what another member of the group stored first), or why the
/// session ends.
fn check_ack(seq: Seq, ack: Result<PublishAck, PublishError>) -> Result<bool, Ended> {
    match ack {
        Ok(ack) if ack.sequence == seq.0 + 1 => Ok(!ack.duplicate),
        Ok(ack) => Err(Ended::Fenced(format!(
            "entry {seq} was stored as stream sequence {}, not {}",
            ack.sequence,
            seq.0 + 1
        ))),
        // Another writer, an entry before it the stream refused, a stream leader that lost
        // the last message id (a restarted server), or a retry of what a lost ack already
        // stored: read where the stream stands again.
        Err(error) if stream_refused(&error) => {
            Err(Ended::Failed(format!("the stream moved under entry {seq}: {error}")))
        }
        Err(error) => Err(Ended::Failed(format!("entry {seq} was not acknowledged: {error}"))),
    }
}

/// Whether the stream refused the message for where it stands (its last sequence or message
/// id), as opposed to an ack lost on the way, whose message may be stored.
fn stream_refused(error: &PublishError) -> bool {
    matches!(
        error.kind(),
        PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId
    )
}

fn kind_name(entry: &LogEntry) -> &'static str {
    match entry.kind {
        ferry_primitives::EntryKind::Message => "message",
        ferry_primitives::EntryKind::Removed => "removed",
        ferry_primitives::EntryKind::Reincluded => "reincluded",
        ferry_primitives::EntryKind::StateChanged => "stateChanged",
    }
}

/// The entry's headers, with its id for JetStream's duplicate window (`writer:seq`) and the
/// stream's last sequence it expects. Names are static and values moved in, not copied: the
/// headers were a third of the publisher's CPU (docs/benchmarks.md).
fn entry_headers(entry: &LogEntry, writer: &str) -> HeaderMap {
    const SEQ: HeaderName = HeaderName::from_static(headers::SEQ);
    const KIND: HeaderName = HeaderName::from_static(headers::KIND);
    const HASH: HeaderName = HeaderName::from_static(headers::HASH);
    const MESSAGE_SEQ: HeaderName = HeaderName::from_static(headers::MESSAGE_SEQ);
    const L1_BLOCK: HeaderName = HeaderName::from_static(headers::L1_BLOCK);
    const L1_BLOCK_HASH: HeaderName = HeaderName::from_static(headers::L1_BLOCK_HASH);
    const L1_TRANSACTION: HeaderName = HeaderName::from_static(headers::L1_TRANSACTION);
    const L1_LOG_INDEX: HeaderName = HeaderName::from_static(headers::L1_LOG_INDEX);
    let origin = &entry.l1.origin;
    let mut map = HeaderMap::new();
    map.insert(SEQ, entry.seq.to_string());
    map.insert(KIND, kind_name(entry));
    map.insert(HASH, entry.hash.to_string());
    map.insert(MESSAGE_SEQ, entry.message_seq.to_string());
    map.insert(L1_BLOCK, origin.block_number.to_string());
    map.insert(L1_BLOCK_HASH, origin.block_hash.to_string());
    map.insert(L1_TRANSACTION, origin.transaction_hash.to_string());
    map.insert(L1_LOG_INDEX, origin.log_index.to_string());
    map.insert(header::NATS_MESSAGE_ID, format!("{writer}:{}", entry.seq));
    map.insert(header::NATS_EXPECTED_LAST_SEQUENCE, entry.seq.0.to_string());
    map
}
