//! Replaying the group's journal into this member's store, in order, each write in one
//! transaction with where it ends in the journal (`Store::replay`): what keeps a standby's
//! store equal to the leader's, seq for seq. A write may come in several messages (parts);
//! one whose leader died before its last part is skipped by every member alike.

use crate::{GroupReport, LOG_TARGET, journal::PART};
use async_nats::jetstream::{
    consumer::{DeliverPolicy, pull},
    stream::Stream,
};
use ferry_storage::{JournalEntry, JournalSpan, Replayed, Store};
use futures_util::StreamExt;
use tracing::{debug, warn};

/// A follower of the journal from the message after the store's last write.
pub(crate) struct Follower {
    messages: pull::Ordered,
    store: Store,
    report: GroupReport,
    /// The last journal message read (applied, or part of a write not complete yet).
    read: u64,
    /// The parts read so far of a write cut into several messages.
    partial: Option<Partial>,
}

/// A write whose first parts were read.
struct Partial {
    first: u64,
    parts: u64,
    read: u64,
    body: Vec<u8>,
}

impl Follower {
    /// Starts reading the journal after what `store` holds.
    pub(crate) async fn start(
        stream: &Stream,
        subject: &str,
        store: Store,
        report: GroupReport,
    ) -> Result<Self, String> {
        let applied = read_applied(&store).await?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: subject.to_owned(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: applied + 1 },
                ..pull::OrderedConfig::default()
            })
            .await
            .map_err(|error| format!("cannot read the journal: {error}"))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|error| format!("cannot read the journal: {error}"))?;
        Ok(Self { messages, store, report, read: applied, partial: None })
    }

    /// The next journal message (cancel-safe: nothing is applied yet).
    async fn next_message(&mut self) -> Result<async_nats::jetstream::Message, String> {
        match self.messages.next().await {
            Some(Ok(message)) => Ok(message),
            Some(Err(error)) => Err(format!("cannot read the journal: {error}")),
            None => Err("the journal's consumer ended".to_owned()),
        }
    }

    /// Takes one journal message: the last part of a write applies the write. Every member
    /// reads the same messages in the same order and so skips the same writes abandoned
    /// half-way (a first part while another write is incomplete ends that one).
    async fn take(&mut self, message: async_nats::jetstream::Message) -> Result<(), String> {
        let seq = message
            .info()
            .map_err(|error| format!("a journal message without its sequence: {error}"))?
            .stream_sequence;
        if seq != self.read + 1 {
            return Err(format!("journal message {seq} came after {}: a gap", self.read));
        }
        self.read = seq;
        let (part, parts) = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(PART))
            .and_then(|value| value.as_str().split_once('/'))
            .and_then(|(part, parts)| Some((part.parse::<u64>().ok()?, parts.parse::<u64>().ok()?)))
            .filter(|&(part, parts)| (1..=parts).contains(&part))
            .ok_or_else(|| format!("journal message {seq} does not say which part it is"))?;
        if part == 1 {
            if let Some(abandoned) = self.partial.take() {
                warn!(target: LOG_TARGET, first = abandoned.first, parts = abandoned.parts,
                    read = abandoned.read, "Skipping a journal write its leader abandoned half-way");
            }
            self.partial = Some(Partial { first: seq, parts, read: 0, body: Vec::new() });
        }
        let Some(partial) = self.partial.as_mut().filter(|partial| {
            partial.parts == parts
                && partial.read + 1 == part
                && partial.first + partial.read == seq
        }) else {
            // The rest of a write abandoned half-way before this member started reading.
            self.partial = None;
            return Ok(());
        };
        partial.body.extend_from_slice(&message.payload);
        partial.read = part;
        if part < parts {
            return Ok(());
        }
        let Some(Partial { first, body, .. }) = self.partial.take() else { return Ok(()) };
        self.apply(JournalSpan { first, last: seq }, &body).await
    }

    /// Applies the write at `span`.
    async fn apply(&mut self, span: JournalSpan, body: &[u8]) -> Result<(), String> {
        let seq = span.last;
        let entry: JournalEntry = serde_json::from_slice(body)
            .map_err(|error| format!("journal write {seq} cannot be read: {error}"))?;
        let store = self.store.clone();
        let replayed = tokio::task::spawn_blocking(move || store.replay(span, &entry))
            .await
            .map_err(|error| format!("replaying journal write {seq} failed: {error}"))?
            .map_err(|error| format!("cannot replay journal write {seq}: {error}"))?;
        if replayed == Replayed::Applied {
            debug!(target: LOG_TARGET, first = span.first, last = seq, "Replayed a journal write");
            metrics::counter!("ferry_ha_replayed_total").increment(1);
            self.report.replicated(&self.store);
        }
        self.report.update(|ha| ha.journal_applied = ha.journal_applied.max(seq));
        Ok(())
    }

    /// Reads the journal up to `last` (where it ended when asked), applying its writes.
    pub(crate) async fn catch_up(&mut self, last: u64) -> Result<(), String> {
        while self.read < last {
            let message = self.next_message().await?;
            self.take(message).await?;
        }
        Ok(())
    }
}

/// A follower replaying on its own task until told to stop (a write is never cut in half).
pub(crate) struct Following {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Follower, String>>,
}

impl Following {
    pub(crate) fn spawn(mut follower: Follower) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    biased;
                    _ = &mut stopped => return Ok(follower),
                    message = follower.next_message() => message?,
                };
                follower.take(message).await?;
            }
        });
        Self { stop, task }
    }

    /// Stops replaying (after the write being applied, if any): the follower, to go on with.
    pub(crate) async fn stop(self) -> Result<Follower, String> {
        let _ = self.stop.send(());
        self.task.await.map_err(|error| format!("the follower failed: {error}"))?
    }

    /// Ends only when replaying failed: why.
    pub(crate) async fn failed(&mut self) -> String {
        match (&mut self.task).await {
            Ok(Ok(_)) => "the follower stopped".to_owned(),
            Ok(Err(reason)) => reason,
            Err(error) => format!("the follower failed: {error}"),
        }
    }
}

/// The journal writes the store holds.
pub(crate) async fn read_applied(store: &Store) -> Result<u64, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.journal_applied())
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| format!("cannot read the store: {error}"))
}

/// The journal's last write now.
pub(crate) async fn journal_last(stream: &mut Stream) -> Result<u64, String> {
    stream
        .info()
        .await
        .map(|info| info.state.last_sequence)
        .map_err(|error| format!("cannot read the journal's state: {error}"))
}
