//! ferry's JSON-RPC API as a consumer or an operator's tool sees it: the `messaging`
//! namespace's typed clients ([`AdminApiClient`], [`PublicApiClient`]), its wire types, its
//! error codes, and [`ResumingSubscriber`], which follows a node's log across disconnects and
//! restarts. It depends on neither the store (MDBX) nor the pipeline: a sequencer, a bridge or
//! an indexer depends on this crate alone. The server is `ferry-rpc`.
//!
//! ```no_run
//! use ferry_rpc_api::{PublicApiClient, ResumingSubscriber};
//!
//! # async fn run() -> Result<(), jsonrpsee::core::ClientError> {
//! let client = jsonrpsee::http_client::HttpClient::builder().build("http://127.0.0.1:5050")?;
//! println!("{} messages stored", client.status().await?.messages_stored);
//! let mut subscriber = ResumingSubscriber::new("ws://127.0.0.1:5050".to_owned(), 0);
//! for entry in subscriber.next().await {
//!     println!("seq {}: {:?} {}", entry.seq, entry.kind, entry.hash);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every method, its params, result and errors are written down in
//! [`OPENRPC_DOCUMENT`] (`rpc-spec/openrpc.json`), which the server's tests check it against.

mod api;
pub mod codes;
mod subscriber;
mod time;
mod types;

pub use api::{AdminApiClient, PublicApiClient};
pub use subscriber::ResumingSubscriber;
pub use time::Timestamp;
pub use types::*;

/// The largest response (and WebSocket message) the bundled clients accept: twice the
/// listeners' default response cap, so that any page the node sends (at most the server's
/// `max_page_bytes`, or a single larger entry alone) reaches them. jsonrpsee's own default,
/// 10 MiB, is below what one message of the permissionless contract can take.
pub const MAX_CLIENT_RESPONSE_BYTES: u32 = 64 << 20;

/// The OpenRPC document of the namespace, as a node serves it from `rpc.discover`.
pub const OPENRPC_DOCUMENT: &str = include_str!("../../../rpc-spec/openrpc.json");
