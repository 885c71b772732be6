//! Replaying the group's journal into this member's store, in order, each write in one
//! transaction with its sequence (`Store::replay`): what keeps a standby's store equal to the
//! leader's, seq for seq.

use crate::{GroupReport, LOG_TARGET};
use async_nats::jetstream::{
    consumer::{DeliverPolicy, pull},
    stream::Stream,
};
use ferry_storage::{JournalEntry, Replayed, Store};
use futures_util::StreamExt;
use tracing::debug;

/// A follower of the journal from the write after the store's last.
pub(crate) struct Follower {
    messages: pull::Ordered,
    store: Store,
    report: GroupReport,
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
        Ok(Self { messages, store, report })
    }

    /// Waits for the next journal write and applies it; its sequence.
    pub(crate) async fn apply_next(&mut self) -> Result<u64, String> {
        let message = self.next_message().await?;
        self.apply(message).await
    }

    /// The next journal write (cancel-safe: nothing is applied yet).
    async fn next_message(&mut self) -> Result<async_nats::jetstream::Message, String> {
        match self.messages.next().await {
            Some(Ok(message)) => Ok(message),
            Some(Err(error)) => Err(format!("cannot read the journal: {error}")),
            None => Err("the journal's consumer ended".to_owned()),
        }
    }

    /// Applies one journal write; its sequence.
    async fn apply(&mut self, message: async_nats::jetstream::Message) -> Result<u64, String> {
        let seq = message
            .info()
            .map_err(|error| format!("a journal message without its sequence: {error}"))?
            .stream_sequence;
        let entry: JournalEntry = serde_json::from_slice(&message.payload)
            .map_err(|error| format!("journal write {seq} cannot be read: {error}"))?;
        let store = self.store.clone();
        let replayed = tokio::task::spawn_blocking(move || store.replay(seq, &entry))
            .await
            .map_err(|error| format!("replaying journal write {seq} failed: {error}"))?
            .map_err(|error| format!("cannot replay journal write {seq}: {error}"))?;
        if replayed == Replayed::Applied {
            debug!(target: LOG_TARGET, seq, "Replayed a journal write");
            metrics::counter!("ferry_ha_replayed_total").increment(1);
            self.report.replicated(&self.store);
        }
        self.report.update(|ha| ha.journal_applied = ha.journal_applied.max(seq));
        Ok(seq)
    }

    /// Applies the journal's writes up to `last` (what it held when asked).
    pub(crate) async fn catch_up(&mut self, last: u64) -> Result<(), String> {
        let mut applied = read_applied(&self.store).await?;
        while applied < last {
            applied = self.apply_next().await?;
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
                follower.apply(message).await?;
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
