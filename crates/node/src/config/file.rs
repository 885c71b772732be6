//! The `--config` TOML file: the same options, keyed as the flags are, each section's table
//! declared with its flags.

use super::{
    ConfigError,
    admin::FileAdmin,
    ha::FileHa,
    l1::FileL1,
    observe::{FileAddr, FileLog, FileReady},
    rpc::FileRpc,
    sink::FileSink,
    text::{DurationText, FromText},
};
use ferry_messaging::Confirmations;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The TOML file: the same options, keyed as the flags are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) l1: FileL1,
    pub(super) from_block: Option<u64>,
    pub(super) confirmations: Option<FromText<Confirmations>>,
    pub(super) poll_interval: Option<FromText<DurationText>>,
    pub(super) max_block_range: Option<u64>,
    pub(super) reorg_window: Option<u64>,
    pub(super) datadir: Option<PathBuf>,
    #[serde(default)]
    pub(super) rpc: FileRpc,
    #[serde(default)]
    pub(super) admin: FileAdmin,
    #[serde(default)]
    pub(super) metrics: FileAddr,
    #[serde(default)]
    pub(super) ready: FileReady,
    #[serde(default)]
    pub(super) log: FileLog,
    #[serde(default)]
    pub(super) sink: FileSink,
    #[serde(default)]
    pub(super) ha: FileHa,
}

pub(super) fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?;
    toml::from_str(&text).map_err(|error| ConfigError::InvalidFile {
        path: path.to_owned(),
        reason: error.to_string().trim().replace('\n', " "),
    })
}
