//! ferry's end-to-end tests live in `e2e/`: they run the real `ferry` binary (built by
//! `scripts/test.sh` before the tests) against a real Anvil and talk to it over JSON-RPC.
