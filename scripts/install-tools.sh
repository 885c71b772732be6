#!/usr/bin/env bash
# Installs the tools ferry's tests and dev mode run: anvil and cast into the git-ignored
# .tools/ folder, from the npm packages @foundry-rs/anvil and @foundry-rs/cast, whose platform
# packages ship the real binaries (nothing is downloaded at install time); and nats-server,
# from Debian's package, when it is missing. Prints
#   ANVIL_PATH=/abs/path/to/anvil
#   CAST_PATH=/abs/path/to/cast
#   NATS_SERVER_PATH=/abs/path/to/nats-server
# for `eval`. Fails loudly, naming what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
FOUNDRY_VERSION=1.7.1
tools=.tools/foundry

find_tool() {
  local candidate
  for candidate in "$tools"/node_modules/@foundry-rs/"$1"-*/bin/"$1"; do
    if [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -q "$FOUNDRY_VERSION"; then
      echo "$PWD/$candidate"
      return 0
    fi
  done
  return 1
}

if ! find_tool anvil >/dev/null || ! find_tool cast >/dev/null; then
  command -v npm >/dev/null || {
    echo "install-tools: npm is missing; install Node.js and npm to get anvil and cast" >&2
    exit 1
  }
  mkdir -p "$tools"
  # One install of both: npm prunes what a later --no-save install does not name.
  npm install --prefix "$tools" --no-save --no-audit --no-fund \
    "@foundry-rs/anvil@$FOUNDRY_VERSION" "@foundry-rs/cast@$FOUNDRY_VERSION" >&2
fi
for tool in anvil cast; do
  path=$(find_tool "$tool") || {
    echo "install-tools: @foundry-rs/$tool@$FOUNDRY_VERSION installed no $tool binary for $(uname -sm)" >&2
    exit 1
  }
  echo "$(echo "$tool" | tr '[:lower:]' '[:upper:]')_PATH=$path"
done

# nats-server (the JetStream sink's tests) from Debian's package, when it is not installed.
if ! command -v nats-server >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-tools: nats-server is missing; install it (apt-get install nats-server, as root)" >&2
    exit 1
  fi
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
fi
echo "NATS_SERVER_PATH=$(command -v nats-server)"
