#!/usr/bin/env bash
# mod_floopy: every command a newcomer, a developer or CI runs. See README.md and docs/design.md.
#   ./apxs-build.sh run     start the gateway (MariaDB, httpd, a stand-in provider when no key is set)
#   ./apxs-build.sh test    build and pass the whole suite
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export FLOOPY_ROOT=$ROOT
export FLOOPY_VAR=${FLOOPY_VAR:-$ROOT/var}
export FLOOPY_PORT=${FLOOPY_PORT:-8080}
DB_NAME=${FLOOPY_DB_NAME:-floopy}
HTTPD=/usr/sbin/apache2

DEBS=(apache2 apache2-dev libaprutil1-dbd-mysql mariadb-server mariadb-client libmariadb-dev
      libjansson-dev libcurl4-openssl-dev libssl-dev openssl curl wrk)

say() { printf '%s\n' "$*" >&2; }
die() { say "apxs-build.sh: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*"; fi
}

cmd_deps() {
  local missing=() p
  for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # Node may come from elsewhere than Debian (it does on these machines): ask for it by command.
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    # policy-rc.d keeps the packaged services (apache2, mariadb) from starting: we run private ones.
    as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  if [ ! "$ROOT/t/node_modules/.package-lock.json" -nt "$ROOT/t/package-lock.json" ]; then
    (cd "$ROOT/t" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

SOURCES() {
  ls "$ROOT"/mod_floopy/*.c "$ROOT"/mod_floopy/*/*.c "$ROOT"/mod_floopy/core/*/*.c "$ROOT"/admin/*.c | sort -u
}

cmd_build() {
  local apxs
  apxs=$(command -v apxs || command -v apxs2) || die "apxs not found (apt-get install apache2-dev)"
  cd "$ROOT/mod_floopy"
  # one build at a time per tree: libtool's intermediate files are shared
  exec 9>"$ROOT/mod_floopy/.build.lock"
  flock 9
  # shellcheck disable=SC2046
  "$apxs" -c -o mod_floopy.la \
    -Wc,-Wall -Wc,-Wextra -Wc,-Werror -Wc,-Wno-unused-parameter -Wc,-O2 -Wc,-std=gnu11 \
    -I"$ROOT/mod_floopy" -I"$ROOT/mod_floopy/core" -I"$ROOT/mod_floopy/core/providers" \
    -I"$ROOT/mod_floopy/core/route" -I"$ROOT/mod_floopy/core/cache" -I"$ROOT/mod_floopy/core/limits" \
    -I"$ROOT/admin" \
    $(SOURCES) -ljansson -lcurl -lcrypto -lm >"$ROOT/mod_floopy/build.log" 2>&1 \
    || { cat "$ROOT/mod_floopy/build.log" >&2; die "build failed"; }
  cd "$ROOT"
  [ -f "$ROOT/mod_floopy/.libs/mod_floopy.so" ] || die "build produced no mod_floopy.so"
  say "built mod_floopy/.libs/mod_floopy.so"
}

cmd_unit() {
  local out=$ROOT/t/unit/run_tests
  # shellcheck disable=SC2046
  gcc -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter \
    $(apr-1-config --cflags --cppflags --includes) $(apu-1-config --includes) \
    -I"$ROOT/mod_floopy/core" -I"$ROOT/mod_floopy/core/providers" -I"$ROOT/mod_floopy/core/route" \
    -I"$ROOT/mod_floopy/core/cache" -I"$ROOT/mod_floopy/core/limits" \
    -I"$ROOT/t/unit" "$ROOT"/t/unit/*.c "$ROOT"/mod_floopy/core/*.c "$ROOT"/mod_floopy/core/*/*.c \
    -o "$out" \
    $(apr-1-config --link-ld --libs) $(apu-1-config --link-ld --libs) -ljansson -lcurl -lcrypto -lm
  "$out"
}

# --- the private MariaDB -------------------------------------------------------------------

db_sock() {
  local s=$FLOOPY_VAR/run/mysqld.sock
  # A unix socket path must fit in sun_path (108 bytes); a deep checkout gets a short alias.
  if [ ${#s} -gt 100 ]; then
    local alias=/tmp/floopy-$(printf '%s' "$FLOOPY_VAR" | sha256sum | cut -c1-12)
    ln -sfn "$FLOOPY_VAR/run" "$alias"
    s=$alias/mysqld.sock
  fi
  printf '%s' "$s"
}

db_client() { mariadb --no-defaults -S "$(db_sock)" -u "$(id -un)" "$@"; }

db_running() { mariadb-admin --no-defaults -S "$(db_sock)" -u "$(id -un)" ping >/dev/null 2>&1; }

cmd_db_start() {
  local data=$FLOOPY_VAR/mysql sock
  mkdir -p "$FLOOPY_VAR/run" "$FLOOPY_VAR/logs"
  sock=$(db_sock)
  if [ ! -d "$data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$data" --user="$(id -un)" \
      --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
      --skip-test-db >"$FLOOPY_VAR/logs/mysql-install.log" 2>&1 \
      || { cat "$FLOOPY_VAR/logs/mysql-install.log" >&2; die "mariadb-install-db failed"; }
  fi
  if ! db_running; then
    nohup /usr/sbin/mariadbd --no-defaults --datadir="$data" --socket="$sock" \
      --pid-file="$FLOOPY_VAR/run/mysqld.pid" --skip-networking --user="$(id -un)" \
      --log-error="$FLOOPY_VAR/logs/mysqld.err" --max-connections=600 \
      --innodb-buffer-pool-size="${FLOOPY_DB_POOL:-256M}" --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_bin >/dev/null 2>&1 &
    local i
    for i in $(seq 1 300); do db_running && break; sleep 0.1; done
    db_running || { tail -20 "$FLOOPY_VAR/logs/mysqld.err" >&2; die "MariaDB did not start"; }
  fi
  db_prepare
  db_migrate
  db_write_httpd_conf
}

db_prepare() {
  local pwfile=$FLOOPY_VAR/db.password
  [ -s "$pwfile" ] || (umask 077; openssl rand -hex 24 >"$pwfile")
  if [ "${FLOOPY_DB_RESET:-}" = 1 ]; then db_client -e "DROP DATABASE IF EXISTS \`$DB_NAME\`"; fi
  db_client <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS 'floopy'@'localhost' IDENTIFIED BY '$(cat "$pwfile")';
ALTER USER 'floopy'@'localhost' IDENTIFIED BY '$(cat "$pwfile")';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO 'floopy'@'localhost';
CREATE TABLE IF NOT EXISTS \`$DB_NAME\`.schema_migrations (
  version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL,
  applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
SQL
}

# Each sql/NNN_name.sql runs once, in order; its version is recorded in the same transaction
# as far as MariaDB allows (DDL commits implicitly, so a failed migration stops the run loudly).
db_migrate() {
  local f base ver
  for f in "$ROOT"/sql/[0-9][0-9][0-9]_*.sql; do
    base=$(basename "$f" .sql); ver=$((10#${base%%_*}))
    if [ -z "$(db_client -N -D "$DB_NAME" -e "SELECT 1 FROM schema_migrations WHERE version=$ver")" ]; then
      db_client -D "$DB_NAME" <"$f" || die "migration $base failed"
      db_client -D "$DB_NAME" -e "INSERT INTO schema_migrations (version, name) VALUES ($ver, '$base')"
      say "applied migration $base"
    fi
  done
}

db_write_httpd_conf() {
  local pw user group
  pw=$(cat "$FLOOPY_VAR/db.password")
  (umask 077; cat >"$FLOOPY_VAR/dbd.conf" <<EOF
# written by apxs-build.sh db-start: the private MariaDB for this tree
DBDriver mysql
DBDParams "sock=$(db_sock) user=floopy pass=$pw dbname=$DB_NAME"
DBDInitSQL "SET NAMES utf8mb4"
DBDMin 2
DBDKeep 8
DBDMax 64
DBDExptime 300
EOF
  )
  if [ "$(id -u)" = 0 ]; then
    user=www-data; group=www-data
    id "$user" >/dev/null 2>&1 || { user=daemon; group=daemon; }
    printf 'User %s\nGroup %s\n' "$user" "$group" >"$FLOOPY_VAR/site.conf"
  else
    : >"$FLOOPY_VAR/site.conf"
  fi
  [ -s "$FLOOPY_VAR/admin.token" ] || (umask 077; openssl rand -hex 32 >"$FLOOPY_VAR/admin.token")
}

cmd_db_stop() {
  local pidf=$FLOOPY_VAR/run/mysqld.pid pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  kill "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

# --- httpd --------------------------------------------------------------------------------

httpd_ctl() { # conf action
  "$HTTPD" -f "$1" -k "$2"
}

httpd_wait_port() {
  local i
  for i in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/v1/models" && return 0
    sleep 0.1
  done
  tail -20 "$FLOOPY_VAR/logs/error.log" >&2 || true
  die "httpd did not answer on port $1"
}

httpd_stop() { # conf
  local pidf=$FLOOPY_VAR/run/httpd.pid pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  httpd_ctl "$1" stop >/dev/null 2>&1 || true
  local i
  for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# --- the quick start ----------------------------------------------------------------------

admin_api() { # method path [json]
  curl -sS -f -X "$1" -H "Authorization: Bearer $(cat "$FLOOPY_VAR/admin.token")" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} \
    "http://127.0.0.1:$FLOOPY_PORT/floopy-admin$2"
}

json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[process.argv[1]]))' "$1"; }

demo_keys() {
  local key
  if [ -s "$FLOOPY_VAR/demo.key" ]; then
    key=$(cat "$FLOOPY_VAR/demo.key")
    if curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
        "http://127.0.0.1:$FLOOPY_PORT/v1/models" | grep -q 200; then return 0; fi
  fi
  local org
  org=$(admin_api POST /organizations '{"name":"demo","plan":"pro"}' | json_field id)
  (umask 077
   admin_api POST "/organizations/$org/keys" '{"role":"client","name":"demo client"}' | json_field key >"$FLOOPY_VAR/demo.key"
   admin_api POST "/organizations/$org/keys" '{"role":"admin","name":"demo admin"}' | json_field key >"$FLOOPY_VAR/demo-admin.key")
  printf '%s' "$org" >"$FLOOPY_VAR/demo.org"
}

start_standin() {
  local pidf=$FLOOPY_VAR/run/standin.pid
  local port=${FLOOPY_STANDIN_PORT:-$((FLOOPY_PORT + 1))}
  export FLOOPY_UPSTREAM=http://127.0.0.1:$port/v1
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then return 0; fi
  nohup node "$ROOT/t/mock/openai-mock.mjs" --port "$port" >"$FLOOPY_VAR/logs/standin.log" 2>&1 &
  echo $! >"$pidf"
  local i
  for i in $(seq 1 100); do grep -q '"port"' "$FLOOPY_VAR/logs/standin.log" && break; sleep 0.1; done
  grep -q '"port"' "$FLOOPY_VAR/logs/standin.log" || die "the stand-in provider did not start (see $FLOOPY_VAR/logs/standin.log)"
}

# The providers the quick start can pick up from the environment, each read the way its own SDK
# reads it: type | FloopyProvider name | key variable | base-URL variable | extra options (a value
# written $VAR comes from the environment) | priced models (name:input:output:cached, USD per
# million tokens, from the vendors' pricing pages), which join the `auto` route.
PROVIDERS=(
  "openai|openai|OPENAI_API_KEY|OPENAI_BASE_URL||gpt-4.1-nano:0.10:0.40:0.025 gpt-4o-mini:0.15:0.60:0.075 gpt-4.1-mini:0.40:1.60:0.10 gpt-4o:2.50:10.00:1.25"
  "anthropic|anthropic|ANTHROPIC_API_KEY|ANTHROPIC_BASE_URL||claude-3-5-haiku-20241022:0.80:4.00:0.08 claude-sonnet-4-20250514:3.00:15.00:0.30"
  "gemini|gemini|GEMINI_API_KEY|||gemini-2.0-flash:0.10:0.40:0.025 gemini-2.5-flash:0.30:2.50:0.075 gemini-2.5-pro:1.25:10.00:0.31"
  "bedrock|bedrock|AWS_ACCESS_KEY_ID|AWS_ENDPOINT_URL_BEDROCK_RUNTIME|region=\$AWS_REGION|"
  "azure|azure|AZURE_OPENAI_API_KEY|AZURE_OPENAI_ENDPOINT|api_version=\$OPENAI_API_VERSION|"
  "cohere|cohere|CO_API_KEY|||"
  "deepseek|deepseek|DEEPSEEK_API_KEY|||" "mistral|mistral|MISTRAL_API_KEY|||" "xai|xai|XAI_API_KEY|||"
  "groq|groq|GROQ_API_KEY|||" "cerebras|cerebras|CEREBRAS_API_KEY|||" "sambanova|sambanova|SAMBANOVA_API_KEY|||"
  "together|together|TOGETHER_API_KEY|||" "fireworks|fireworks|FIREWORKS_API_KEY|||"
  "perplexity|perplexity|PERPLEXITY_API_KEY|||" "ai21|ai21|AI21_API_KEY|||"
  "deepinfra|deepinfra|DEEPINFRA_TOKEN|||" "nebius|nebius|NEBIUS_API_KEY|||" "novita|novita|NOVITA_API_KEY|||"
)

# Writes $FLOOPY_VAR/demo-providers.conf: a provider for every key in the environment, or the
# local stand-in when there is none. Prints the names of the providers it configured.
write_demo_providers() {
  local out=$FLOOPY_VAR/demo-providers.conf entry type name keyv basev extra models opt m
  local mname pin pout pcache route="" found=""
  : >"$out.tmp"
  for entry in "${PROVIDERS[@]}"; do
    IFS='|' read -r type name keyv basev extra models <<<"$entry"
    [ -n "${!keyv:-}" ] || continue
    if [ "$type" = bedrock ] && [ -z "${AWS_REGION:-}" ]; then say "AWS_REGION is not set: Bedrock left out"; continue; fi
    if [ "$type" = azure ] && { [ -z "${AZURE_OPENAI_ENDPOINT:-}" ] || [ -z "${OPENAI_API_VERSION:-}" ]; }; then
      say "Azure needs AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION: left out"; continue
    fi
    opt="type=$type"
    [ "$type" = bedrock ] || opt="$opt key_env=$keyv"
    [ -n "$basev" ] && opt="$opt base_url_env=$basev"
    [ "$type" = openai ] && opt="$opt base_url=https://api.openai.com/v1"
    [ -n "$extra" ] && opt="$opt $(eval echo "$extra")"
    echo "FloopyProvider $name $opt" >>"$out.tmp"
    for m in $models; do
      IFS=':' read -r mname pin pout pcache <<<"$m"
      echo "FloopyModel $name/$mname input=$pin output=$pout cached_input=$pcache" >>"$out.tmp"
      route="$route $name/$mname"
    done
    found="$found $name"
  done
  if [ -z "$found" ]; then
    {
      echo "FloopyProvider local type=openai base_url=${FLOOPY_UPSTREAM} timeout=120000 idle_timeout=30000"
      echo "FloopyModel local/stand-in-mini  input=0.15 output=0.60 cached_input=0.075"
      echo "FloopyModel local/stand-in       input=2.50 output=10.00 cached_input=1.25"
      echo "FloopyModel local/stand-in-large input=10.00 output=30.00"
    } >>"$out.tmp"
    route=" local/stand-in local/stand-in-mini local/stand-in-large"
  fi
  [ -n "$route" ] && echo "FloopyRoute auto$route" >>"$out.tmp"
  mv "$out.tmp" "$out"
  printf '%s' "$found"
}

provider_keys_set() {
  local entry type name keyv rest
  for entry in "${PROVIDERS[@]}"; do
    IFS='|' read -r type name keyv rest <<<"$entry"
    [ -n "${!keyv:-}" ] && return 0
  done
  return 1
}

cmd_run() {
  local found
  cmd_deps
  cmd_build
  cmd_db_start
  provider_keys_set || start_standin
  found=$(write_demo_providers)
  if [ -n "$found" ]; then
    say "providers from the environment:$found (pin any of their models as provider/model)"
  else
    say "no provider key in the environment: routing to the local stand-in provider at $FLOOPY_UPSTREAM"
  fi
  httpd_stop "$ROOT/conf/demo.conf"
  httpd_ctl "$ROOT/conf/demo.conf" start
  httpd_wait_port "$FLOOPY_PORT"
  demo_keys
  cat <<EOF

mod_floopy is running on http://127.0.0.1:$FLOOPY_PORT (httpd, event MPM; logs in $FLOOPY_VAR/logs)
client key: $(cat "$FLOOPY_VAR/demo.key")   (also in var/demo.key)
admin key:  $(cat "$FLOOPY_VAR/demo-admin.key")   (also in var/demo-admin.key)

Try it:
curl -s http://127.0.0.1:$FLOOPY_PORT/v1/chat/completions -H "Authorization: Bearer $(cat "$FLOOPY_VAR/demo.key")" -H 'Content-Type: application/json' -d '{"model":"auto","messages":[{"role":"user","content":"Hello!"}]}'

Stop it with: ./apxs-build.sh stop
EOF
}

cmd_stop() {
  httpd_stop "$ROOT/conf/demo.conf"
  if [ -f "$FLOOPY_VAR/run/standin.pid" ]; then
    kill "$(cat "$FLOOPY_VAR/run/standin.pid")" 2>/dev/null || true
    rm -f "$FLOOPY_VAR/run/standin.pid"
  fi
  cmd_db_stop
  say "stopped"
}

# Each mock provider against the provider's official SDK: a mock is only as good as its fidelity.
cmd_fidelity() {
  local c failed=0
  for c in "$ROOT"/t/mock/check-*.mjs; do
    [ "$(basename "$c")" = check-lib.mjs ] && continue
    printf '%s: ' "$(basename "$c" .mjs)"
    node "$c" 2>&1 | tail -1
    [ "${PIPESTATUS[0]}" = 0 ] || failed=1
  done
  return $failed
}

cmd_test() {
  cmd_deps
  cmd_build
  cmd_unit
  node "$ROOT/t/lint/log-tags.mjs"
  cmd_fidelity
  node "$ROOT/t/e2e/run.mjs"
}

main() {
  local c=${1:-help}; shift || true
  case "$c" in
    deps) cmd_deps ;;
    build) cmd_build ;;
    unit) cmd_unit ;;
    db-start) cmd_db_start ;;
    db-stop) cmd_db_stop ;;
    run) cmd_run ;;
    stop) cmd_stop ;;
    test) cmd_test ;;
    fidelity) cmd_fidelity ;;
    bench) cmd_deps; exec bash "$ROOT/t/bench/run.sh" "$@" ;;
    *) sed -n '2,4p' "$0"; say "commands: deps build unit fidelity db-start db-stop run stop test bench"; exit 2 ;;
  esac
}
main "$@"
