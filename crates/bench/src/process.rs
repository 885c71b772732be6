//! The node as its own process (the release `ferry` binary), so that the memory measured is
//! the node's alone, not shared with the benchmark's clients.

use crate::stats::proc_kib;
use alloy::primitives::Address;
use ferry_primitives::Position;
use ferry_rpc_api::{AdminApiClient, PublicApiClient};
use jsonrpsee::http_client::HttpClient;
use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};
use tempfile::TempDir;

/// The release `ferry` binary beside this benchmark, built once per run first.
pub(crate) fn ferry_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // `cargo run` says which cargo it is in CARGO.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "--release", "--quiet", "-p", "ferry"])
            .status()
            .unwrap();
        assert!(built.success(), "cargo build --release -p ferry failed");
        std::env::current_exe().unwrap().with_file_name("ferry")
    })
}

pub(crate) fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Resident memory of a process, from `/proc/<pid>/status`, in MiB.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// RssAnon: the process's own memory (heap, stacks) resident now.
    pub(crate) anon: f64,
    /// RssFile: mapped file pages resident now, MDBX's database mostly (the kernel's page
    /// cache, shared and reclaimable).
    pub(crate) file: f64,
    /// VmHWM: the peak of all resident memory so far.
    pub(crate) peak: f64,
}

/// A running `ferry` process on a fresh datadir.
pub(crate) struct NodeProcess {
    child: Child,
    pub(crate) public: SocketAddr,
    admin: HttpClient,
    _dir: TempDir,
}

impl NodeProcess {
    /// Starts `ferry` reading `contract` at `url`, its public listener taking `connections`
    /// connections and subscriptions.
    pub(crate) async fn start(url: &str, contract: Address, connections: u32) -> Self {
        Self::start_with(url, contract, connections, &[]).await
    }

    /// Like [`Self::start`], with more command-line arguments.
    pub(crate) async fn start_with(
        url: &str,
        contract: Address,
        connections: u32,
        extra: &[&str],
    ) -> Self {
        let binary = ferry_binary();
        let dir = tempfile::tempdir().unwrap();
        let (public, admin) = (free_addr(), free_addr());
        let limit = connections.to_string();
        let child = Command::new(binary)
            .args(["--l1.rpc-url", url, "--l1.contract", &contract.to_string()])
            .args(["--datadir", dir.path().to_str().unwrap()])
            .args(["--rpc.addr", &public.to_string(), "--admin.addr", &admin.to_string()])
            .args(["--rpc.max-connections", &limit, "--rpc.max-subscriptions", &limit])
            // Every subscriber comes from 127.0.0.1.
            .args(["--rpc.max-subscriptions-per-peer", &limit])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("FERRY_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let admin = HttpClient::builder().build(format!("http://{admin}")).unwrap();
        let node = Self { child, public, admin, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while node.admin.get_checkpoint().await.is_err() {
            assert!(Instant::now() < deadline, "ferry did not start listening within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node
    }

    /// Waits until the checkpoint is `position`.
    /// Polled every 1 % of the time waited so far (5 to 50 ms): often enough to time a run
    /// to 1 %, seldom enough that answering the polls does not add to the node's CPU.
    pub(crate) async fn wait_checkpoint(&self, position: Position) {
        let started = Instant::now();
        while self.admin.get_checkpoint().await.unwrap() != Some(position) {
            let every = (started.elapsed() / 100)
                .clamp(Duration::from_millis(5), Duration::from_millis(50));
            tokio::time::sleep(every).await;
        }
    }

    /// The node's count of stored messages.
    pub(crate) async fn messages_stored(&self) -> u64 {
        let public = HttpClient::builder().build(format!("http://{}", self.public)).unwrap();
        public.status().await.unwrap().messages_stored
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its status, if it answers within half a second.
    pub(crate) async fn try_status(&self) -> Option<ferry_rpc_api::NodeStatus> {
        let public = HttpClient::builder()
            .request_timeout(Duration::from_millis(500))
            .build(format!("http://{}", self.public))
            .ok()?;
        public.status().await.ok()
    }

    /// Its status.
    pub(crate) async fn status(&self) -> ferry_rpc_api::NodeStatus {
        let public = HttpClient::builder().build(format!("http://{}", self.public)).unwrap();
        public.status().await.unwrap()
    }

    pub(crate) fn memory(&self) -> Memory {
        let status = format!("/proc/{}/status", self.child.id());
        let field = |name: &str| proc_kib(&status, name).map_or(0.0, |kib| kib as f64 / 1024.0);
        Memory { anon: field("RssAnon:"), file: field("RssFile:"), peak: field("VmHWM:") }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
