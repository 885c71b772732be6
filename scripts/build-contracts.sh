#!/usr/bin/env bash
# Recompiles crates/contracts/solidity/*.sol with the npm `solc` package (solcjs) and writes
# crates/contracts/artifacts/<Name>.json ({"abi": [...], "bytecode": "0x..."}), the artifact
# that is committed and that the Rust bindings read. Run it after changing the Solidity.
set -euo pipefail
cd "$(dirname "$0")/.."
SOLC_VERSION=0.8.30
tools=.tools/solc
if [ ! -x "$tools/node_modules/.bin/solcjs" ]; then
  command -v npm >/dev/null || { echo "build-contracts: npm is missing (install Node.js)" >&2; exit 1; }
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-save --no-audit --no-fund "solc@$SOLC_VERSION" >&2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for source in crates/contracts/solidity/*.sol; do
  name=$(basename "$source" .sol)
  (cd "$(dirname "$source")" && "$OLDPWD/$tools/node_modules/.bin/solcjs" --optimize --bin --abi \
    --base-path . -o "$out" "$(basename "$source")")
  python3 - "$out/${name}_sol_${name}.abi" "$out/${name}_sol_${name}.bin" \
    "crates/contracts/artifacts/$name.json" "$SOLC_VERSION" <<'PY'
import json, sys
abi_path, bin_path, artifact_path, version = sys.argv[1:]
artifact = {
    "contractName": artifact_path.rsplit("/", 1)[-1].removesuffix(".json"),
    "compiler": f"solcjs {version} --optimize",
    "abi": json.load(open(abi_path)),
    "bytecode": "0x" + open(bin_path).read().strip(),
}
with open(artifact_path, "w") as f:
    json.dump(artifact, f, indent=1)
    f.write("\n")
PY
  echo "wrote crates/contracts/artifacts/$name.json"
done
