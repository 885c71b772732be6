//! Where ferry's tests and benchmarks find the real tools they start (`anvil`, `cast`,
//! `nats-server`, see [`NatsServer`]). Foundry's: `$ANVIL_PATH` / `$CAST_PATH`, else the ones `scripts/install-tools.sh` installs
//! under `.tools/` (from the npm packages `@foundry-rs/anvil` and `@foundry-rs/cast`), else
//! the script is run to install them. A test never skips for want of a tool: it panics,
//! naming the fix.
//!
//! Tests start Anvil through [`anvil`] (or [`anvil_builder`] for more options): each instance
//! on a free loopback port, stopped and reaped by process id when dropped; `cast` through
//! [`cast`].

mod dice;
mod nats;

pub use dice::Dice;
pub use nats::{NatsCluster, NatsServer, nats_server_path};

use alloy::node_bindings::{Anvil, AnvilInstance};
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
};

/// Starts Anvil with `args`, on a free loopback port.
pub fn anvil(args: &[&str]) -> AnvilInstance {
    anvil_builder()
        .args(args.iter().copied())
        .try_spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", anvil_path().display()))
}

/// Anvil to configure further (a fixed port, a state file) before it is spawned.
pub fn anvil_builder() -> Anvil {
    Anvil::at(anvil_path())
}

/// A `cast` command to add arguments to.
pub fn cast() -> Command {
    Command::new(cast_path())
}

/// The `anvil` binary.
pub fn anvil_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| foundry_tool("anvil", "ANVIL_PATH")).clone()
}

/// The `cast` binary.
pub fn cast_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| foundry_tool("cast", "CAST_PATH")).clone()
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn foundry_tool(name: &str, variable: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    if let Some(found) = installed(name) {
        return found;
    }
    let script = repository_root().join("scripts/install-tools.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{name} not found: set {variable}, or make {} succeed (it installs anvil and cast from \
         npm)",
        script.display()
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    printed
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{variable}=")))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{} printed no {variable}: {printed}", script.display()))
}

/// The tool as `scripts/install-tools.sh` leaves it under `.tools/`.
fn installed(name: &str) -> Option<PathBuf> {
    let packages = repository_root().join(".tools/foundry/node_modules/@foundry-rs");
    std::fs::read_dir(packages).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin").join(name))
            .find(|candidate| candidate.is_file())
    })
}
