//! The real `ferry` binary against a real Anvil.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod flaky;
mod ha;
mod house;
mod l1proxy;
mod lifecycle;
mod node;
mod outages;
mod providers;
mod reorgs;
mod scenarios;
mod sink;
mod support;
mod tools;
