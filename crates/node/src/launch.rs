//! Wiring: L1 collector, store, ingestion task, JSON-RPC listeners and metrics, from start to
//! a clean stop.

use crate::{
    ConfigError, L1Config, NodeConfig, dev,
    observe::{self, Observed},
};
use ferry_messaging::{
    CollectorError, DrainExit, EthereumCollector, EthereumConfig, MessagingController, Status,
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
    /// The endpoint is on another chain than configured.
    #[error(
        "--l1.chain-id is {configured} but the L1 endpoint {url} reports chain id {reported}; \
         refusing to start"
    )]
    ChainIdMismatch {
        /// `--l1.chain-id`.
        configured: u64,
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
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<(), NodeError> {
    tokio::pin!(shutdown);
    let metrics = match config.metrics_addr {
        Some(addr) => Some((
            addr,
            observe::install_recorder().map_err(|reason| NodeError::Metrics { addr, reason })?,
        )),
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

    // The store needs the chain id, which the collector asks L1 for; status is filled from the
    // store once it is open.
    let status = Arc::new(Status::new());
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
    let (collector, chain_id) = tokio::select! {
        biased;
        () = &mut shutdown => return Ok(()),
        connected = connect => connected?,
    };
    if let Some(configured) = l1.chain_id
        && configured != chain_id
    {
        return Err(NodeError::ChainIdMismatch {
            configured,
            reported: chain_id,
            url: l1.rpc_url.clone(),
        });
    }

    let store = Store::open(
        &datadir,
        StoreConfig { chain_id, contract: l1.contract, from_block: config.from_block },
    )?;
    status.restore(&store)?;
    let controller = MessagingController::new(store.clone(), Arc::clone(&status))
        .with_reorg_window(config.reorg_window);
    let rpc = RpcServer::start(
        RpcConfig {
            public_addr: config.rpc_addr,
            admin_addr: config.admin_addr,
            jwt_secret,
            limits: ferry_rpc::Limits {
                max_connections: config.rpc_max_connections,
                max_subscriptions_total: config.rpc_max_subscriptions,
                ..ferry_rpc::Limits::default()
            },
        },
        controller.clone(),
        env!("CARGO_PKG_VERSION"),
    )
    .await?;
    let metrics_task = match metrics {
        Some((addr, handle)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| NodeError::Metrics { addr, reason: error.to_string() })?;
            let observed = Observed {
                metrics: handle,
                status: Arc::clone(&status),
                ready_max_lag: config.ready_max_lag,
            };
            Some(tokio::spawn(observe::serve(listener, observed)))
        }
        None => None,
    };
    let mut drain = controller
        .start(Arc::new(collector))
        .map_err(|error| NodeError::Ingestion(error.to_string()))?;
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
    if let Some(task) = metrics_task {
        task.abort();
    }
    drop((controller, status, store));
    info!(target: LOG_TARGET, "Stopped; the database is closed");
    match failed {
        Some(reason) => Err(NodeError::IngestionStopped(reason)),
        None => Ok(()),
    }
}

fn ethereum_config(l1: &L1Config, config: &NodeConfig) -> EthereumConfig {
    let mut ethereum = EthereumConfig::new(l1.rpc_url.clone(), l1.contract);
    ethereum.confirmations = config.confirmations;
    ethereum.poll_interval = config.poll_interval;
    ethereum.max_block_range = config.max_block_range;
    ethereum
}
