//! The records the store keeps and hands out, as plain Rust types: their byte encodings are
//! in `codec/`, one file per record.

mod audit;
mod halt;
mod reorg;
mod window;

pub use audit::{AuditEntry, ChangeMethod, ChangeOrigin};
pub use halt::{HaltKind, HaltRecord};
pub use reorg::{ReorgCause, ReorgRecord};
pub use window::{FinalityTags, KnownHeads, WindowBounds};
