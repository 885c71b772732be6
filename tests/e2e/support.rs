//! What the end-to-end tests share: Anvil with the project's contract, the `ferry` binary
//! started on free loopback ports (and stopped by process id), and store checks.

use alloy::{
    node_bindings::AnvilInstance,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use ferry_contracts::FerryMessaging;
use ferry_primitives::Seq;
use ferry_rpc_api::{NodeStatus, PublicApiClient};
use ferry_storage::{Store, StoreConfig};
use ferry_test_support::anvil_path;
use jsonrpsee::http_client::HttpClient;
use std::{
    collections::HashSet,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The `ferry` binary: `$FERRY_BIN`, or `target/<profile>/ferry` beside this test executable,
/// built first (once per test process, with the faults the tests inject compiled in), so that
/// `cargo test -p ferry-tests` alone runs the code it was built from. `scripts/test.sh`
/// builds it once and sets `FERRY_BIN`.
pub(crate) fn ferry_bin() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("FERRY_BIN") {
                return PathBuf::from(path);
            }
            // Cargo says which cargo runs the tests in CARGO.
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let built = Command::new(cargo)
                .args(["build", "--quiet", "-p", "ferry", "--features", "fault-injection"])
                .status()
                .unwrap();
            assert!(built.success(), "cargo build -p ferry --features fault-injection failed");
            let exe = std::env::current_exe().unwrap();
            exe.parent().and_then(Path::parent).unwrap().join("ferry")
        })
        .clone()
}

pub(crate) fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

pub(crate) fn anvil() -> AnvilInstance {
    ferry_test_support::anvil(&[])
}

pub(crate) type Messaging = FerryMessaging::FerryMessagingInstance<DynProvider>;

pub(crate) async fn deploy(anvil: &AnvilInstance) -> Messaging {
    let provider = ProviderBuilder::new()
        .wallet(anvil.wallet().unwrap())
        .connect_http(anvil.endpoint_url())
        .erased();
    FerryMessaging::deploy(provider).await.unwrap()
}

/// Sends `count` messages in one transaction; returns its block.
pub(crate) async fn send_many(contract: &Messaging, count: u64) -> u64 {
    let call = contract.sendMessagesToL2(
        U256::from(1),
        U256::from(2),
        vec![U256::from(3)],
        U256::from(count),
    );
    mined_block(call.send().await.unwrap()).await
}

/// The block a sent transaction was mined in (30 s at most).
async fn mined_block(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> u64 {
    let receipt = pending.with_timeout(Some(Duration::from_secs(30))).get_receipt().await.unwrap();
    receipt.block_number.unwrap()
}

pub(crate) async fn head(contract: &Messaging) -> u64 {
    contract.provider().get_block_number().await.unwrap()
}

/// How to start a `ferry` process beyond its arguments.
#[derive(Debug, Default)]
pub(crate) struct Launch {
    /// Extra environment variables.
    pub(crate) env: Vec<(String, String)>,
    /// `ulimit -n` for the process.
    pub(crate) fd_limit: Option<u32>,
    /// Where stderr goes instead of a pipe (which a flood of lines would fill and block).
    pub(crate) stderr_file: Option<PathBuf>,
}

/// A running `ferry` process.
pub(crate) struct Ferry {
    pub(crate) child: Child,
    pub(crate) public: SocketAddr,
    pub(crate) admin: SocketAddr,
    /// What it wrote on stderr, when it exited while starting.
    early_stderr: Option<String>,
}

impl Ferry {
    /// Starts `ferry` with `args`, its own listener ports and `datadir`, and waits until it
    /// listens or exits. Ports are picked free beforehand; if another process takes one in
    /// between, it starts again on others.
    pub(crate) fn start(datadir: &Path, args: &[&str]) -> Self {
        Self::launch(datadir, args, &Launch::default())
    }

    /// Like [`Ferry::start`], in the environment `launch` describes.
    pub(crate) fn launch(datadir: &Path, args: &[&str], launch: &Launch) -> Self {
        for _ in 0..5 {
            let (public, admin) = (free_addr(), free_addr());
            // Under a file-descriptor limit, through the shell's ulimit (then exec: the child
            // is ferry itself).
            let mut command = match launch.fd_limit {
                Some(limit) => {
                    let mut command = Command::new("bash");
                    command.args(["-c", &format!("ulimit -n {limit} && exec \"$@\""), "ferry"]);
                    command.arg(ferry_bin());
                    command
                }
                None => Command::new(ferry_bin()),
            };
            command
                .args(args)
                .args(["--rpc.addr", &public.to_string(), "--admin.addr", &admin.to_string()])
                .args(["--datadir", datadir.to_str().unwrap()])
                .env("ANVIL_PATH", anvil_path())
                .env("RUST_LOG", "info")
                .envs(launch.env.iter().map(|(name, value)| (name, value)))
                .stdout(Stdio::piped());
            match &launch.stderr_file {
                Some(path) => command.stderr(std::fs::File::create(path).unwrap()),
                None => command.stderr(Stdio::piped()),
            };
            let mut child = command.spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(_exit) = child.try_wait().unwrap() {
                    let mut ferry = Self { child, public, admin, early_stderr: None };
                    let stderr = match &launch.stderr_file {
                        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
                        None => ferry.stderr(),
                    };
                    if stderr.contains("cannot bind") {
                        break; // a port was taken meanwhile: try others
                    }
                    ferry.early_stderr = Some(stderr);
                    return ferry;
                }
                if std::net::TcpStream::connect(public).is_ok() || Instant::now() > deadline {
                    return Self { child, public, admin, early_stderr: None };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not find free ports for ferry in 5 tries");
    }

    /// A node reading `contract` on `anvil`, from block 0.
    pub(crate) fn against(
        anvil: &AnvilInstance,
        contract: Address,
        datadir: &Path,
        extra: &[&str],
    ) -> Self {
        let contract = contract.to_string();
        let url = anvil.ws_endpoint();
        let mut args = vec!["--l1.rpc-url", url.as_str(), "--l1.contract", contract.as_str()];
        args.extend_from_slice(extra);
        Self::start(datadir, &args)
    }

    pub(crate) fn public_client(&self) -> HttpClient {
        HttpClient::builder().build(format!("http://{}", self.public)).unwrap()
    }

    /// Polls status until `condition` holds (20 s at most).
    pub(crate) async fn wait_status(
        &mut self,
        what: &str,
        condition: impl Fn(&NodeStatus) -> bool,
    ) -> NodeStatus {
        let client = self.public_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = client.status().await;
            if let Ok(status) = &status
                && condition(status)
            {
                return status.clone();
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!("ferry exited ({exit}) while waiting until {what}: {}", self.stderr());
            }
            if Instant::now() >= deadline {
                self.signal("-KILL");
                let _ = self.child.wait();
                panic!(
                    "timed out waiting until {what}; last status {status:?}; the node wrote: {}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (20 s at most) for the process to exit.
    pub(crate) async fn exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "ferry did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM and wait; the exit status.
    pub(crate) async fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.exit().await
    }

    /// What the process wrote on stderr (once it has exited).
    pub(crate) fn stderr(&mut self) -> String {
        if let Some(text) = self.early_stderr.take() {
            return text;
        }
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    }

    /// What the process wrote on stdout (once it has exited).
    pub(crate) fn stdout(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        }
        text
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ferry` to completion with `args`: exit status, stdout, stderr.
pub(crate) fn ferry_once(args: &[&str]) -> (ExitStatus, String, String) {
    let output = Command::new(ferry_bin()).args(args).output().unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Opens a stopped node's store and checks it: seqs 0..n, no hash twice, and every stored
/// message logged before the checkpoint. Returns the stored nonces in seq order.
pub(crate) fn check_store(datadir: &Path, chain_id: u64, contract: Address) -> Vec<U256> {
    let store = Store::open(datadir, StoreConfig { chain_id, contract, from_block: 0 }).unwrap();
    let messages = store.messages_from(Seq::ZERO, usize::MAX).unwrap();
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq.0).collect();
    assert_eq!(seqs, (0..messages.len() as u64).collect::<Vec<_>>(), "seqs are contiguous");
    let hashes: HashSet<_> = messages.iter().map(|m| m.hash).collect();
    assert_eq!(hashes.len(), messages.len(), "no message is stored twice");
    let checkpoint = store.resume_position(store.checkpoint().unwrap());
    assert!(
        messages.iter().all(|m| m.l1.origin.position() < checkpoint),
        "all before the checkpoint"
    );
    messages.iter().map(|m| m.l1.message.nonce).collect()
}

/// One HTTP GET: status and body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

/// One HTTP POST of `body` with an optional Authorization header: status and body.
pub(crate) async fn http_post(
    addr: SocketAddr,
    body: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = authorization.map(|value| format!("authorization: {value}\r\n")).unwrap_or_default();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{auth}connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413) and close before reading all of a large body.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}
