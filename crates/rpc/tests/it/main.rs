//! The JSON-RPC listeners over the network: round trips, hostile requests, authentication,
//! and the OpenRPC document checked against the running server.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod auth;
mod consumers;
mod hostile;
mod lifecycle;
mod listeners;
mod roundtrip;
mod spec;
mod support;
