//! The member task: joins the group, replays the journal while it stands by, takes the lease
//! when no one holds it (after replaying to the journal's end), renews it while it leads, and
//! steps down the moment it cannot be sure it still holds it. The node hears the role
//! through a watch and starts or stops ingestion and publishing.

use crate::{
    GroupJournal, GroupReport, HaConfig, LOG_TARGET,
    follower::Follower,
    journal::{Leading, Shared},
    lease::Lease,
    session::Session,
};
use async_nats::jetstream::{self, stream::Stream};
use ferry_primitives::HaRole;
use ferry_sink::SinkConfig;
use ferry_storage::Store;
use std::{sync::Arc, time::Duration};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tracing::{error, info, warn};

/// The longest wait between sessions.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What the node is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serve what the journal brought; ingest nothing, publish nothing.
    Standby,
    /// Ingest and publish, from what the store holds now.
    Leader {
        /// The lease's term.
        term: u64,
        /// Changes each time the member (re)starts leading, even under the same term (after
        /// catching up with writes its store lacked): the node starts ingestion afresh.
        generation: u64,
    },
}

/// Why a node cannot join a group.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] ferry_storage::Error),
    /// The store holds writes that are not in any group's journal.
    #[error(
        "the database holds a log written outside HA group {group} (last seq {last_seq:?}, \
         checkpoint {checkpoint:?}); a member starts with an empty datadir and replays the \
         group's journal"
    )]
    NotEmpty {
        /// The group.
        group: String,
        /// The store's last seq.
        last_seq: Option<ferry_primitives::Seq>,
        /// The store's checkpoint.
        checkpoint: ferry_primitives::Checkpoint,
    },
    /// The store already writes through a journal.
    #[error("the store already writes through a journal")]
    AlreadyJoined,
}

/// A member of a group, before it runs.
#[derive(Debug)]
pub struct Member {
    pub(crate) config: HaConfig,
    pub(crate) sink: SinkConfig,
    pub(crate) store: Store,
    pub(crate) report: GroupReport,
    pub(crate) shared: Arc<Shared>,
    roles: watch::Sender<Role>,
}

/// The running member.
#[derive(Debug)]
pub struct GroupHandle {
    shared: Arc<Shared>,
    roles: watch::Receiver<Role>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl GroupHandle {
    /// The role, as it changes.
    pub fn roles(&self) -> watch::Receiver<Role> {
        self.roles.clone()
    }

    /// From now on this member may take the lease (the node can ingest: L1 answered).
    pub fn set_eligible(&self) {
        self.shared.eligible.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Leaves the group: gives the lease up if held (stop ingestion first) and waits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(error) = (&mut self.task).await {
            error!(target: LOG_TARGET, %error, "The group member task failed");
        }
    }
}

impl Member {
    /// Makes `store` write through the group's journal (so it refuses writes until this
    /// member leads) and readies the member; `sink` names the NATS servers. The store must
    /// hold nothing the journal does not.
    pub fn join(
        config: HaConfig,
        sink: SinkConfig,
        store: Store,
        report: GroupReport,
    ) -> Result<Self, JoinError> {
        let (last_seq, checkpoint) = (store.last_seq()?, store.checkpoint()?);
        let applied = store.journal_applied()?;
        if applied == 0 && (last_seq.is_some() || checkpoint.is_some()) {
            return Err(JoinError::NotEmpty { group: config.group, last_seq, checkpoint });
        }
        let id = store.node_id()?.to_string();
        let node = id.get(2..14).unwrap_or(&id).to_owned();
        let shared =
            Arc::new(Shared::new(&config, node.clone(), tokio::runtime::Handle::current()));
        if !store.attach_journal(Arc::new(GroupJournal { shared: Arc::clone(&shared) })) {
            return Err(JoinError::AlreadyJoined);
        }
        report.update(|ha| {
            ha.group = config.group.clone();
            ha.node = node;
            ha.role = HaRole::Standby;
            ha.journal_applied = applied;
        });
        let (roles, _) = watch::channel(Role::Standby);
        Ok(Self { config, sink, store, report, shared, roles })
    }

    /// Where this node's listeners are, as the lease tells operators and other members.
    pub fn serving_at(mut self, admin: String, public: String) -> Self {
        self.config.admin = admin;
        self.config.public = public;
        self
    }

    /// Starts the task.
    pub fn spawn(self) -> GroupHandle {
        let (stop, stopped) = oneshot::channel();
        let roles = self.roles.subscribe();
        let shared = Arc::clone(&self.shared);
        GroupHandle { shared, roles, stop: Some(stop), task: tokio::spawn(self.run(stopped)) }
    }

    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let mut backoff = Duration::from_millis(200);
        let mut generation = 0;
        loop {
            let reason = match self.session(&mut stop, &mut generation).await {
                Ok(()) => return,
                Err(reason) => reason,
            };
            self.step_down();
            warn!(target: LOG_TARGET, group = %self.config.group, %reason, ?backoff,
                "HA session ended; standing by until the group is reached again");
            metrics::counter!("ferry_ha_errors_total").increment(1);
            self.report.update(|ha| {
                ha.connected = false;
                ha.last_error = Some(reason);
            });
            tokio::select! {
                biased;
                _ = &mut stop => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection to the group: stand by, lead when elected, until stopped (`Ok`) or
    /// something fails.
    async fn session(
        &self,
        stop: &mut oneshot::Receiver<()>,
        generation: &mut u64,
    ) -> Result<(), String> {
        Session::open(self).await?.run(stop, generation).await
    }

    /// A follower of the journal from after what the store holds.
    pub(crate) async fn follower(&self, stream: &Stream) -> Result<Follower, String> {
        Follower::start(
            stream,
            &self.config.journal_subject(),
            self.store.clone(),
            self.report.clone(),
        )
        .await
    }

    /// Leads from now on: the store's writes are appended under `term`, and the node starts
    /// ingesting.
    pub(crate) fn lead(
        &self,
        term: u64,
        caught_up_to: u64,
        jetstream: &jetstream::Context,
        lease: &Lease,
        generation: &mut u64,
    ) {
        let leading = Leading {
            term,
            jetstream: crate::journal::appending(jetstream),
            lease: lease.clone(),
            caught_up_to,
        };
        // A refusal heard before (an append of a term that ended) says nothing of this one.
        let _ = futures_util::FutureExt::now_or_never(self.shared.fault.notified());
        self.shared.set_leading(Some(leading));
        *generation += 1;
        self.roles.send_replace(Role::Leader { term, generation: *generation });
        let leader = ferry_primitives::HaLeader {
            node: self.shared.node.clone(),
            admin: self.config.admin.clone(),
            public: self.config.public.clone(),
            term,
        };
        self.shared.set_known_leader(Some(leader.clone()));
        self.report.update(|ha| {
            ha.role = HaRole::Leader;
            ha.term = Some(term);
            ha.leader = Some(leader);
            ha.lease_age_millis = Some(0);
        });
        metrics::counter!("ferry_ha_leadership_changes_total").increment(1);
        info!(target: LOG_TARGET, group = %self.config.group, term, "Leading the HA group");
    }

    /// The lease went to someone else (or expired): stand by.
    pub(crate) fn lost(&self, holder: Option<ferry_primitives::HaLeader>) {
        warn!(target: LOG_TARGET, group = %self.config.group, leader = ?holder,
            "Lost the lease; standing by");
        self.step_down();
        self.shared.set_known_leader(holder.clone());
        self.report.update(|ha| ha.leader = holder);
        metrics::counter!("ferry_ha_leadership_changes_total").increment(1);
    }

    /// Writes are refused from now on, and the node stops ingesting.
    pub(crate) fn step_down(&self) {
        self.shared.set_leading(None);
        self.roles.send_if_modified(|role| {
            let leading = matches!(role, Role::Leader { .. });
            *role = Role::Standby;
            leading
        });
        self.report.update(|ha| {
            ha.role = HaRole::Standby;
            ha.lease_age_millis = None;
        });
    }
}
