//! `--ha.*`: membership of a high-availability group (on the sink's NATS servers).

use super::{
    ConfigError,
    text::{DurationText, FromText},
};
use clap::Args;
use serde::Deserialize;
use std::time::Duration;

/// The lease when none is given.
const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// High availability.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "High availability")]
pub struct HaArgs {
    /// Join this high-availability group (needs --sink.nats-url): the member holding the
    /// lease ingests and publishes, the others replay its journal and take over when it dies.
    /// [default: off]
    #[arg(id = "ha_group", long = "ha.group", env = "FERRY_HA_GROUP", value_name = "NAME")]
    pub group: Option<String>,

    /// How long the lease lives without renewal (renewed every third of it): the longest a
    /// dead leader holds the group up. [default: 5s]
    #[arg(id = "ha_lease", long = "ha.lease", env = "FERRY_HA_LEASE", value_name = "DURATION", value_parser = super::parse_duration)]
    pub lease: Option<Duration>,
}

/// A group to join, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSettings {
    /// `--ha.group`.
    pub group: String,
    /// `--ha.lease`.
    pub lease: Duration,
}

impl HaArgs {
    /// The group, when one is named; it needs the sink's NATS servers.
    pub(super) fn resolve(
        &self,
        file: &FileHa,
        sink: bool,
    ) -> Result<Option<HaSettings>, ConfigError> {
        let Some(group) = self.group.clone().or(file.group.clone()) else { return Ok(None) };
        ferry_ha::check_group_name(&group).map_err(|reason| ConfigError::InvalidValue {
            key: "ha.group",
            value: group.clone(),
            reason,
        })?;
        if !sink {
            return Err(ConfigError::InvalidValue {
                key: "ha.group",
                value: group,
                reason: "a group lives on the sink's NATS servers: give --sink.nats-url too"
                    .to_owned(),
            });
        }
        let lease = self
            .lease
            .or(file.lease.as_ref().map(|FromText(DurationText(lease))| *lease))
            .unwrap_or(DEFAULT_LEASE);
        if lease < Duration::from_secs(1) || lease > Duration::from_secs(300) {
            return Err(ConfigError::InvalidValue {
                key: "ha.lease",
                value: format!("{lease:?}"),
                reason: "must be 1s to 300s".to_owned(),
            });
        }
        Ok(Some(HaSettings { group, lease }))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileHa {
    pub(super) group: Option<String>,
    pub(super) lease: Option<FromText<DurationText>>,
}
