//! The member task: joins the group, replays the journal while it stands by, takes the lease
//! when no one holds it (after replaying to the journal's end), renews it while it leads, and
//! steps down the moment it cannot be sure it still holds it. The node hears the role
//! through a watch and starts or stops ingestion and publishing.

use crate::{
    GroupJournal, GroupReport, HaConfig, LOG_TARGET,
    follower::{self, Follower, Following},
    journal::{self, Leading, Shared},
    lease::{Held, Lease, RenewError},
};
use async_nats::jetstream::{self, stream::Stream};
use ferry_primitives::HaRole;
use ferry_sink::SinkConfig;
use ferry_storage::Store;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
    time::MissedTickBehavior,
};
use tracing::{error, info, warn};

/// Journal writes a member may be behind and still take a vacant lease at once.
const TAKE_BEHIND: u64 = 64;

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
    config: HaConfig,
    sink: SinkConfig,
    store: Store,
    report: GroupReport,
    shared: Arc<Shared>,
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
        if store.journal_applied()? == 0 && (last_seq.is_some() || checkpoint.is_some()) {
            return Err(JoinError::NotEmpty { group: config.group, last_seq, checkpoint });
        }
        let id = store.node_id()?.to_string();
        let node = id.get(2..14).unwrap_or(&id).to_owned();
        let shared =
            Arc::new(Shared::new(&config, node.clone(), tokio::runtime::Handle::current()));
        if !store.attach_journal(Arc::new(GroupJournal { shared: Arc::clone(&shared) })) {
            return Err(JoinError::AlreadyJoined);
        }
        let applied = store.journal_applied()?;
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
        let jetstream = jetstream::new(ferry_sink::connect(&self.sink).await?);
        let replicas = self.sink.replicas;
        let lease = Lease::open(&jetstream, &self.config, &self.shared.node, replicas).await?;
        if lease.release_stale().await? {
            info!(target: LOG_TARGET, "Gave up the lease an earlier session of this member held");
        }
        let mut stream =
            journal::open_stream(&jetstream, &self.config, self.store.config(), replicas).await?;
        let (applied, last) = (
            follower::read_applied(&self.store).await?,
            follower::journal_last(&mut stream).await?,
        );
        if last < applied {
            return Err(format!(
                "the group's journal ends at {last}, but this store applied up to {applied}: the \
                 journal lost writes (its NATS data was lost or replaced); this member will not \
                 lead or replay from it"
            ));
        }
        self.report.update(|ha| {
            ha.connected = true;
            ha.last_error = None;
            ha.journal_last = Some(last);
        });
        info!(target: LOG_TARGET, group = %self.config.group, node = %self.shared.node,
            "Joined the HA group; standing by");
        let mut following = Some(Following::spawn(self.follower(&stream).await?));
        let mut held: Option<Held> = None;
        let mut vacant_since: Option<Instant> = None;
        let mut renewed_at = Instant::now();
        let mut ticks = tokio::time::interval(self.config.lease / 3);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut *stop => {
                    if let Some(held) = held {
                        self.step_down();
                        match lease.release(held).await {
                            Ok(()) => info!(target: LOG_TARGET, "Gave the lease up"),
                            Err(reason) => warn!(target: LOG_TARGET, %reason,
                                "Cannot give the lease up; it expires by itself"),
                        }
                    }
                    if let Some(following) = following.take() {
                        let _ = following.stop().await;
                    }
                    return Ok(());
                }
                reason = failed(&mut following), if following.is_some() => return Err(reason),
                // Another member may take the lease once it expires: stop writing well before.
                () = tokio::time::sleep_until(self.stand_down_at(renewed_at).into()), if held.is_some() => {
                    return Err(format!(
                        "the lease was not renewed for {:?} (two thirds of it); standing down",
                        renewed_at.elapsed()
                    ));
                }
                () = self.shared.fault.notified(), if held.is_some() => {
                    let Some(current) = held else { continue };
                    match lease.is_held(current.term).await? {
                        Ok(()) => {
                            // The store lacks writes the journal holds (a commit that failed
                            // after its append): replay them, then lead again.
                            warn!(target: LOG_TARGET, "The journal holds writes this store lacks; catching up before leading again");
                            self.step_down();
                            let mut follower = self.follower(&stream).await?;
                            let last = follower::journal_last(&mut stream).await?;
                            follower.catch_up(last).await?;
                            self.lead(current.term, last, &jetstream, &lease, generation);
                        }
                        Err(holder) => {
                            self.lost(holder);
                            held = None;
                            following = Some(Following::spawn(self.follower(&stream).await?));
                        }
                    }
                }
                _ = ticks.tick() => {
                    // For status only: a failed read here is not a reason to stand down (the
                    // lease's renewal decides that).
                    let glance = self.config.lease / 6;
                    let applied = follower::read_applied(&self.store).await.ok();
                    let last = tokio::time::timeout(glance, follower::journal_last(&mut stream))
                        .await
                        .ok()
                        .and_then(Result::ok);
                    self.report.update(|ha| {
                        ha.journal_applied = applied.unwrap_or(ha.journal_applied);
                        ha.journal_last = last.or(ha.journal_last);
                    });
                    match held {
                    None => {
                        // Bounded: a read stuck on a server that is not answering must not keep
                        // this member from looking again at the next tick.
                        let Ok(holder) = tokio::time::timeout(self.config.lease / 3, lease.holder()).await else {
                            warn!(target: LOG_TARGET, "Reading the lease took over a third of it; looking again");
                            continue;
                        };
                        let holder = holder?;
                        self.shared.set_known_leader(holder.clone());
                        self.report.update(|ha| ha.leader = holder.clone());
                        let eligible = self.shared.eligible.load(std::sync::atomic::Ordering::SeqCst);
                        if holder.is_some() || !eligible {
                            vacant_since = None;
                            continue;
                        }
                        // A member far behind the journal lets one that is not take the lease
                        // first (its catch-up would hold the group up), unless none has for a
                        // whole lease.
                        let vacant = *vacant_since.get_or_insert_with(Instant::now);
                        let behind = last.zip(applied).map_or(0, |(last, applied)| last.saturating_sub(applied));
                        if behind > TAKE_BEHIND && vacant.elapsed() < self.config.lease {
                            continue;
                        }
                        let Some(taken) = lease.take().await? else { continue };
                        renewed_at = Instant::now();
                        held = Some(taken);
                        let follower = match following.take() {
                            Some(following) => following.stop().await?,
                            None => self.follower(&stream).await?,
                        };
                        let last = self.take_over(follower, &mut stream, taken.term).await?;
                        self.lead(taken.term, last, &jetstream, &lease, generation);
                    }
                    Some(current) => match self.renew(&lease, current, renewed_at).await {
                        Ok(renewed) => {
                            held = Some(renewed);
                            renewed_at = Instant::now();
                            self.report.update(|ha| ha.lease_age_millis = Some(0));
                        }
                        Err(RenewError::Lost(holder)) => {
                            self.lost(holder);
                            held = None;
                            following = Some(Following::spawn(self.follower(&stream).await?));
                        }
                        Err(RenewError::Unavailable(reason)) => {
                            let age = renewed_at.elapsed();
                            self.report.update(|ha| ha.lease_age_millis = Some(age.as_millis() as u64));
                            warn!(target: LOG_TARGET, %reason, ?age, "Cannot renew the lease; trying again");
                        }
                    },
                    }
                }
            }
        }
    }

    /// When a leader that could not renew its lease stops leading: two thirds of the lease
    /// after the last renewal, a third before another member may take it.
    fn stand_down_at(&self, renewed_at: Instant) -> Instant {
        renewed_at + self.config.lease * 2 / 3
    }

    /// Renews the lease, waiting no later than the moment to stand down.
    async fn renew(
        &self,
        lease: &Lease,
        held: Held,
        renewed_at: Instant,
    ) -> Result<Held, RenewError> {
        let wait = (self.config.lease / 3)
            .min(self.stand_down_at(renewed_at).saturating_duration_since(Instant::now()));
        tokio::time::timeout(wait, lease.renew(held)).await.unwrap_or_else(|_| {
            Err(RenewError::Unavailable(format!("the lease's renewal took over {wait:?}")))
        })
    }

    async fn follower(&self, stream: &Stream) -> Result<Follower, String> {
        Follower::start(
            stream,
            &self.config.journal_subject(),
            self.store.clone(),
            self.report.clone(),
        )
        .await
    }

    /// Holding the lease: replays the journal to its end before anything is written; where
    /// it ended.
    async fn take_over(
        &self,
        mut follower: Follower,
        stream: &mut Stream,
        term: u64,
    ) -> Result<u64, String> {
        self.report.update(|ha| {
            ha.role = HaRole::Candidate;
            ha.term = Some(term);
        });
        let last = follower::journal_last(stream).await?;
        info!(target: LOG_TARGET, term, journal_last = last, "Took the lease; catching up with the journal");
        follower.catch_up(last).await?;
        Ok(last)
    }

    /// Leads from now on: the store's writes are appended under `term`, and the node starts
    /// ingesting.
    fn lead(
        &self,
        term: u64,
        caught_up_to: u64,
        jetstream: &jetstream::Context,
        lease: &Lease,
        generation: &mut u64,
    ) {
        let leading =
            Leading { term, jetstream: jetstream.clone(), lease: lease.clone(), caught_up_to };
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
    fn lost(&self, holder: Option<ferry_primitives::HaLeader>) {
        warn!(target: LOG_TARGET, group = %self.config.group, leader = ?holder,
            "Lost the lease; standing by");
        self.step_down();
        self.shared.set_known_leader(holder.clone());
        self.report.update(|ha| ha.leader = holder);
        metrics::counter!("ferry_ha_leadership_changes_total").increment(1);
    }

    /// Writes are refused from now on, and the node stops ingesting.
    fn step_down(&self) {
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

/// Ends when replaying failed (only polled while a follower runs).
async fn failed(following: &mut Option<Following>) -> String {
    match following {
        Some(following) => following.failed().await,
        None => std::future::pending().await,
    }
}
