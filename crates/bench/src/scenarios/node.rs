//! The pipeline in this process, against an Anvil, for the scenarios that measure it in-process; and an RPC server over it.

use alloy::primitives::Address;
use ferry_messaging::{
    DrainHandle, EthereumCollector, EthereumConfig, MessagingController, Status, VerifyLogs,
};
use ferry_primitives::Position;
use ferry_rpc::{RpcConfig, RpcServer};
use ferry_storage::{Store, StoreConfig};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tempfile::TempDir;

/// The pipeline in this process, on a fresh datadir.
pub(crate) struct Node {
    _dir: TempDir,
    pub(crate) store: Store,
    pub(crate) status: Arc<Status>,
    pub(crate) controller: MessagingController,
    handle: DrainHandle,
}

pub(crate) async fn start_node(
    url: &str,
    contract: Address,
    max_block_range: u64,
    poll: Duration,
) -> Node {
    start_node_verifying(url, contract, max_block_range, poll, VerifyLogs::default()).await
}

/// [`start_node`], proving logs as `verify_logs` says.
pub(crate) async fn start_node_verifying(
    url: &str,
    contract: Address,
    max_block_range: u64,
    poll: Duration,
    verify_logs: VerifyLogs,
) -> Node {
    let dir = tempfile::tempdir().unwrap();
    start_node_in(dir, url, contract, (max_block_range, poll), verify_logs).await
}

/// The pipeline in this process, on the datadir `dir` (which may hold a store already).
pub(crate) async fn start_node_in(
    dir: TempDir,
    url: &str,
    contract: Address,
    (max_block_range, poll): (u64, Duration),
    verify_logs: VerifyLogs,
) -> Node {
    let store =
        Store::open(dir.path(), StoreConfig { chain_id: 31337, contract, from_block: 0 }).unwrap();
    let status = Arc::new(Status::load(&store).unwrap());
    let mut config = EthereumConfig::new(url, contract);
    config.max_block_range = max_block_range;
    config.poll_interval = poll;
    config.verify_logs = verify_logs;
    let collector = EthereumCollector::connect(config, Arc::clone(&status)).await.unwrap();
    let controller = MessagingController::new(store.clone(), Arc::clone(&status));
    let handle = controller.start(Arc::new(collector)).unwrap();
    Node { _dir: dir, store, status, controller, handle }
}

impl Node {
    pub(crate) async fn wait_cursor(&self, done: impl Fn(Position) -> bool) {
        loop {
            if self.status.snapshot().cursor.is_some_and(&done) {
                return;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    pub(crate) async fn stop(mut self) {
        self.handle.stop();
        self.handle.stopped().await;
    }
}

pub(crate) async fn rpc_server(controller: MessagingController) -> RpcServer {
    let config = RpcConfig {
        public_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..RpcConfig::default()
    };
    RpcServer::start(config, controller, "bench").await.unwrap()
}
