#!/usr/bin/env bash
# Runs ferry's fuzz targets, each for SECONDS (default 600): the JSON-RPC params parser, the
# quantity deserializer, the JWT check (tokens and secret files), the Host/Origin check, and
# the storage value codec. They are proptest-driven tests named fuzz_* (cargo-fuzz needs a
# nightly toolchain); the test command runs each for a second. A failure prints the input,
# shrunk to a minimal one.
#
#   scripts/fuzz.sh          # 10 minutes per target
#   scripts/fuzz.sh 60       # one minute per target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number, not $seconds" >&2; exit 2; }
export FERRY_FUZZ_SECONDS=$seconds
for crate in ferry-rpc ferry-storage; do
  cargo test --locked -p "$crate" --lib fuzz_ -- --nocapture --test-threads=1
done
