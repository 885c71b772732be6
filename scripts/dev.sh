#!/usr/bin/env bash
# Runs ferry in dev mode: installs Anvil locally if missing, builds, and starts `ferry --dev`
# (a local Anvil with ferry's own messaging contract, a few messages already sent, and the
# node reading them). Extra arguments go to ferry, e.g. `scripts/dev.sh --dev.messages 10`.
#
# The listeners go on 127.0.0.1:5050 (public), :5051 (admin) and :9100 (metrics); a port that
# is taken (another ferry running) is replaced by the next free one, unless its flag or
# FERRY_* variable is given. ferry's banner prints where everything ended up.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "dev.sh: cargo is missing: install the Rust toolchain (rustup)" >&2; exit 1; }
tools=$(scripts/install-tools.sh) || { echo "dev.sh: could not install anvil (scripts/install-tools.sh)" >&2; exit 1; }
eval "$tools"
export ANVIL_PATH CAST_PATH
cargo build --locked -p ferry
echo "cast is at $CAST_PATH"

# Something answers on 127.0.0.1:$1.
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The first port from $1 on that nothing answers on and no other listener here was given.
chosen=" "
free_port() {
  local port=$1
  while busy "$port" || [[ $chosen == *" $port "* ]]; do port=$((port + 1)); done
  echo "$port"
}
# The user chose this listener's address already: flag $1 or variable $2.
given() {
  local flag=$1 variable=$2 arg
  [[ -n "${!variable:-}" ]] && return 0
  # ${a[@]+"${a[@]}"}: an empty array under set -u, in bash before 4.4 too (macOS).
  for arg in ${user_args[@]+"${user_args[@]}"}; do
    [[ $arg == "$flag" || $arg == "$flag="* ]] && return 0
  done
  return 1
}

user_args=("$@")
listeners=()
for listener in "--rpc.addr FERRY_RPC_ADDR 5050" "--admin.addr FERRY_ADMIN_ADDR 5051" \
  "--metrics.addr FERRY_METRICS_ADDR 9100"; do
  read -r flag variable default <<<"$listener"
  given "$flag" "$variable" && continue
  port=$(free_port "$default")
  chosen+="$port "
  [[ $port != "$default" ]] && echo "dev.sh: 127.0.0.1:$default is taken; $flag 127.0.0.1:$port"
  listeners+=("$flag" "127.0.0.1:$port")
done
exec target/debug/ferry --dev ${listeners[@]+"${listeners[@]}"} "$@"
