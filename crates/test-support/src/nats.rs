//! `nats-server` for the sink's tests: one server or a three-node cluster with JetStream, on
//! free loopback ports with temporary store directories, stopped by process id when dropped.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The `nats-server` binary: `$NATS_SERVER_PATH`, or the one on `PATH` (Debian's package,
/// which `scripts/install-tools.sh` installs when it is missing).
pub fn nats_server_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("NATS_SERVER_PATH") {
            return PathBuf::from(path);
        }
        std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("nats-server"))
                    .find(|candidate| candidate.is_file())
            })
            .unwrap_or_else(|| {
                panic!(
                    "nats-server not found: set NATS_SERVER_PATH or run scripts/install-tools.sh \
                     (it installs Debian's nats-server package)"
                )
            })
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or_else(|error| panic!("no free loopback port: {error}"), |addr| addr.port())
}

/// One running `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    /// Its client port.
    pub port: u16,
    /// Its cluster port (in a cluster).
    cluster_port: Option<u16>,
    /// Its JetStream store (kept across [`NatsServer::restart`]).
    store: tempfile::TempDir,
    name: String,
    routes: Vec<u16>,
}

impl NatsServer {
    /// A single server.
    pub fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            cluster_port: None,
            store: tempfile::tempdir().unwrap_or_else(|error| panic!("no temp dir: {error}")),
            name: "ferry-test".to_owned(),
            routes: Vec::new(),
        };
        server.spawn();
        server
    }

    /// Its client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn spawn(&mut self) {
        let mut command = Command::new(nats_server_path());
        command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js"])
            .args(["-sd", self.store.path().to_str().unwrap_or_default()])
            .args(["-n", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(cluster_port) = self.cluster_port {
            let routes: Vec<String> =
                self.routes.iter().map(|port| format!("nats://127.0.0.1:{port}")).collect();
            command
                .args(["--cluster_name", "ferry"])
                .args(["--cluster", &format!("nats://127.0.0.1:{cluster_port}")])
                .args(["--routes", &routes.join(",")]);
        }
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start {}: {error}", nats_server_path().display())
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {}", self.addr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the server (SIGKILL, by process id), keeping its store.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three clustered servers (JetStream replicated with RAFT) on loopback.
#[derive(Debug)]
pub struct NatsCluster {
    /// The servers.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` servers routed to each other.
    pub fn start(size: usize) -> Self {
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let servers = (0..size)
            .map(|index| {
                let mut server = NatsServer {
                    child: None,
                    port: free_port(),
                    cluster_port: Some(cluster_ports[index]),
                    store: tempfile::tempdir()
                        .unwrap_or_else(|error| panic!("no temp dir: {error}")),
                    name: format!("ferry-test-{index}"),
                    routes: cluster_ports.clone(),
                };
                server.spawn();
                server
            })
            .collect();
        Self { servers }
    }

    /// Every server's client URL, comma-separated (as `--sink.nats-url` takes them).
    pub fn urls(&self) -> String {
        self.servers.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }
}
