//! Why a configuration cannot be used.

use std::path::PathBuf;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `--config` file is not valid.
    #[error("invalid config file {path}: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key and line.
        reason: String,
    },
    /// A required option is not given anywhere.
    #[error("{flag} is required (or {env}, or {key} in the config file), unless --dev is used")]
    Missing {
        /// The flag.
        flag: &'static str,
        /// Its environment variable.
        env: &'static str,
        /// Its key in the file.
        key: &'static str,
    },
    /// A value from the file is not acceptable.
    #[error("invalid value {value:?} for {key} in the config file: {reason}")]
    InvalidValue {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// Two options that cannot go together.
    #[error("{first} and {second} are both {value}: {reason}")]
    Conflict {
        /// One option.
        first: &'static str,
        /// The other.
        second: &'static str,
        /// Their shared value.
        value: String,
        /// Why that does not work.
        reason: &'static str,
    },
}
