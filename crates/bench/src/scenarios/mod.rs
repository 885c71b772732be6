//! The scenarios: each prints what it measured and how (`docs/benchmarks.md` collects them),
//! one file each; `node.rs` and `floor.rs` are what several share.

mod catchup;
mod failover;
mod fanout;
mod floor;
mod ingest;
mod latency;
mod memory;
mod node;
mod provider;
mod requests;
mod rewind;
mod rpc;
mod sink;
mod startup;
mod store_size;

pub(crate) use catchup::catchup;
pub(crate) use failover::failover;
pub(crate) use fanout::fanout;
pub(crate) use floor::{Decode, floor};
pub(crate) use ingest::ingest;
pub(crate) use latency::latency;
pub(crate) use memory::memory;
pub(crate) use node::{Node, rpc_server, start_node, start_node_in, start_node_verifying};
pub(crate) use provider::provider;
pub(crate) use requests::requests;
pub(crate) use rewind::rewind;
pub(crate) use rpc::rpc;
pub(crate) use sink::sink;
pub(crate) use startup::startup;
pub(crate) use store_size::{settle, store_size};
