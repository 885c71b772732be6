//! ferry's node: configuration, wiring, dev mode, graceful shutdown, metrics, and the
//! operator CLI. The `ferry` binary parses [`Cli`], sets up logging and calls in here.

mod completions;
mod config;
#[cfg(test)]
mod dashboards;
mod db;
mod dev;
#[cfg(feature = "fault-injection")]
mod faults;
mod group;
mod launch;
mod observe;
mod operator;
mod output;
mod signals;
mod verify;

pub use config::{
    AdminArgs, ConfigError, HaArgs, HaSettings, L1Args, L1Config, L1Trust, LogFormat, NodeArgs,
    NodeConfig, ObserveArgs, RpcArgs, SinkArgs,
};
pub use db::{DbArgs, DbCommand, ExportFormat, GetCommand};
pub use launch::{NodeError, run};
pub use observe::init_logging;
pub use operator::{AdminTarget, CheckpointCommand, Command};
pub use output::CommandError;
pub use signals::shutdown_signal;
pub use verify::{Finding, NonceRun, VerifyArgs, VerifyReport};

use clap::Parser;

/// `ferry`: run a node (the default), or talk to a running one.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Carries L1->L2 messages from an Ethereum messaging contract to L2 consumers, \
             exactly once and in order.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Node options (when no command is given).
    #[command(flatten)]
    pub node: NodeArgs,
    /// Talk to a running node instead of running one.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Runs an operator command.
pub async fn run_command(command: Command) -> Result<(), CommandError> {
    operator::run(command).await
}
