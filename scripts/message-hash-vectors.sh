#!/usr/bin/env bash
# Recomputes the message-hash test vectors of crates/primitives/src/message.rs with Foundry's
# `cast`, independently of ferry's Rust code:
#
#   keccak256(abi.encodePacked(uint256(from), to, nonce, selector, payload.length, payload))
#
# Every field is a 32-byte word in encodePacked (array elements are padded too), so the packed
# bytes are the concatenation of `cast to-uint256` of each value.
# Usage: scripts/message-hash-vectors.sh   (needs `cast` on PATH or CAST=/path/to/cast)
set -euo pipefail
cast=${CAST:-cast}

hash() { # from to selector nonce payload...
  local from=$1 to=$2 selector=$3 nonce=$4
  shift 4
  local words=("$from" "$to" "$nonce" "$selector" "$#" "$@")
  local packed=0x
  for word in "${words[@]}"; do
    packed+=$("$cast" to-uint256 "$word" | cut -c3-)
  done
  "$cast" keccak "$packed"
}

from=0xbe3C44c09bc1a3566F3e1CA12e5AbA0fA4Ca72Be
to=0x73314940630fd6dcda0d772d4c972c4e0a9946bef9dabf4ef84eda8ef542b82
selector=0x2d757788a8d8d6f21d1cd40bce38a8222d70654214e96ff95d8086e684fbee5

echo "empty payload, nonce 0, fee 0:      $(hash $from $to $selector 0)"
echo "payload [1, 255], nonce 3, fee 0:   $(hash $from $to $selector 3 1 255)"
echo "three-felt payload, nonce 12345:    $(hash $from $to $selector 12345 \
  0x0 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff 0xdeadbeef)"
