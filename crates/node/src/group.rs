//! The node in a high-availability group: joining it (the store then writes through the
//! group's journal), and starting or stopping ingestion and publishing as the member's role
//! changes.

use crate::{HaSettings, observe::sink_report};
use ferry_ha::{GroupHandle, GroupReport, HaConfig, JoinError, Member, Role};
use ferry_messaging::{DrainExit, DrainHandle, EthereumCollector, MessagingController, Status};
use ferry_sink::{Publisher, SinkConfig, SinkHandle};
use ferry_storage::Store;
use std::{future::Future, sync::Arc};
use tokio::sync::watch;
use tracing::{error, info};

const LOG_TARGET: &str = "ferry::node";

/// Makes `store` a member of the group (before anything can write it), ready to run once the
/// listeners' addresses are known.
pub(crate) fn join(
    ha: &HaSettings,
    sink: &SinkConfig,
    store: &Store,
    status: &Arc<Status>,
) -> Result<Member, JoinError> {
    let config = HaConfig {
        group: ha.group.clone(),
        lease: ha.lease,
        admin: String::new(),
        public: String::new(),
    };
    let reported = Arc::clone(status);
    let replicated = Arc::clone(status);
    let report = GroupReport::new(
        move |change| reported.update_ha(change),
        move |store| {
            if let Err(error) = replicated.record_replicated(store) {
                error!(target: LOG_TARGET, %error, "Cannot read what the journal brought");
            }
        },
    );
    Member::join(config, group_sink(sink, &ha.group), store.clone(), report)
}

/// The sink as a group publishes: the stream is the group's.
pub(crate) fn group_sink(sink: &SinkConfig, group: &str) -> SinkConfig {
    SinkConfig { group: Some(group.to_owned()), ..sink.clone() }
}

/// Ingestion and publishing, run while this member leads.
pub(crate) struct Leadership {
    pub(crate) group: GroupHandle,
    roles: watch::Receiver<Role>,
    controller: MessagingController,
    collector: Arc<EthereumCollector>,
    sink: SinkConfig,
    status: Arc<Status>,
    drain: Option<DrainHandle>,
    publisher: Option<SinkHandle>,
    generation: Option<u64>,
}

impl Leadership {
    pub(crate) fn new(
        group: GroupHandle,
        controller: MessagingController,
        collector: EthereumCollector,
        sink: SinkConfig,
        status: Arc<Status>,
    ) -> Self {
        group.set_eligible();
        Self {
            roles: group.roles(),
            group,
            controller,
            collector: Arc::new(collector),
            sink,
            status,
            drain: None,
            publisher: None,
            generation: None,
        }
    }

    /// Follows the member's role until `shutdown` (`None`) or a failure of ingestion or of
    /// the member (`Some(why)`).
    pub(crate) async fn run(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Option<String> {
        loop {
            let role = *self.roles.borrow_and_update();
            if let Err(reason) = self.follow(role).await {
                return Some(reason);
            }
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return None,
                changed = self.roles.changed() => {
                    if changed.is_err() {
                        return Some("the HA group member stopped".to_owned());
                    }
                }
                exit = finished(&mut self.drain) => match exit {
                    DrainExit::Shutdown => self.drain = None,
                    DrainExit::Failed(reason) => return Some(reason),
                },
            }
        }
    }

    /// Starts ingesting and publishing as a (new) leader, or stops as a standby.
    async fn follow(&mut self, role: Role) -> Result<(), String> {
        match role {
            Role::Standby => {
                if self.drain.is_some() || self.publisher.is_some() {
                    info!(target: LOG_TARGET, "Standing by: ingestion and publishing stop");
                }
                self.stop().await;
                self.generation = None;
            }
            Role::Leader { term, generation } if self.generation != Some(generation) => {
                self.stop().await;
                info!(target: LOG_TARGET, term, "Leading: ingestion and publishing start");
                let drain = self
                    .controller
                    .start(Arc::clone(&self.collector))
                    .map_err(|error| format!("cannot start ingestion: {error}"))?;
                self.drain = Some(drain);
                let report = sink_report(&self.status);
                let store = self.controller.store().clone();
                let publisher = Publisher::new(self.sink.clone(), store, report)
                    .map_err(|error| format!("cannot start publishing: {error}"))?;
                self.publisher = Some(publisher.spawn());
                self.generation = Some(generation);
            }
            Role::Leader { .. } => {}
        }
        Ok(())
    }

    /// Stops ingestion (waiting for it) and publishing.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut drain) = self.drain.take() {
            drain.stop();
            drain.stopped().await;
        }
        if let Some(publisher) = self.publisher.take() {
            publisher.stop().await;
        }
    }
}

async fn finished(drain: &mut Option<DrainHandle>) -> DrainExit {
    match drain {
        Some(drain) => drain.finished().await,
        None => std::future::pending().await,
    }
}
