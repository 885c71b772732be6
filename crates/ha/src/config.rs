//! What a member needs to know of its group, and the names of what the group keeps in NATS.

use std::time::Duration;

/// A member's settings (the NATS servers are the sink's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// The group: members with the same name share one lease, one journal and one log stream.
    pub group: String,
    /// How long a lease lives without renewal: the longest a dead leader holds the group up.
    pub lease: Duration,
    /// This node's admin listener, as the other members tell operators to reach it.
    pub admin: String,
    /// This node's public listener, likewise.
    pub public: String,
}

impl HaConfig {
    /// The KV bucket of the lease.
    pub fn bucket(&self) -> String {
        format!("ferry-ha-{}", self.group)
    }

    /// The journal's stream.
    pub fn journal_stream(&self) -> String {
        format!("ferry-ha-{}-journal", self.group)
    }

    /// The journal's subject.
    pub fn journal_subject(&self) -> String {
        format!("ferry.ha.{}.journal", self.group)
    }
}

/// Whether `name` can name a group (it becomes part of a bucket, a stream and a subject): 1 to
/// 64 ASCII letters, digits, `-` or `_`; why not.
pub fn check_group_name(name: &str) -> Result<(), String> {
    let fits = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_';
    if name.is_empty() || name.len() > 64 || !name.bytes().all(fits) {
        return Err("must be 1 to 64 ASCII letters, digits, '-' or '_'".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_fit_buckets_streams_and_subjects() {
        for good in ["a", "l2-mainnet", "group_1", &"x".repeat(64)] {
            assert_eq!(check_group_name(good), Ok(()), "{good}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", "é", &"x".repeat(65)] {
            assert!(check_group_name(bad).is_err(), "{bad}");
        }
    }
}
