//! Fixtures for tests: messages with chosen positions and nonces, and the fuzzing harness.

use crate::{Address, B256, L1Message, LifecycleEvent, LifecycleKind, Message, Origin, U256};

/// A message with nonce `nonce`, logged at `(block, log_index)`.
///
/// The nonce makes the hash unique; the block hash and transaction hash are derived from the
/// block and nonce so that fixtures are deterministic.
pub fn l1_message(nonce: u64, block: u64, log_index: u64) -> L1Message {
    l1_message_with_payload(nonce, block, log_index, vec![U256::from(nonce), U256::from(block)])
}

/// Like [`l1_message`], with an explicit payload.
pub fn l1_message_with_payload(
    nonce: u64,
    block: u64,
    log_index: u64,
    payload: Vec<U256>,
) -> L1Message {
    L1Message {
        message: Message {
            from: Address::repeat_byte(0x42),
            to: U256::from(0x1234_u64),
            selector: U256::from(0x5678_u64),
            payload,
            nonce: U256::from(nonce),
            fee: U256::from(nonce) + U256::from(1_000),
        },
        origin: Origin {
            block_number: block,
            block_hash: B256::left_padding_from(&block.to_be_bytes()),
            transaction_hash: B256::left_padding_from(&nonce.to_be_bytes()),
            log_index,
        },
    }
}

/// A lifecycle event of `kind` about `message`, logged at `(block, log_index)` in a block of
/// the same hash as the message's when in the same block (as [`l1_message`] derives it),
/// with timestamp `1_000 + 12 * block` and, for a started cancellation, a delay of 300 s.
pub fn lifecycle_event(
    kind: LifecycleKind,
    message: &L1Message,
    block: u64,
    log_index: u64,
) -> LifecycleEvent {
    let Message { from, to, selector, payload, nonce, .. } = message.message.clone();
    LifecycleEvent {
        kind,
        from,
        to,
        selector,
        payload,
        nonce,
        origin: Origin {
            block_number: block,
            block_hash: B256::left_padding_from(&block.to_be_bytes()),
            transaction_hash: B256::repeat_byte(0xee),
            log_index,
        },
        timestamp: 1_000 + 12 * block,
        cancellation_delay: (kind == LifecycleKind::CancellationStarted).then_some(300),
    }
}

/// Runs `check` on inputs drawn from `strategy` for `FERRY_FUZZ_SECONDS` seconds (default 1,
/// what the test command spends: the targets are built and run briefly; `scripts/fuzz.sh`
/// runs them for longer). proptest draws the inputs and shrinks a failing one to a minimal
/// case, which the panic names. cargo-fuzz would need a nightly toolchain; this runs on
/// stable with the tests.
pub fn fuzz<S: proptest::strategy::Strategy>(
    target: &str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), proptest::test_runner::TestCaseError>,
) {
    use proptest::test_runner::{Config, TestError, TestRunner};
    use std::time::{Duration, Instant};
    let seconds = std::env::var("FERRY_FUZZ_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(1.0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let config = Config { cases: 512, failure_persistence: None, ..Config::default() };
    // A runner counts its successes for good: one per round, each from a fresh random seed.
    let mut seeds = TestRunner::new(config.clone());
    let mut cases = 0_u64;
    while cases == 0 || Instant::now() < deadline {
        let mut runner = TestRunner::new_with_rng(config.clone(), seeds.new_rng());
        match runner.run(&strategy, &check) {
            Ok(()) => cases += 512,
            Err(TestError::Fail(reason, input)) => {
                panic!(
                    "fuzz target {target} failed after {cases} cases: {reason}\ninput: {input:?}"
                )
            }
            Err(TestError::Abort(reason)) => panic!("fuzz target {target} aborted: {reason}"),
        }
    }
    eprintln!("fuzz target {target}: {cases} cases in {seconds} s, no failure");
}
