//! Wall-clock time as the store's records keep it: one time per write transaction, so that a
//! standby replaying a leader's write (see `store/journal.rs`) records the leader's time, not
//! its own.

use std::{
    cell::Cell,
    time::{SystemTime, UNIX_EPOCH},
};

thread_local! {
    /// The time of the write transaction this thread runs (MDBX write transactions are bound
    /// to their thread).
    static WRITE_TIME: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Now, in Unix milliseconds (0 on a clock set before 1970).
pub(crate) fn system_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

/// Starts a write transaction on this thread at `at` (a replayed write's time), or now.
pub(crate) fn start_write(at: Option<u64>) {
    WRITE_TIME.set(Some(at.unwrap_or_else(system_millis)));
}

/// The time of the write transaction this thread runs, in Unix milliseconds: what its records
/// say.
pub(crate) fn unix_millis() -> u64 {
    WRITE_TIME.get().unwrap_or_else(system_millis)
}
