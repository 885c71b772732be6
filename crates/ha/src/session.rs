//! One connection of a member to its group: what it holds there (the lease, the journal's
//! stream, a follower while it stands by), and what it does at each turn: renew or stand down
//! while it leads, follow and take a vacant lease while it stands by, catch up when the journal
//! says its store is behind.

use crate::{
    LOG_TARGET, Member,
    follower::{self, Follower, Following},
    journal,
    lease::{Held, Lease, RenewError},
};
use async_nats::jetstream::{self, stream::Stream};
use ferry_primitives::{HaLeader, HaRole};
use std::time::Instant;
use tokio::{sync::oneshot, time::MissedTickBehavior};
use tracing::{info, warn};

/// The shortest time the group's own requests are given.
const REQUEST_TIMEOUT_FLOOR: std::time::Duration = std::time::Duration::from_millis(500);

/// Journal writes a member may be behind and still take a vacant lease at once.
const TAKE_BEHIND: u64 = 64;

/// A member's connection to its group.
pub(crate) struct Session<'m> {
    member: &'m Member,
    jetstream: jetstream::Context,
    lease: Lease,
    stream: Stream,
    /// Replaying the journal, while this member stands by.
    following: Option<Following>,
    /// The lease, while this member leads.
    held: Option<Held>,
    renewed_at: Instant,
    /// Since when the lease is seen vacant.
    vacant_since: Option<Instant>,
}

impl<'m> Session<'m> {
    /// Connects, opens the lease and the journal (refusing a journal shorter than the store),
    /// gives up a lease an earlier session of this member held, and starts following.
    pub(crate) async fn open(member: &'m Member) -> Result<Self, String> {
        let mut jetstream = jetstream::new(ferry_sink::connect(&member.sink).await?);
        // The group's own requests (lease, journal state, consumers) answer in milliseconds on a
        // healthy cluster: one that does not (a server gone, a stream electing its leader) is
        // asked again soon rather than waited for. Appends keep their own, longer bound.
        jetstream.set_timeout((member.config.lease / 3).max(REQUEST_TIMEOUT_FLOOR));
        let replicas = member.sink.replicas;
        let node = &member.shared.node;
        let lease = Lease::open(&jetstream, &member.config, node, replicas).await?;
        if lease.release_stale().await? {
            info!(target: LOG_TARGET, "Gave up the lease an earlier session of this member held");
        }
        let config = member.store.config();
        let mut stream = journal::open_stream(&jetstream, &member.config, config, replicas).await?;
        let applied = follower::read_applied(&member.store).await?;
        let last = follower::journal_last(&mut stream).await?;
        if last < applied {
            return Err(format!(
                "the group's journal ends at {last}, but this store applied up to {applied}: the \
                 journal lost writes (its NATS data was lost or replaced); this member will not \
                 lead or replay from it"
            ));
        }
        member.report.update(|ha| {
            ha.connected = true;
            ha.last_error = None;
            ha.journal_last = Some(last);
        });
        info!(target: LOG_TARGET, group = %member.config.group, %node,
            "Joined the HA group; standing by");
        let following = Some(Following::spawn(member.follower(&stream).await?));
        Ok(Self {
            member,
            jetstream,
            lease,
            stream,
            following,
            held: None,
            renewed_at: Instant::now(),
            vacant_since: None,
        })
    }

    /// Turns until stopped (`Ok`) or something fails.
    pub(crate) async fn run(
        mut self,
        stop: &mut oneshot::Receiver<()>,
        generation: &mut u64,
    ) -> Result<(), String> {
        let mut ticks = tokio::time::interval(self.member.config.lease / 3);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let (leading, stand_down_at) = (self.held.is_some(), self.stand_down_at());
            tokio::select! {
                biased;
                _ = &mut *stop => {
                    self.close().await;
                    return Ok(());
                }
                reason = failed(&mut self.following) => return Err(reason),
                // Another member may take the lease once it expires: stop writing well before.
                () = tokio::time::sleep_until(stand_down_at.into()), if leading => {
                    return Err(format!(
                        "the lease was not renewed for {:?} (two thirds of it); standing down",
                        self.renewed_at.elapsed()
                    ));
                }
                () = self.member.shared.fault.notified(), if leading => {
                    self.on_fault(generation).await?;
                }
                _ = ticks.tick() => self.on_tick(generation).await?,
            }
        }
    }

    /// Stopping: gives the lease up if held (the node stopped ingesting first).
    async fn close(&mut self) {
        if let Some(held) = self.held.take() {
            self.member.step_down();
            match self.lease.release(held).await {
                Ok(()) => info!(target: LOG_TARGET, "Gave the lease up"),
                Err(reason) => {
                    warn!(target: LOG_TARGET, %reason, "Cannot give the lease up; it expires by itself");
                }
            }
        }
        if let Some(following) = self.following.take() {
            let _ = following.stop().await;
        }
    }

    /// The journal refused a leader's write: the lease is someone else's, or the store lacks
    /// writes the journal holds (a commit that failed after its append): stand by, or catch
    /// up and lead again.
    async fn on_fault(&mut self, generation: &mut u64) -> Result<(), String> {
        let Some(current) = self.held else { return Ok(()) };
        match self.lease.is_held(current.term).await? {
            Ok(()) => {
                warn!(target: LOG_TARGET, "The journal holds writes this store lacks; catching up before leading again");
                self.member.step_down();
                let follower = self.member.follower(&self.stream).await?;
                let last = self.take_over(follower, current.term).await?;
                self.member.lead(current.term, last, &self.jetstream, &self.lease, generation);
            }
            Err(holder) => self.stand_by(holder).await?,
        }
        Ok(())
    }

    /// A third of the lease passed: status refreshed, then the lease renewed (leading) or
    /// looked at (standing by).
    async fn on_tick(&mut self, generation: &mut u64) -> Result<(), String> {
        // For status only: a failed read here is not a reason to stand down (the lease's
        // renewal decides that).
        let glance = self.member.config.lease / 6;
        let applied = follower::read_applied(&self.member.store).await.ok();
        let last = tokio::time::timeout(glance, follower::journal_last(&mut self.stream))
            .await
            .ok()
            .and_then(Result::ok);
        self.member.report.update(|ha| {
            ha.journal_applied = applied.unwrap_or(ha.journal_applied);
            ha.journal_last = last.or(ha.journal_last);
        });
        match self.held {
            Some(current) => self.keep_leading(current).await,
            None => {
                let behind =
                    last.zip(applied).map_or(0, |(last, applied)| last.saturating_sub(applied));
                self.try_to_lead(behind, generation).await
            }
        }
    }

    /// Renews the lease; lost, stands by.
    async fn keep_leading(&mut self, current: Held) -> Result<(), String> {
        match self.renew(current).await {
            Ok(renewed) => {
                self.held = Some(renewed);
                self.renewed_at = Instant::now();
                self.member.report.update(|ha| ha.lease_age_millis = Some(0));
            }
            Err(RenewError::Lost(holder)) => self.stand_by(holder).await?,
            Err(RenewError::Unavailable(reason)) => {
                let age = self.renewed_at.elapsed();
                self.member.report.update(|ha| ha.lease_age_millis = Some(age.as_millis() as u64));
                warn!(target: LOG_TARGET, %reason, ?age, "Cannot renew the lease; trying again");
            }
        }
        Ok(())
    }

    /// Takes the lease if it is vacant and this member may lead (it can ingest, and it is not
    /// far behind the journal while a member that is not could take it), then catches up and
    /// leads.
    async fn try_to_lead(&mut self, behind: u64, generation: &mut u64) -> Result<(), String> {
        let member = self.member;
        // Bounded: a read stuck on a server that is not answering must not keep this member
        // from looking again at the next tick.
        let Ok(holder) = tokio::time::timeout(member.config.lease / 3, self.lease.holder()).await
        else {
            warn!(target: LOG_TARGET, "Reading the lease took over a third of it; looking again");
            return Ok(());
        };
        let holder = holder?;
        member.shared.set_known_leader(holder.clone());
        member.report.update(|ha| ha.leader = holder.clone());
        let eligible = member.shared.eligible.load(std::sync::atomic::Ordering::SeqCst);
        if holder.is_some() || !eligible {
            self.vacant_since = None;
            return Ok(());
        }
        let vacant = *self.vacant_since.get_or_insert_with(Instant::now);
        if behind > TAKE_BEHIND && vacant.elapsed() < member.config.lease {
            return Ok(());
        }
        let Some(taken) = self.lease.take().await? else { return Ok(()) };
        self.renewed_at = Instant::now();
        self.held = Some(taken);
        let follower = match self.following.take() {
            Some(following) => following.stop().await?,
            None => member.follower(&self.stream).await?,
        };
        let last = self.take_over(follower, taken.term).await?;
        member.lead(taken.term, last, &self.jetstream, &self.lease, generation);
        Ok(())
    }

    /// Holding the lease (taken now, or kept while the store caught up): replays the journal
    /// to its end before anything is written; where it ended.
    async fn take_over(&mut self, mut follower: Follower, term: u64) -> Result<u64, String> {
        self.member.report.update(|ha| {
            ha.role = HaRole::Candidate;
            ha.term = Some(term);
        });
        let last = follower::journal_last(&mut self.stream).await?;
        info!(target: LOG_TARGET, term, journal_last = last, "Holding the lease; catching up with the journal");
        follower.catch_up(last).await?;
        Ok(last)
    }

    /// The lease is someone else's (or expired): stand by and follow the journal.
    async fn stand_by(&mut self, holder: Option<HaLeader>) -> Result<(), String> {
        self.member.lost(holder);
        self.held = None;
        self.following = Some(Following::spawn(self.member.follower(&self.stream).await?));
        Ok(())
    }

    /// When a leader that could not renew its lease stops leading: two thirds of the lease
    /// after the last renewal, a third before another member may take it.
    fn stand_down_at(&self) -> Instant {
        self.renewed_at + self.member.config.lease * 2 / 3
    }

    /// Renews the lease, waiting no later than the moment to stand down.
    async fn renew(&self, held: Held) -> Result<Held, RenewError> {
        let wait = (self.member.config.lease / 3)
            .min(self.stand_down_at().saturating_duration_since(Instant::now()));
        tokio::time::timeout(wait, self.lease.renew(held)).await.unwrap_or_else(|_| {
            Err(RenewError::Unavailable(format!("the lease's renewal took over {wait:?}")))
        })
    }
}

/// Ends when replaying failed; pending while no follower runs.
async fn failed(following: &mut Option<Following>) -> String {
    match following {
        Some(following) => following.failed().await,
        None => std::future::pending().await,
    }
}
