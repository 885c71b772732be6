//! Wiring: L1 collector, store, ingestion task, JSON-RPC listeners and metrics, from start to
//! a clean stop.

use crate::{
    ConfigError, L1Config, NodeConfig, dev,
    observe::{self, Observed},
};
use ferry_messaging::{
    CollectorError, ControllerError, DrainExit, DrainHandle, EthereumCollector, EthereumConfig,
    MessagingController, Status,
};
use ferry_rpc::{JwtError, JwtSecret, RpcConfig, RpcServer, ServerError};
use ferry_storage::{Store, StoreConfig};
use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc};
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
    /// The ingestion task could not start.
    #[error("cannot start the ingestion task: {0}")]
    Ingestion(String),
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
    let metrics_task = match config.metrics_addr {
        Some(addr) => {
            let handle = observe::install_recorder()
                .map_err(|reason| NodeError::Metrics { addr, reason })?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| NodeError::Metrics { addr, reason: error.to_string() })?;
            let observed = Observed {
                metrics: handle,
                status: Arc::clone(&status),
                ready_max_lag: config.ready_max_lag,
            };
            Some(AbortOnDrop(tokio::spawn(observe::serve(listener, observed))))
        }
        None => None,
    };

    // Dev mode starts its own chain; it lives as long as this function.
    let (dev_chain, l1) = match &config.l1 {
        Some(l1) => (None, l1.clone()),
        None => {
            let messages = config.dev_messages.unwrap_or_default();
            let chain = dev::DevChain::start(messages).await?;
            let l1 = chain.l1_config();
            (Some(chain), l1)
        }
    };
    let temporary_datadir;
    let datadir: PathBuf = match &config.datadir {
        Some(datadir) => datadir.clone(),
        None => {
            temporary_datadir = tempfile::Builder::new()
                .prefix("ferry-dev-")
                .tempdir()
                .map_err(|error| NodeError::Dev(format!("cannot create a datadir: {error}")))?;
            temporary_datadir.path().to_owned()
        }
    };
    let jwt_secret = config.admin_jwt_secret.as_deref().map(JwtSecret::from_file).transpose()?;

    status.set_connecting("the L1 provider has not answered yet".to_owned());
    let open = |chain_id| {
        Store::open(
            &datadir,
            StoreConfig { chain_id, contract: l1.contract, from_block: config.from_block },
        )
    };
    let early = match l1.chain_id {
        Some(chain_id) => Some(open(chain_id)?),
        None => Store::open_existing(&datadir, l1.contract, config.from_block)?,
    };
    let mut serving = match early {
        Some(store) => {
            let serving = Serving::start(store, &status, &config, jwt_secret.clone()).await?;
            info!(target: LOG_TARGET, chain_id = serving.store.config().chain_id,
                public = %serving.rpc.public_addr(), admin = %serving.rpc.admin_addr(),
                "Serving the stored log; connecting to L1");
            Some(serving)
        }
        None => None,
    };

    let connect = async {
        let collector =
            EthereumCollector::connect(ethereum_config(&l1, &config), Arc::clone(&status))
                .await
                .map_err(|source| NodeError::L1 { url: l1.rpc_url.clone(), source })?;
        let reported = collector
            .chain_id()
            .await
            .map_err(|source| NodeError::L1 { url: l1.rpc_url.clone(), source })?;
        Ok::<_, NodeError>((collector, reported))
    };
    let connected = tokio::select! {
        biased;
        () = &mut shutdown => None,
        connected = connect => Some(connected),
    };
    let (collector, chain_id) = match connected {
        Some(Ok(connected)) => connected,
        Some(Err(error)) => {
            stop_serving(serving).await;
            return Err(error);
        }
        None => {
            info!(target: LOG_TARGET, "Shutting down before L1 answered");
            stop_serving(serving).await;
            return Ok(());
        }
    };
    let expected = match (&serving, l1.chain_id) {
        (_, Some(configured)) => Some((configured, None)),
        (Some(serving), None) => Some((serving.store.config().chain_id, Some(datadir.clone()))),
        (None, None) => None,
    };
    if let Some((expected, stored_in)) = expected
        && expected != chain_id
    {
        stop_serving(serving).await;
        return Err(NodeError::ChainIdMismatch {
            expected,
            stored_in,
            reported: chain_id,
            url: l1.rpc_url.clone(),
        });
    }
    let serving = match serving.take() {
        Some(serving) => serving,
        None => Serving::start(open(chain_id)?, &status, &config, jwt_secret).await?,
    };
    let Serving { store, controller, rpc } = serving;
    let mut drain = match start_ingestion(&controller, collector) {
        Ok(drain) => drain,
        Err(error) => {
            rpc.stop();
            rpc.stopped().await;
            return Err(NodeError::Ingestion(error.to_string()));
        }
    };
    info!(target: LOG_TARGET, chain_id, contract = %l1.contract, datadir = %datadir.display(),
        public = %rpc.public_addr(), admin = %rpc.admin_addr(), "ferry is running");
    if let Some(chain) = &dev_chain {
        chain.print_banner(rpc.public_addr(), rpc.admin_addr(), config.metrics_addr);
    }

    let failed = tokio::select! {
        biased;
        () = &mut shutdown => {
            info!(target: LOG_TARGET, "Shutting down");
            None
        }
        exit = drain.finished() => match exit {
            DrainExit::Shutdown => None,
            DrainExit::Failed(reason) => {
                error!(target: LOG_TARGET, %reason, "The ingestion task stopped; shutting down");
                Some(reason)
            }
        },
    };
    rpc.stop();
    drain.stop();
    drain.stopped().await;
    rpc.stopped().await;
    drop((metrics_task, controller, status, store));
    info!(target: LOG_TARGET, "Stopped; the database is closed");
    match failed {
        Some(reason) => Err(NodeError::IngestionStopped(reason)),
        None => Ok(()),
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

/// The store and what serves it: running before (or without) the ingestion task.
struct Serving {
    store: Store,
    controller: MessagingController,
    rpc: RpcServer,
}

impl Serving {
    async fn start(
        store: Store,
        status: &Arc<Status>,
        config: &NodeConfig,
        jwt_secret: Option<JwtSecret>,
    ) -> Result<Self, NodeError> {
        status.restore(&store)?;
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
        Ok(Self { store, controller, rpc })
    }
}

/// Stops the listeners of a node that never started ingesting, and closes its store.
async fn stop_serving(serving: Option<Serving>) {
    if let Some(Serving { store, controller, rpc }) = serving {
        rpc.stop();
        rpc.stopped().await;
        drop((controller, store));
    }
}

/// The metrics task, stopped with the node.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn ethereum_config(l1: &L1Config, config: &NodeConfig) -> EthereumConfig {
    let mut ethereum = EthereumConfig::new(l1.rpc_url.clone(), l1.contract);
    ethereum.confirmations = config.confirmations;
    ethereum.poll_interval = config.poll_interval;
    ethereum.max_block_range = config.max_block_range;
    ethereum
}
