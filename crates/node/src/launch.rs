//! Wiring: L1 collector, store, ingestion task, JSON-RPC listeners and metrics, from start to
//! a clean stop.

use crate::group::Leadership;
use crate::{
    ConfigError, L1Config, NodeConfig, dev,
    observe::{self, Observed, sink_report},
};
use ferry_ha::GroupHandle;
use ferry_messaging::{
    CollectorError, ControllerError, DrainExit, DrainHandle, EthereumCollector, EthereumConfig,
    MessagingController, Status,
};
use ferry_primitives::Address;
use ferry_rpc::{JwtError, JwtSecret, RpcConfig, RpcServer, ServerError};
use ferry_sink::{Publisher, SinkHandle};
use ferry_storage::{Store, StoreConfig};
use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};
use tracing::{error, info};

const LOG_TARGET: &str = "ferry::node";

/// Why the node could not start, or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// L1 could not be reached.
    #[error("cannot use the L1 endpoint {url}: {source}")]
    L1 {
        /// The endpoint.
        url: String,
        /// Why.
        source: CollectorError,
    },
    /// The endpoint is on another chain than configured, or than the database was created for.
    #[error(
        "{} is {expected} but the L1 endpoint {url} reports chain id {reported}; refusing to \
         read from it",
        match stored_in {
            Some(datadir) => format!("the chain id of the database in {}", datadir.display()),
            None => "--l1.chain-id".to_owned(),
        }
    )]
    ChainIdMismatch {
        /// `--l1.chain-id`, or the database's.
        expected: u64,
        /// The datadir, when the expected id is the database's.
        stored_in: Option<PathBuf>,
        /// What `eth_chainId` answered.
        reported: u64,
        /// The endpoint.
        url: String,
    },
    /// The database could not be opened (or belongs to another chain or contract).
    #[error(transparent)]
    Storage(#[from] ferry_storage::Error),
    /// The JWT secret file is not usable.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The JSON-RPC listeners could not start.
    #[error(transparent)]
    Rpc(#[from] ServerError),
    /// The metrics endpoint could not start.
    #[error("cannot serve metrics on {addr}: {reason}")]
    Metrics {
        /// `--metrics.addr`.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// Dev mode could not start its chain.
    #[error("dev mode: {0}")]
    Dev(String),
    /// Dev mode could not create its temporary data directory.
    #[error("dev mode: cannot create a temporary datadir: {0}")]
    TemporaryDatadir(#[source] std::io::Error),
    /// The node cannot join its high-availability group.
    #[error("cannot join the HA group: {0}")]
    Ha(#[from] ferry_ha::JoinError),
    /// The ingestion task could not start.
    #[error("cannot start the ingestion task: {0}")]
    Ingestion(#[from] ControllerError),
    /// The ingestion task ended without being asked to: the node stops and exits non-zero so
    /// that a supervisor restarts it.
    #[error("the ingestion task stopped: {0}")]
    IngestionStopped(String),
}

/// Runs the node until `shutdown` resolves, then stops the listeners, lets the ingestion task
/// finish or drop its batch (never half of one), and closes the database.
///
/// The listeners start before L1 is asked anything whenever the database can be opened
/// without it (it exists, or `--l1.chain-id` says which chain a new one is for): during an L1
/// outage at restart consumers still read what is stored and operators still reach the
/// admin API, while status shows the upstream down and `/ready` says not ready.
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    tokio::pin!(shutdown);
    let status = Arc::new(Status::new());
    let metrics = start_metrics(&config, &status).await?;
    // Dev mode starts its own chain and datadir; both live as long as this function.
    let source = L1Source::resolve(&config).await?;
    let datadir = Datadir::resolve(&config)?;
    let l1 = &source.l1;
    let jwt_secret = config.admin_jwt_secret.as_deref().map(JwtSecret::from_file).transpose()?;
    status.set_connecting("the L1 provider has not answered yet".to_owned());
    let opener = StoreOpener { datadir: datadir.path(), contract: l1.contract, config: &config };
    let serving = match opener.open_without_l1(l1.chain_id)? {
        Some(store) => Some(Serving::start(store, &status, &config, jwt_secret.clone()).await?),
        None => None,
    };
    if let Some(serving) = &serving {
        info!(target: LOG_TARGET, chain_id = serving.store.config().chain_id,
            public = %serving.rpc.public_addr(), admin = %serving.rpc.admin_addr(),
            "Serving the stored log; connecting to L1");
    }
    let connected = tokio::select! {
        biased;
        () = &mut shutdown => None,
        connected = connect_l1(l1, &config, &status) => Some(connected),
    };
    let (collector, chain_id) = match connected {
        Some(Ok(connected)) => connected,
        Some(Err(error)) => return Err(stop_serving(serving, error).await),
        None => {
            info!(target: LOG_TARGET, "Shutting down before L1 answered");
            stop_serving(serving, ()).await;
            return Ok(());
        }
    };
    if let Err(error) = check_chain_id(serving.as_ref(), l1, opener.datadir, chain_id) {
        return Err(stop_serving(serving, error).await);
    }
    let serving = match serving {
        Some(serving) => serving,
        None => Serving::start(opener.open(chain_id)?, &status, &config, jwt_secret).await?,
    };
    let Serving { store, controller, rpc, sink, group } = serving;
    let ingestion = match (group, &config.sink, &config.ha) {
        (Some(group), Some(sink), Some(ha)) => Ingestion::Group(Box::new(Leadership::new(
            group,
            controller.clone(),
            collector,
            crate::group::group_sink(sink, &ha.group),
            Arc::clone(&status),
        ))),
        (group, ..) => match start_ingestion(&controller, collector) {
            Ok(drain) => Ingestion::Solo(drain),
            Err(error) => {
                let serving = Some(Serving { store, controller, rpc, sink, group });
                return Err(stop_serving(serving, NodeError::Ingestion(error)).await);
            }
        },
    };
    info!(target: LOG_TARGET, chain_id, contract = %l1.contract, datadir = %opener.datadir.display(),
        public = %rpc.public_addr(), admin = %rpc.admin_addr(), "ferry is running");
    if let Some(chain) = &source.dev_chain {
        chain.print_banner(rpc.public_addr(), rpc.admin_addr(), config.metrics_addr);
    }
    let running = Running { store, controller, rpc, ingestion, sink, metrics };
    running.until_stopped(&mut shutdown).await
}

/// Step: the metrics endpoint, first, so that everything after it is counted.
async fn start_metrics(
    config: &NodeConfig,
    status: &Arc<Status>,
) -> Result<Option<MetricsTask>, NodeError> {
    let Some(addr) = config.metrics_addr else { return Ok(None) };
    let handle =
        observe::install_recorder().map_err(|reason| NodeError::Metrics { addr, reason })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| NodeError::Metrics { addr, reason: error.to_string() })?;
    let observed = Observed {
        metrics: handle,
        status: Arc::clone(status),
        ready_max_lag: config.ready_max_lag,
        sink_ready_max_lag: config.sink_ready_max_lag,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(observe::serve(listener, observed, shutdown));
    Ok(Some(MetricsTask { stop, task }))
}

/// The metrics endpoint's task and its shutdown signal.
struct MetricsTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsTask {
    async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            error!(target: LOG_TARGET, %error, "The metrics task failed");
        }
    }
}

/// Where L1 is: the configured endpoint, or dev mode's own chain (kept running as long as
/// this lives).
struct L1Source {
    l1: L1Config,
    dev_chain: Option<dev::DevChain>,
}

impl L1Source {
    async fn resolve(config: &NodeConfig) -> Result<Self, NodeError> {
        if let Some(l1) = &config.l1 {
            return Ok(Self { l1: l1.clone(), dev_chain: None });
        }
        let chain = dev::DevChain::start(config.dev_messages.unwrap_or_default()).await?;
        Ok(Self { l1: chain.l1_config(), dev_chain: Some(chain) })
    }
}

/// The data directory: the configured one, or (dev mode) a temporary one removed at the end.
enum Datadir {
    Configured(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Datadir {
    fn resolve(config: &NodeConfig) -> Result<Self, NodeError> {
        match &config.datadir {
            Some(datadir) => Ok(Self::Configured(datadir.clone())),
            None => tempfile::Builder::new()
                .prefix("ferry-dev-")
                .tempdir()
                .map(Self::Temporary)
                .map_err(NodeError::TemporaryDatadir),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Self::Configured(path) => path,
            Self::Temporary(dir) => dir.path(),
        }
    }
}

/// Opens the store in the datadir for the configured contract and start block.
struct StoreOpener<'a> {
    datadir: &'a Path,
    contract: Address,
    config: &'a NodeConfig,
}

impl StoreOpener<'_> {
    fn open(&self, chain_id: u64) -> Result<Store, NodeError> {
        let config =
            StoreConfig { chain_id, contract: self.contract, from_block: self.config.from_block };
        Ok(Store::open(self.datadir, config)?)
    }

    /// Step: the store, before L1 answers: for the configured chain id, or the database that
    /// exists; `None` when neither says which chain a new database is for.
    fn open_without_l1(&self, chain_id: Option<u64>) -> Result<Option<Store>, NodeError> {
        match chain_id {
            Some(chain_id) => self.open(chain_id).map(Some),
            None => Ok(Store::open_existing(self.datadir, self.contract, self.config.from_block)?),
        }
    }
}

/// Step: connects to L1 and asks its chain id.
async fn connect_l1(
    l1: &L1Config,
    config: &NodeConfig,
    status: &Arc<Status>,
) -> Result<(EthereumCollector, u64), NodeError> {
    let urls: Vec<String> = l1.rpc_urls.iter().map(|url| ferry_messaging::redact(url)).collect();
    let failed = |source| NodeError::L1 { url: urls.join(", "), source };
    let collector = EthereumCollector::connect(ethereum_config(l1, config), Arc::clone(status))
        .await
        .map_err(failed)?;
    let reported = collector.chain_id().await.map_err(failed)?;
    Ok((collector, reported))
}

/// Step: L1 is the chain configured, or the one the open database was created for.
fn check_chain_id(
    serving: Option<&Serving>,
    l1: &L1Config,
    datadir: &Path,
    reported: u64,
) -> Result<(), NodeError> {
    let expected = match (serving, l1.chain_id) {
        (_, Some(configured)) => Some((configured, None)),
        (Some(serving), None) => Some((serving.store.config().chain_id, Some(datadir.to_owned()))),
        (None, None) => None,
    };
    match expected {
        Some((expected, stored_in)) if expected != reported => Err(NodeError::ChainIdMismatch {
            expected,
            stored_in,
            reported,
            url: l1
                .rpc_urls
                .iter()
                .map(|url| ferry_messaging::redact(url))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        _ => Ok(()),
    }
}

/// Ingestion: the node's own, or its group's while it leads.
enum Ingestion {
    Solo(DrainHandle),
    Group(Box<Leadership>),
}

/// A node that ingests and serves, until it is told to stop or ingestion ends.
struct Running {
    store: Store,
    controller: MessagingController,
    rpc: RpcServer,
    ingestion: Ingestion,
    sink: Option<SinkHandle>,
    metrics: Option<MetricsTask>,
}

impl Running {
    /// Step: waits for `shutdown` or the end of ingestion, then stops everything in order.
    async fn until_stopped(
        self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<(), NodeError> {
        let Self { store, controller, rpc, ingestion, sink, metrics } = self;
        let failed = match ingestion {
            Ingestion::Solo(mut drain) => {
                let failed = tokio::select! {
                    biased;
                    () = shutdown.as_mut() => None,
                    exit = drain.finished() => match exit {
                        DrainExit::Shutdown => None,
                        DrainExit::Failed(reason) => Some(reason),
                    },
                };
                rpc.stop();
                drain.stop();
                drain.stopped().await;
                failed
            }
            Ingestion::Group(mut leadership) => {
                let failed = leadership.run(shutdown).await;
                rpc.stop();
                // Ingestion stops before the lease is given up: nothing is written after.
                leadership.stop().await;
                leadership.group.stop().await;
                failed
            }
        };
        match &failed {
            Some(reason) => {
                error!(target: LOG_TARGET, %reason, "The ingestion task stopped; shutting down");
            }
            None => info!(target: LOG_TARGET, "Shutting down"),
        }
        rpc.stopped().await;
        if let Some(sink) = sink {
            sink.stop().await;
        }
        if let Some(metrics) = metrics {
            metrics.stop().await;
        }
        drop((controller, store));
        info!(target: LOG_TARGET, "Stopped; the database is closed");
        match failed {
            Some(reason) => Err(NodeError::IngestionStopped(reason)),
            None => Ok(()),
        }
    }
}

/// Starts the drain task on `collector`, with the fault the tests asked for, if any.
fn start_ingestion(
    controller: &MessagingController,
    collector: EthereumCollector,
) -> Result<DrainHandle, ControllerError> {
    #[cfg(feature = "fault-injection")]
    if let Some(block) = crate::faults::panic_at_block() {
        let faulty = crate::faults::PanicAtBlock { inner: collector, block };
        return controller.start(Arc::new(faulty));
    }
    controller.start(Arc::new(collector))
}

/// The store and what serves it (the listeners, the sink): running before (or without) the
/// ingestion task.
struct Serving {
    store: Store,
    controller: MessagingController,
    rpc: RpcServer,
    /// The node's own publisher (a group's leader starts its own while it leads).
    sink: Option<SinkHandle>,
    group: Option<GroupHandle>,
}

impl Serving {
    async fn start(
        store: Store,
        status: &Arc<Status>,
        config: &NodeConfig,
        jwt_secret: Option<JwtSecret>,
    ) -> Result<Self, NodeError> {
        status.restore(&store)?;
        // Joined before the listeners start: no admin write can reach the store outside the
        // group's journal.
        let member = match (&config.ha, &config.sink) {
            (Some(ha), Some(sink)) => Some(crate::group::join(ha, sink, &store, status)?),
            _ => None,
        };
        let controller = MessagingController::new(store.clone(), Arc::clone(status))
            .with_reorg_window(config.reorg_window);
        let rpc = RpcServer::start(
            RpcConfig {
                public_addr: config.rpc_addr,
                admin_addr: config.admin_addr,
                jwt_secret,
                limits: config.rpc_limits,
                public_access: config.public_access.clone(),
                admin_access: config.admin_access.clone(),
            },
            controller.clone(),
            env!("CARGO_PKG_VERSION"),
        )
        .await?;
        let (sink, group) = match (member, &config.sink) {
            (Some(member), _) => {
                let member =
                    member.serving_at(rpc.admin_addr().to_string(), rpc.public_addr().to_string());
                (None, Some(member.spawn()))
            }
            (None, Some(sink)) => {
                let report = sink_report(status);
                (Some(Publisher::new(sink.clone(), store.clone(), report)?.spawn()), None)
            }
            (None, None) => (None, None),
        };
        Ok(Self { store, controller, rpc, sink, group })
    }
}

/// Stops the listeners of a node that never started ingesting, closes its store, and hands
/// back `outcome` (the error that stopped the start).
async fn stop_serving<T>(serving: Option<Serving>, outcome: T) -> T {
    if let Some(Serving { store, controller, rpc, sink, group }) = serving {
        rpc.stop();
        rpc.stopped().await;
        if let Some(sink) = sink {
            sink.stop().await;
        }
        if let Some(group) = group {
            group.stop().await;
        }
        drop((controller, store));
    }
    outcome
}

fn ethereum_config(l1: &L1Config, config: &NodeConfig) -> EthereumConfig {
    let mut ethereum = EthereumConfig::new(String::new(), l1.contract);
    ethereum.urls = l1.rpc_urls.clone();
    ethereum.mode = config.l1_trust.mode;
    ethereum.max_head_lag = config.l1_trust.max_head_lag;
    ethereum.verify_logs = config.l1_trust.verify_logs;
    ethereum.disagreement_halt = config.l1_trust.disagreement_halt;
    ethereum.request_timeout = config.l1_trust.request_timeout;
    ethereum.max_rps = config.l1_trust.max_rps;
    ethereum.confirmations = config.confirmations;
    ethereum.poll_interval = config.poll_interval;
    ethereum.max_block_range = config.max_block_range;
    ethereum
}
