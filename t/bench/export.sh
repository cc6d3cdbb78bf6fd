#!/usr/bin/env bash
# Benchmark of GET /v1/export/decisions: rows per second and the peak memory growth of the httpd
# child while it streams BENCH_EXPORT_ROWS decisions (default 1,000,000) of one organisation.
# The digest in the trailer is checked with sha256sum. Targets (issue 5): >= 100,000 rows/s,
# peak growth < 20 MB. Prints the figures; exits non-zero only if the export itself is wrong.
#
# It exports twice: right after the bulk seed (MariaDB still purging and flushing what the seed
# wrote) and again once that has settled, and prints the CPU each row cost the httpd child and
# MariaDB (from /proc: independent of what else the machine runs, unlike the rate).
# BENCH_DB_POOL sets the private MariaDB's InnoDB buffer pool for the run (default 1G: the
# million rows' table and indexes, ~0.8 GB, fit; with the 256M the quick start uses MariaDB reads
# most pages from disk on each export, direct I/O bypassing the page cache).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROWS=${BENCH_EXPORT_ROWS:-1000000}
export FLOOPY_ROOT=$ROOT FLOOPY_VAR=${BENCH_VAR:-$ROOT/var/bench-export}
export FLOOPY_PORT=${BENCH_EXPORT_PORT:-18490} FLOOPY_BENCH_UPSTREAM_PORT=1
CONF=$ROOT/t/bench/bench.conf
OUT=$(mktemp -d)
cleanup() { /usr/sbin/apache2 -f "$CONF" -k stop 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT

export FLOOPY_DB_POOL=${BENCH_DB_POOL:-1G}
(cd "$ROOT" && ./apxs-build.sh build && ./apxs-build.sh db-stop && FLOOPY_DB_RESET=1 ./apxs-build.sh db-start) >&2
SQL() { mariadb --no-defaults -S "$FLOOPY_VAR/run/mysqld.sock" -u "$(id -un)" -N floopy -e "$1"; }
/usr/sbin/apache2 -f "$CONF" -k start
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$FLOOPY_PORT/v1/models" && break; sleep 0.1; done
TOKEN=$(cat "$FLOOPY_VAR/admin.token")
ORG=$(curl -s -X POST "http://127.0.0.1:$FLOOPY_PORT/floopy-admin/organizations" -H "Authorization: Bearer $TOKEN" \
      -d '{"name":"export-bench","plan":"enterprise"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
KEY=$(curl -s -X POST "http://127.0.0.1:$FLOOPY_PORT/floopy-admin/organizations/$ORG/keys" -H "Authorization: Bearer $TOKEN" \
      -d '{"role":"admin"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).key')

echo "seeding $ROWS decisions..." >&2
t0=$(date +%s)
SQL "SET SESSION max_recursive_iterations = $((ROWS + 1));
  INSERT INTO decisions (id, org_id, api_key_id, session_id, route, provider, model, chosen_score,
    alternatives, signals, constraints_applied, confidence, phase, status, http_status,
    latency_total_ms, latency_upstream_ms, input_tokens, output_tokens, cached_tokens, cost_usd,
    attempts, created_at, completed_at)
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $ROWS)
  SELECT CONCAT('00000000-0000-7000-8000-', LPAD(HEX(n), 12, '0')), '$ORG', NULL, CONCAT('s', n MOD 1000),
    'auto', 'bench', 'gpt-bench', 1,
    '[{\"provider\":\"bench\",\"model\":\"gpt-large\",\"score\":0.06,\"excluded_by\":null}]',
    '{\"policy\":\"cheapest\",\"observations\":0,\"default\":\"bench/gpt-large\"}', '{}', 0, 'day0', 'ok', 200,
    1.2, 0.9, 9, 9, 0, 0.0000067500,
    '[{\"provider\":\"bench\",\"model\":\"gpt-bench\",\"http_status\":200,\"latency_ms\":0.9,\"reason\":null}]',
    NOW(3) - INTERVAL 1 DAY, NOW(3) - INTERVAL 1 DAY FROM seq"
echo "seeded in $(( $(date +%s) - t0 )) s" >&2

PARENT=$(cat "$FLOOPY_VAR/run/httpd.pid")
CHILD=$(pgrep -P "$PARENT" | head -1)
DBPID=$(cat "$FLOOPY_VAR/run/mysqld.pid")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, clock ticks
TICK=$(getconf CLK_TCK)

export_once() { # label
  local secs bytes hwm rss0 c0 d0 c1 d1 lines trailer want got rows
  echo 5 >"/proc/$CHILD/clear_refs" 2>/dev/null || true   # resets the peak (VmHWM) to now
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$CHILD/status")
  c0=$(cpu "$CHILD"); d0=$(cpu "$DBPID")
  read -r secs bytes < <(curl -s -o "$OUT/export.jsonl" -w '%{time_total} %{size_download}\n' \
      -H "Authorization: Bearer $KEY" "http://127.0.0.1:$FLOOPY_PORT/v1/export/decisions")
  c1=$(cpu "$CHILD"); d1=$(cpu "$DBPID")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$CHILD/status")
  lines=$(wc -l <"$OUT/export.jsonl")
  trailer=$(tail -1 "$OUT/export.jsonl")
  want=$(node -pe 'JSON.parse(process.argv[1]).sha256' "$trailer")
  got=$(head -n -1 "$OUT/export.jsonl" | sha256sum | cut -d' ' -f1)
  rows=$(node -pe 'JSON.parse(process.argv[1]).rows' "$trailer")
  [ "$want" = "$got" ] || { echo "digest mismatch: trailer $want, sha256sum $got" >&2; exit 1; }
  [ "$rows" = "$ROWS" ] && [ "$lines" = "$((ROWS + 1))" ] || { echo "rows: trailer $rows, lines $lines" >&2; exit 1; }
  awk -v l="$1" -v r="$ROWS" -v s="$secs" -v b="$bytes" -v h="$hwm" -v r0="$rss0" -v t="$TICK" \
      -v c="$((c1 - c0))" -v d="$((d1 - d0))" 'BEGIN {
    printf "%s: export of %d decisions: %.2f s, %.0f rows/s, %.1f MB/s, %.1f MB\n", l, r, s, r / s, b / s / 1e6, b / 1e6
    printf "  CPU per row: httpd child %.1f us, MariaDB %.1f us\n", c / t / r * 1e6, d / t / r * 1e6
    printf "  httpd child RSS before %.1f MB, peak during %.1f MB: growth %.1f MB\n", r0 / 1024, h / 1024, (h - r0) / 1024
  }'
  echo "  trailer digest verified with sha256sum: $got"
}

echo "InnoDB buffer pool: $FLOOPY_DB_POOL; $(nproc) CPUs"
export_once "right after the seed"
for _ in $(seq 1 120); do     # MariaDB's purge of the seed's undo log, then its page flushing
  [ "$(SQL "SELECT SUM(count) FROM information_schema.innodb_metrics
            WHERE name IN ('trx_rseg_history_len', 'buffer_pool_pages_dirty')")" -lt 100 ] && break
  sleep 1
done
export_once "settled"
