#!/usr/bin/env bash
# Installs the tools ferry's tests and dev mode run, into the git-ignored .tools/ folder, and
# prints the path of the anvil binary. Anvil comes from the npm package @foundry-rs/anvil,
# whose platform package ships the real binary (no download at install time).
# Fails loudly, naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ANVIL_VERSION=1.7.1
tools=.tools/foundry

find_anvil() {
  local candidate
  for candidate in "$tools"/node_modules/@foundry-rs/anvil-*/bin/anvil; do
    if [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -q "$ANVIL_VERSION"; then
      echo "$PWD/$candidate"
      return 0
    fi
  done
  return 1
}

if ! find_anvil >/dev/null; then
  command -v npm >/dev/null || {
    echo "install-tools: npm is missing; install Node.js and npm to get anvil" >&2
    exit 1
  }
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-save --no-audit --no-fund \
    "@foundry-rs/anvil@$ANVIL_VERSION" >&2
fi
find_anvil || {
  echo "install-tools: @foundry-rs/anvil@$ANVIL_VERSION installed no anvil binary for $(uname -sm)" >&2
  exit 1
}
