//! The real `ferry` binary against a real Anvil.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod node;
mod support;
