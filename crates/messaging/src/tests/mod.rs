//! Tests of the pipeline with a scripted collector and a real store, and of the Ethereum
//! collector against a real Anvil.

mod ethereum;
mod harness;
mod pipeline;
mod refetch;
mod reorgs;
