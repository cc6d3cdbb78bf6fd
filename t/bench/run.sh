#!/usr/bin/env bash
# Benchmark: wrk against (a) the static upstream directly, (b) mod_floopy in front of it,
# (c) the Portkey AI gateway (npm @portkey-ai/gateway) in front of it.
#
#   t/bench/run.sh                  (or ./apxs-build.sh bench)
#
# Environment:
#   BENCH_SECONDS   seconds per wrk run (default 10)
#   BENCH_WARMUP    seconds of unrecorded warm-up per target (default 2)
#   BENCH_TARGETS   which targets, in order (default "direct floopy floopy-anthropic portkey";
#                   floopy-anthropic is mod_floopy translating to an Anthropic-format upstream)
#   BENCH_CONF      httpd configuration for the floopy target (default t/bench/bench.conf)
#   BENCH_VAR       runtime dir (FLOOPY_VAR) of the benchmark's own MariaDB and httpd
#                   (default $ROOT/var/bench; an outer FLOOPY_VAR is deliberately not used)
#
# Prints requests/s, p50 and p99 per target at 1 connection (1 thread) and 32 connections
# (2 threads), then floopy/portkey rps at 32 connections and floopy p50 - direct p50 at
# 1 connection (microseconds). Figures also go to t/bench/results/latest.txt, raw wrk output
# to t/bench/results/<target>-c<N>.txt. Everything started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/t/bench
RESULTS=$BENCH/results
DURATION=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
TARGETS=${BENCH_TARGETS:-"direct floopy floopy-anthropic portkey"}
export FLOOPY_ROOT=$ROOT
export FLOOPY_VAR=${BENCH_VAR:-$ROOT/var/bench}
CONF=${BENCH_CONF:-$BENCH/bench.conf}
TMP=$(mktemp -d)

UPSTREAM_PID=
PORTKEY_PID=
HTTPD_STARTED=
DB_STARTED=

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

cleanup() {
    local rc=$?
    set +e
    if [[ -n $HTTPD_STARTED ]]; then
        /usr/sbin/apache2 -f "$CONF" -k stop 2>/dev/null
        for _ in $(seq 50); do
            [[ -f $FLOOPY_VAR/run/httpd.pid ]] || break
            sleep 0.1
        done
    fi
    if [[ -n $PORTKEY_PID ]]; then
        kill "$PORTKEY_PID" 2>/dev/null
        wait "$PORTKEY_PID" 2>/dev/null
    fi
    if [[ -n $UPSTREAM_PID ]]; then
        kill "$UPSTREAM_PID" 2>/dev/null
        wait "$UPSTREAM_PID" 2>/dev/null
        [[ -s $TMP/upstream.err ]] && log "$(cat "$TMP/upstream.err")"
    fi
    if [[ -n $DB_STARTED ]]; then
        (cd "$ROOT" && ./apxs-build.sh db-stop) >/dev/null 2>&1
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_http URL SECONDS: until something answers HTTP at URL
wait_http() {
    local url=$1 tries=$(( ${2:-20} * 10 ))
    for _ in $(seq "$tries"); do
        if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
        sleep 0.1
    done
    return 1
}

json_field() { # json_field FIELD  (reads JSON on stdin)
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined)process.exit(1);console.log(v)})' "$1"
}

# wrk latency value (e.g. 29.00us, 1.23ms, 1.00s, 1.00m) -> integer microseconds
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000;
        else if (u == "m") m = 60000000; else if (u == "h") m = 3600000000; else { print "NaN"; exit }
        printf "%d\n", n * m + 0.5 }'
}

declare -A RPS P50 P99 NOTE
BAD=0

# bench TARGET URL  (BENCH_MODEL / BENCH_KEY / BENCH_HEADERS exported by the caller)
bench() {
    local target=$1 url=$2 c t out
    log "== $target: warm-up ${WARMUP}s"
    wrk -t2 -c32 -d"${WARMUP}s" -s "$BENCH/post.lua" "$url" >/dev/null
    for c in 1 32; do
        t=$(( c == 1 ? 1 : 2 ))
        out=$RESULTS/$target-c$c.txt
        log "== $target: wrk -t$t -c$c -d${DURATION}s --latency"
        wrk -t"$t" -c"$c" -d"${DURATION}s" --latency -s "$BENCH/post.lua" "$url" >"$out"
        RPS[$target,$c]=$(awk '/^Requests\/sec:/ {printf "%d", $2 + 0.5}' "$out")
        P50[$target,$c]=$(to_us "$(awk '$1 == "50%" {print $2; exit}' "$out")")
        P99[$target,$c]=$(to_us "$(awk '$1 == "99%" {print $2; exit}' "$out")")
        local non2xx sock
        non2xx=$(awk '/^non2xx:/ {print $2}' "$out")
        sock=$(grep -E '^ +Socket errors' "$out" | sed 's/^ *//' || true)
        NOTE[$target,$c]=
        if [[ ${non2xx:-0} != 0 ]]; then
            NOTE[$target,$c]="$non2xx answers >= 400 (INVALID)"
            BAD=1
        fi
        if [[ -n $sock ]]; then
            NOTE[$target,$c]="${NOTE[$target,$c]:+${NOTE[$target,$c]}; }$sock"
            # connect errors or timeouts mean the figures are not trustworthy
            if ! grep -qE 'connect 0, read [0-9]+, write 0, timeout 0' <<<"$sock"; then BAD=1; fi
        fi
    done
}

# smoke TARGET -- curl args: one request that must come back 200 with the upstream's answer
smoke() {
    local target=$1 body code
    shift
    code=$(curl -s -o "$TMP/smoke.json" -w '%{http_code}' --max-time 10 "$@")
    body=$(head -c 600 "$TMP/smoke.json")
    [[ $code == 200 ]] || die "$target: smoke request got HTTP $code: $body"
    # the upstream's OpenAI answer carries its own id; the Anthropic one is translated, so its
    # text (which only the bench upstream sends) is the proof there
    grep -q '"chatcmpl-BenchUpstream\|"content":"Hello! How can I help you today?"' "$TMP/smoke.json" ||
        die "$target: the answer did not come from the bench upstream: $body"
}

# ---------------------------------------------------------------- tools
command -v wrk >/dev/null || { log "bench: installing wrk"; apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }
command -v node >/dev/null || die "node is required"
mkdir -p "$RESULTS"

# ---------------------------------------------------------------- upstream
gcc -O2 -Wall -Wextra -Werror -o "$BENCH/upstream" "$BENCH/upstream.c"
"$BENCH/upstream" 0 >"$TMP/upstream.out" 2>"$TMP/upstream.err" &
UPSTREAM_PID=$!
for _ in $(seq 50); do [[ -s $TMP/upstream.out ]] && break; sleep 0.1; done
UPSTREAM_PORT=$(json_field port <"$TMP/upstream.out") || die "upstream did not start"
UPSTREAM=http://127.0.0.1:$UPSTREAM_PORT
log "bench: upstream on $UPSTREAM"

for target in $TARGETS; do
    case $target in
    direct)
        export BENCH_MODEL=gpt-bench BENCH_KEY=sk-bench BENCH_HEADERS=
        smoke direct "$UPSTREAM/v1/chat/completions" -H 'content-type: application/json' \
            -d '{"model":"gpt-bench","messages":[{"role":"user","content":"hello"}]}'
        bench direct "$UPSTREAM/v1/chat/completions"
        ;;
    floopy)
        (cd "$ROOT" && ./apxs-build.sh build) >&2
        DB_STARTED=1
        (cd "$ROOT" && ./apxs-build.sh db-start) >&2
        [[ -s $FLOOPY_VAR/admin.token ]] || die "db-start did not create $FLOOPY_VAR/admin.token"
        FLOOPY_PORT=$(free_port)
        export FLOOPY_PORT FLOOPY_BENCH_UPSTREAM_PORT=$UPSTREAM_PORT
        mkdir -p "$FLOOPY_VAR/logs" "$FLOOPY_VAR/run"
        /usr/sbin/apache2 -f "$CONF" -t >&2 || die "bench.conf does not parse"
        HTTPD_STARTED=1
        /usr/sbin/apache2 -f "$CONF" -k start
        FLOOPY=http://127.0.0.1:$FLOOPY_PORT
        wait_http "$FLOOPY/v1/models" 20 || die "httpd did not come up on $FLOOPY (see $FLOOPY_VAR/logs/error.log)"
        ADMIN_TOKEN=$(tr -d '\r\n' <"$FLOOPY_VAR/admin.token")
        code=$(curl -s -o "$TMP/org.json" -w '%{http_code}' -X POST "$FLOOPY/floopy-admin/organizations" \
            -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
            -d "{\"name\":\"bench-$(date +%s)\",\"plan\":\"pro\"}")
        [[ $code == 201 ]] || die "create organization: HTTP $code $(cat "$TMP/org.json")"
        ORG_ID=$(json_field id <"$TMP/org.json")
        code=$(curl -s -o "$TMP/key.json" -w '%{http_code}' -X POST "$FLOOPY/floopy-admin/organizations/$ORG_ID/keys" \
            -H "Authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
            -d '{"role":"client","name":"bench"}')
        [[ $code == 201 ]] || die "create key: HTTP $code $(cat "$TMP/key.json")"
        CLIENT_KEY=$(json_field key <"$TMP/key.json")
        export BENCH_MODEL=auto BENCH_KEY=$CLIENT_KEY BENCH_HEADERS=
        smoke floopy "$FLOOPY/v1/chat/completions" -H 'content-type: application/json' \
            -H "Authorization: Bearer $CLIENT_KEY" \
            -d '{"model":"auto","messages":[{"role":"user","content":"hello"}]}'
        bench floopy "$FLOOPY/v1/chat/completions"
        ;;
    floopy-anthropic)
        # needs the floopy target first (same httpd, same key): Anthropic-format upstream
        [[ -n ${CLIENT_KEY:-} ]] || die "floopy-anthropic runs after the floopy target"
        export BENCH_MODEL=benchclaude/claude-bench BENCH_KEY=$CLIENT_KEY BENCH_HEADERS=
        smoke floopy-anthropic "$FLOOPY/v1/chat/completions" -H 'content-type: application/json' \
            -H "Authorization: Bearer $CLIENT_KEY" \
            -d '{"model":"benchclaude/claude-bench","messages":[{"role":"user","content":"hello"}]}'
        bench floopy-anthropic "$FLOOPY/v1/chat/completions"
        ;;
    portkey)
        PK=$BENCH/node_modules/@portkey-ai/gateway/build/start-server.js
        if [[ ! -f $PK ]]; then
            log "bench: installing @portkey-ai/gateway into t/bench/node_modules"
            (cd "$BENCH" && npm install --no-audit --no-fund >&2)
        fi
        PORTKEY_PORT=$(free_port)
        # --headless and NODE_ENV=production: no console UI and no log page; the preload
        # keeps it on 127.0.0.1 (it would listen on every interface otherwise).
        NODE_ENV=production node -r "$BENCH/loopback-only.cjs" "$PK" --port="$PORTKEY_PORT" --headless \
            >"$TMP/portkey.log" 2>&1 &
        PORTKEY_PID=$!
        PORTKEY=http://127.0.0.1:$PORTKEY_PORT
        wait_http "$PORTKEY/" 30 || die "portkey did not come up: $(tail -5 "$TMP/portkey.log")"
        # Portkey routes to any OpenAI-compatible base URL given per request:
        # x-portkey-provider: openai + x-portkey-custom-host: <base URL ending in /v1>.
        export BENCH_MODEL=gpt-bench BENCH_KEY=sk-bench
        export BENCH_HEADERS="x-portkey-provider: openai|x-portkey-custom-host: $UPSTREAM/v1"
        smoke portkey "$PORTKEY/v1/chat/completions" -H 'content-type: application/json' \
            -H "Authorization: Bearer sk-bench" -H 'x-portkey-provider: openai' \
            -H "x-portkey-custom-host: $UPSTREAM/v1" \
            -d '{"model":"gpt-bench","messages":[{"role":"user","content":"hello"}]}'
        bench portkey "$PORTKEY/v1/chat/completions"
        kill "$PORTKEY_PID" 2>/dev/null || true
        wait "$PORTKEY_PID" 2>/dev/null || true
        PORTKEY_PID=
        ;;
    *) die "unknown target $target (expected direct, floopy, floopy-anthropic, portkey)" ;;
    esac
done

# ---------------------------------------------------------------- report
{
    echo "# mod_floopy benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), ${DURATION}s per run, $(nproc) CPUs, $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
    echo "# POST /v1/chat/completions, small body; upstream = t/bench/upstream.c (static answer)"
    printf '%-16s %5s %10s %10s %10s  %s\n' target conns 'req/s' 'p50_us' 'p99_us' note
    for target in $TARGETS; do
        for c in 1 32; do
            printf '%-16s %5s %10s %10s %10s  %s\n' "$target" "$c" "${RPS[$target,$c]}" \
                "${P50[$target,$c]}" "${P99[$target,$c]}" "${NOTE[$target,$c]}"
        done
    done
    if [[ -n ${RPS[floopy,32]:-} && -n ${RPS[portkey,32]:-} && ${RPS[portkey,32]} != 0 ]]; then
        echo "floopy/portkey rps @32 conns: $(awk -v a="${RPS[floopy,32]}" -v b="${RPS[portkey,32]}" 'BEGIN {printf "%.2f", a / b}')"
    else
        echo "floopy/portkey rps @32 conns: n/a"
    fi
    if [[ -n ${P50[floopy,1]:-} && -n ${P50[direct,1]:-} ]]; then
        echo "floopy p50 - direct p50 @1 conn: $(( P50[floopy,1] - P50[direct,1] )) us"
    else
        echo "floopy p50 - direct p50 @1 conn: n/a"
    fi
} | tee "$RESULTS/latest.txt"

if [[ $BAD != 0 ]]; then
    log "bench: some runs had errors; their figures are not valid (see $RESULTS)"
    exit 1
fi
