#!/usr/bin/env bash
# Runs ferry in dev mode: installs Anvil locally if missing, builds, and starts `ferry --dev`
# (a local Anvil with ferry's own messaging contract, a few messages already sent, and the
# node reading them). Extra arguments go to ferry, e.g. `scripts/dev.sh --dev.messages 10`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "dev.sh: cargo is missing: install the Rust toolchain (rustup)" >&2; exit 1; }
tools=$(scripts/install-tools.sh) || { echo "dev.sh: could not install anvil (scripts/install-tools.sh)" >&2; exit 1; }
eval "$tools"
export ANVIL_PATH CAST_PATH
cargo build --locked -p ferry
echo "cast is at $CAST_PATH"
exec target/debug/ferry --dev --metrics.addr 127.0.0.1:9100 "$@"
