#!/usr/bin/env bash
# ferry's test command: what the README names and what CI runs (.ci/run).
#
# Installs what the tests need, then checks formatting, lints and docs, and runs every test of
# the workspace. A missing tool stops the script with an error that names it; no test skips
# itself because a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "scripts/test.sh: $*" >&2
  exit 1
}

# A from-scratch build keeps no incremental caches: they double the target folder (about 2 GiB
# of 4) on a machine whose disk CI shares, and a one-off build gains nothing from them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

command -v cargo >/dev/null || fail "cargo is missing: install the Rust toolchain (rustup)"
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || fail "cargo $component is missing and rustup is not there to add it"
    rustup component add "$component"
  fi
done

echo "==> tools"
tools=$(scripts/install-tools.sh) || fail "could not install anvil, cast and nats-server (scripts/install-tools.sh)"
eval "$tools"
export ANVIL_PATH CAST_PATH NATS_SERVER_PATH
echo "anvil: $ANVIL_PATH ($("$ANVIL_PATH" --version | head -n 1))"
echo "cast: $CAST_PATH ($("$CAST_PATH" --version | head -n 1))"
echo "nats-server: $NATS_SERVER_PATH ($("$NATS_SERVER_PATH" --version | head -n 1))"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

echo "==> build the ferry binary (the end-to-end tests run it, with its fault hooks)"
cargo build --locked -p ferry
cargo build --locked -p ferry --features fault-injection
export FERRY_BIN="$PWD/target/debug/ferry"

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
  cargo test --workspace --all-features --locked --doc
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
