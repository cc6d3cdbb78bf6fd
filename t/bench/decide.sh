#!/usr/bin/env bash
# The core's cost of one routing decision (t/bench/decide.c), built from this checkout's core.
#   t/bench/decide.sh [CANDIDATES (1 or 3)] [DECISIONS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CORE=$ROOT/mod_floopy/core
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
# shellcheck disable=SC2046
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
  $(apr-1-config --cflags --cppflags --includes) $(apu-1-config --includes) \
  -I"$CORE" -I"$CORE/providers" -I"$CORE/route" \
  "$ROOT/t/bench/decide.c" "$CORE"/*.c "$CORE"/*/*.c -o "$OUT/decide" \
  $(apr-1-config --link-ld --libs) $(apu-1-config --link-ld --libs) -ljansson -lcurl -lcrypto -lm
"$OUT/decide" "$@"
