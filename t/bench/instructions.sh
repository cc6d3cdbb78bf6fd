#!/usr/bin/env bash
# Instructions per chat request in httpd's request thread, counted by callgrind: the one cost
# figure a shared 2-core machine reproduces exactly (wall-clock runs there differ by more than
# the changes being measured). httpd runs with -X under valgrind on t/bench/bench.conf, with its
# own MariaDB (BENCH_VAR, default var/bench-instr) and the static upstream; N requests (default
# 1000) go one after another on one keep-alive connection. Counting covers
# ap_process_async_request only: the request's work from its headers on, the handler and what
# it does after the answer (the decision's row, the judge and shadow checks), not the writer's
# or the router's background threads.
#
#   t/bench/instructions.sh [N]
#
# Prints the total and the inclusive count of the main steps, per request.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-1000}
export FLOOPY_ROOT=$ROOT
export FLOOPY_VAR=${BENCH_VAR:-$ROOT/var/bench-instr}
CONF=$ROOT/t/bench/bench.conf
TMP=$(mktemp -d)
chmod 777 "$TMP"             # httpd's child writes the profile as the User of site.conf
UP_PID=
VG_PID=
cleanup() {
    set +e
    [[ -n $VG_PID ]] && kill "$VG_PID" 2>/dev/null && wait "$VG_PID" 2>/dev/null
    [[ -n $UP_PID ]] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
    (cd "$ROOT" && ./apxs-build.sh db-stop) >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
command -v valgrind >/dev/null || apt-get install -y valgrind >/dev/null

json_field() {
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"
}

gcc -O2 -Wall -Wextra -Werror -o "$TMP/upstream" "$ROOT/t/bench/upstream.c"
"$TMP/upstream" 0 >"$TMP/upstream.out" 2>/dev/null &
UP_PID=$!
for _ in $(seq 50); do [[ -s $TMP/upstream.out ]] && break; sleep 0.1; done
export FLOOPY_BENCH_UPSTREAM_PORT
FLOOPY_BENCH_UPSTREAM_PORT=$(json_field port <"$TMP/upstream.out")
(cd "$ROOT" && ./apxs-build.sh build && ./apxs-build.sh db-start) >&2
export FLOOPY_PORT
FLOOPY_PORT=$(node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
mkdir -p "$FLOOPY_VAR/logs" "$FLOOPY_VAR/run"
touch "$TMP/cg.out" && chmod 666 "$TMP/cg.out"
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" --collect-atstart=no \
    --toggle-collect=ap_process_async_request /usr/sbin/apache2 -X -f "$CONF" 2>"$TMP/vg.err" &
VG_PID=$!
BASE=http://127.0.0.1:$FLOOPY_PORT
for _ in $(seq 300); do curl -s -o /dev/null "$BASE/v1/models" && break; sleep 0.2; done
TOKEN=$(tr -d '\r\n' <"$FLOOPY_VAR/admin.token")
ORG=$(curl -s -X POST "$BASE/floopy-admin/organizations" -H "Authorization: Bearer $TOKEN" \
      -d "{\"name\":\"instr-$(date +%s%N)\",\"plan\":\"pro\"}" | json_field id)
KEY=$(curl -s -X POST "$BASE/floopy-admin/organizations/$ORG/keys" -H "Authorization: Bearer $TOKEN" \
      -d '{"role":"client","name":"instr"}' | json_field key)
# the requests, one after another on one connection (the first ones' cold work, a key lookup
# and the first statistics load, is a fraction of a percent of N's)
node -e '
const http = require("node:http");
const [url, key, n] = [process.argv[1], process.argv[2], +process.argv[3]];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({ model: "auto", messages: [{ role: "user", content: "hello" }] });
const one = () => new Promise((res, rej) => {
  const rq = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json",
    authorization: "Bearer " + key, "content-length": body.length } }, r => {
    r.resume(); r.on("end", () => r.statusCode === 200 ? res() : rej(new Error("HTTP " + r.statusCode)));
  });
  rq.on("error", rej); rq.end(body);
});
(async () => { for (let i = 0; i < n; i++) await one(); agent.destroy(); })()
  .catch(e => { console.error(e.message); process.exit(1); });
' "$BASE/v1/chat/completions" "$KEY" "$N"
kill -TERM "$VG_PID"
wait "$VG_PID" 2>/dev/null || true
VG_PID=
[[ -s $TMP/cg.out ]] || { cat "$TMP/vg.err" >&2; echo "instructions: no profile written" >&2; exit 1; }
echo "# instructions per chat request in the request thread ($N requests, callgrind, $(git -C "$ROOT" rev-parse --short HEAD))"
callgrind_annotate --inclusive=yes --threshold=100 "$TMP/cg.out" 2>/dev/null | awk -v n="$N" '
    BEGIN { split("ap_process_async_request floopy_handle_chat floopy_authenticate floopy_chat_read " \
                  "floopy_choose fl_router_choose fl_http_perform fl_openai_parse_response record " \
                  "fl_decision_row_args floopy_writer_enqueue floopy_judge_offer floopy_shadow_offer", want, " ")
            for (i in want) order[want[i]] = i }
    /^ *[0-9,]+ \( *[0-9.]+%\) / {
        v = $1; gsub(",", "", v); f = $0; sub(/^.*:/, "", f); sub(/ \[.*$/, "", f)
        if ((f in order) && !(f in seen)) seen[f] = v
    }
    END { for (i = 1; i <= length(want); i++) { f = want[i]
            printf "%-28s %9.0f\n", f == "ap_process_async_request" ? "total" : f, seen[f] / n } }'
