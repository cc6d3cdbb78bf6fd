#!/usr/bin/env bash
# Simulation benchmark of the learning router: builds t/bench/sim.c against the real router
# code (mod_floopy/core) into a temporary directory and runs it. Arguments go to the program:
#
#   t/bench/sim.sh                       5 seeds x 5,000 sessions per scenario and policy
#   t/bench/sim.sh seeds=10 nps=bernoulli discount=0.99 max_regression=3 ...
#
# SIM_ROUTER_PATCH=file  measures a change to fl_router.c: the patch is applied to a temporary
#                        copy, never to the tree (e.g. t/bench/sim-variant-explore-proven.patch).
# Exits 1 when a target of the issue is missed, 2 when it cannot build or run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CORE=$ROOT/mod_floopy/core
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

router=$CORE/route/fl_router.c
if [ -n "${SIM_ROUTER_PATCH:-}" ]; then
  mkdir -p "$TMP/a/mod_floopy/core/route"
  cp "$CORE/route/fl_router.c" "$TMP/a/mod_floopy/core/route/fl_router.c"
  patch -s -d "$TMP/a" -p1 <"$SIM_ROUTER_PATCH" || { echo "sim: $SIM_ROUTER_PATCH does not apply" >&2; exit 2; }
  router=$TMP/a/mod_floopy/core/route/fl_router.c
  echo "fl_router.c with $SIM_ROUTER_PATCH applied"
fi

# Only what the router needs: fl_decision pulls fl_util (uuid) and fl_json; no adapters, the
# route and its models are built by the program as the catalog would.
# shellcheck disable=SC2046
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
  $(apr-1-config --cflags --cppflags --includes) -I"$CORE" -I"$CORE/route" \
  "$ROOT/t/bench/sim.c" "$router" "$CORE/route/fl_learn.c" "$CORE/fl_rng.c" "$CORE/fl_decision.c" \
  "$CORE/fl_util.c" "$CORE/fl_json.c" -o "$TMP/sim" \
  $(apr-1-config --link-ld --libs) -ljansson -lcrypto -lm || exit 2

"$TMP/sim" "$@"
