//! `--admin.*`: the admin listener's address, JWT secret, and the hosts and origins it
//! answers.

use clap::Args;
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

/// The admin JSON-RPC listener.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Admin RPC")]
pub struct AdminArgs {
    /// Admin JSON-RPC listener (checkpoint get/set/reset); loopback only unless a JWT secret
    /// is set. [default: 127.0.0.1:5051]
    #[arg(id = "admin_addr", long = "admin.addr", env = "FERRY_ADMIN_ADDR", value_name = "ADDR")]
    pub addr: Option<SocketAddr>,

    /// File holding the admin listener's 32-byte JWT secret in hex (as an Engine API's
    /// jwt.hex); every admin request then needs an HS256 bearer token.
    #[arg(
        id = "admin_jwt_secret",
        long = "admin.jwt-secret",
        env = "FERRY_ADMIN_JWT_SECRET",
        value_name = "FILE"
    )]
    pub jwt_secret: Option<PathBuf>,

    /// Host names the admin listener answers, comma-separated, besides loopback addresses and
    /// its own; a request with another `Host` gets HTTP 403. [default: localhost]
    #[arg(
        id = "admin_vhosts",
        long = "admin.vhosts",
        env = "FERRY_ADMIN_VHOSTS",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub vhosts: Option<Vec<String>>,

    /// Browser origins allowed to call the admin listener, comma-separated. Any web page can
    /// reach 127.0.0.1, so the default allows none. [default: none]
    #[arg(
        id = "admin_origins",
        long = "admin.origins",
        env = "FERRY_ADMIN_ORIGINS",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileAdmin {
    pub(super) addr: Option<SocketAddr>,
    pub(super) jwt_secret: Option<PathBuf>,
    pub(super) vhosts: Option<Vec<String>>,
    pub(super) origins: Option<Vec<String>>,
}
