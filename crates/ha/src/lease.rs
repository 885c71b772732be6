//! The group's lease: one key in a KV bucket whose entries expire after `--ha.lease`. Taken
//! only when absent (a create), renewed only by its holder (an update that names the revision
//! it last wrote), so two members can never both think they hold it; the revision it was
//! taken at is the holder's term, larger for every later holder.

use async_nats::jetstream::{
    self,
    kv::{self, CreateErrorKind, Operation, UpdateErrorKind},
    stream::{self, DiscardPolicy, StorageType},
};
use bytes::Bytes;
use ferry_primitives::HaLeader;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The lease's key.
const LEADER: &str = "leader";

/// What the lease says of its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseValue {
    node: String,
    admin: String,
    public: String,
    /// Set by renewals: the revision the lease was taken at (the first write is that
    /// revision).
    #[serde(default)]
    term: Option<u64>,
}

/// A lease this member holds: its term, and the revision it last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    pub(crate) term: u64,
    pub(crate) revision: u64,
}

/// Why a renewal failed.
#[derive(Debug)]
pub(crate) enum RenewError {
    /// Someone else wrote the lease, or it expired: this member no longer leads.
    Lost(Option<HaLeader>),
    /// NATS did not answer; the lease may still be held until it expires.
    Unavailable(String),
}

/// The lease bucket, and this member as the lease names it.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    kv: kv::Store,
    me: LeaseValue,
    /// How long a read of the lease may take (the KV's reads are bounded by the client's
    /// request timeout alone, ten seconds, otherwise).
    read_timeout: Duration,
}

impl Lease {
    /// The group's bucket (created if missing, entries living `lease`).
    pub(crate) async fn open(
        jetstream: &jetstream::Context,
        config: &crate::HaConfig,
        node: &str,
        replicas: usize,
    ) -> Result<Self, String> {
        let bucket = config.bucket();
        let kv = match jetstream.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                // Created as async-nats's `create_key_value` would, without the account query
                // it starts with (whose answer older servers shape differently).
                let created = jetstream
                    .create_stream(stream::Config {
                        name: format!("KV_{bucket}"),
                        description: Some(format!(
                            "ferry HA group {:?}: the leader's lease",
                            config.group
                        )),
                        subjects: vec![format!("$KV.{bucket}.>")],
                        max_messages_per_subject: 1,
                        max_age: config.lease,
                        duplicate_window: config.lease,
                        storage: StorageType::File,
                        allow_rollup: true,
                        deny_delete: true,
                        allow_direct: true,
                        num_replicas: replicas,
                        discard: DiscardPolicy::New,
                        ..stream::Config::default()
                    })
                    .await;
                // Another member may have created it meanwhile: read it either way.
                let kv = jetstream.get_key_value(&bucket).await;
                match (kv, created) {
                    (Ok(kv), _) => kv,
                    (Err(_), Err(error)) => {
                        return Err(format!("cannot create the lease bucket {bucket}: {error}"));
                    }
                    (Err(error), Ok(_)) => {
                        return Err(format!("cannot read the lease bucket {bucket}: {error}"));
                    }
                }
            }
        };
        let me = LeaseValue {
            node: node.to_owned(),
            admin: config.admin.clone(),
            public: config.public.clone(),
            term: None,
        };
        let read_timeout = (config.lease / 3).max(Duration::from_millis(500));
        Ok(Self { kv, me, read_timeout })
    }

    /// The lease's entry, read within `read_timeout`.
    async fn entry(&self) -> Result<Option<kv::Entry>, String> {
        tokio::time::timeout(self.read_timeout, self.kv.entry(LEADER))
            .await
            .map_err(|_| format!("reading the lease took over {:?}", self.read_timeout))?
            .map_err(|error| format!("cannot read the lease: {error}"))
    }

    /// Who holds the lease now, if anyone.
    pub(crate) async fn holder(&self) -> Result<Option<HaLeader>, String> {
        let entry = self.entry().await?;
        Ok(entry.filter(|entry| entry.operation == Operation::Put).and_then(|entry| {
            let value: LeaseValue = serde_json::from_slice(&entry.value).ok()?;
            Some(HaLeader {
                term: value.term.unwrap_or(entry.revision),
                node: value.node,
                admin: value.admin,
                public: value.public,
            })
        }))
    }

    /// Takes the lease if no one holds it: the lease held, or `None` when another member does.
    pub(crate) async fn take(&self) -> Result<Option<Held>, String> {
        match self.kv.create(LEADER, self.value(None)).await {
            Ok(revision) => Ok(Some(Held { term: revision, revision })),
            Err(error) if error.kind() == CreateErrorKind::AlreadyExists => Ok(None),
            Err(error) => Err(format!("cannot take the lease: {error}")),
        }
    }

    /// Renews a lease held: the revision written.
    pub(crate) async fn renew(&self, held: Held) -> Result<Held, RenewError> {
        match self.kv.update(LEADER, self.value(Some(held.term)), held.revision).await {
            Ok(revision) => Ok(Held { revision, ..held }),
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => {
                Err(RenewError::Lost(self.holder().await.ok().flatten()))
            }
            Err(error) => Err(RenewError::Unavailable(format!("cannot renew the lease: {error}"))),
        }
    }

    /// Gives the lease up (a clean stop): another member takes it at its next look, not after
    /// the lease expires.
    pub(crate) async fn release(&self, held: Held) -> Result<(), String> {
        tokio::time::timeout(
            Duration::from_secs(2),
            self.kv.delete_expect_revision(LEADER, Some(held.revision)),
        )
        .await
        .map_err(|_| "NATS did not answer in time".to_owned())?
        .map_err(|error| format!("cannot release the lease: {error}"))
    }

    /// Gives up a lease that names this member from an earlier session (one that failed, or
    /// a process that died): nothing of that session writes any more, and the group need not
    /// wait for the lease to expire. Whether there was one.
    pub(crate) async fn release_stale(&self) -> Result<bool, String> {
        let entry = self.entry().await?;
        let Some(entry) = entry.filter(|entry| entry.operation == Operation::Put) else {
            return Ok(false);
        };
        let ours = serde_json::from_slice::<LeaseValue>(&entry.value)
            .is_ok_and(|value| value.node == self.me.node);
        if !ours {
            return Ok(false);
        }
        let held = Held { term: 0, revision: entry.revision };
        self.release(held).await.map(|()| true)
    }

    /// Whether the lease still names this member under `term`.
    pub(crate) async fn is_held(&self, term: u64) -> Result<Result<(), Option<HaLeader>>, String> {
        let holder = self.holder().await?;
        Ok(match holder {
            Some(holder) if holder.node == self.me.node && holder.term == term => Ok(()),
            other => Err(other),
        })
    }

    fn value(&self, term: Option<u64>) -> Bytes {
        let value = LeaseValue { term, ..self.me.clone() };
        Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
    }
}
