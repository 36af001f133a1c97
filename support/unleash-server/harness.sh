#!/usr/bin/env bash
# Starts and stops a real Unleash server (npm unleash-server 8.2.0, see
# server.js) on a private PostgreSQL 15 cluster, both on free loopback ports,
# for forkflag's integration tests and demo.
#
#   harness.sh install               apt-get postgresql-15 (and curl) if
#                                    missing; npm ci
#                                    when node_modules is missing or stale
#   harness.sh start <state-dir>     start everything in the background, wait
#                                    until GET /health answers 200, write
#                                    <state-dir>/env (KEY=VALUE lines:
#                                    UNLEASH_URL, UNLEASH_ADMIN_TOKEN,
#                                    UNLEASH_CLIENT_TOKEN, UNLEASH_PID, PG_PORT)
#   harness.sh stop <state-dir>      stop both, remove the state dir; safe to
#                                    repeat and after a failed start
#   harness.sh halt <state-dir>      stop only the server (database kept)
#   harness.sh resume <state-dir>    start it again, same port and tokens
#   harness.sh run -- <command...>   start in a fresh temp dir, run the command
#                                    with the env file exported, always stop;
#                                    exits with the command's status
#
# Knobs (environment): FORKFLAG_UNLEASH_START_TIMEOUT (s, default 120), and
# the server's test knobs documented in server.js, which default here to the
# fast values below. Set one to "default" to get the server's own value.
# Success is quiet; failures print the logs to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG_BIN="${FORKFLAG_PG_BIN:-/usr/lib/postgresql/15/bin}"
START_TIMEOUT="${FORKFLAG_UNLEASH_START_TIMEOUT:-120}"
MARKER=".forkflag-unleash-state"
STAMP="$HERE/node_modules/.forkflag-lock.sha256"

# Fast server-side intervals for tests (see server.js for what each does).
: "${FORKFLAG_METRICS_FLUSH_MS:=200}"
: "${FORKFLAG_REGISTRATION_FLUSH_MS:=200}"
: "${FORKFLAG_REVISION_POLL_MS:=200}"
: "${FORKFLAG_LAST_SEEN_FLUSH_MS:=1000}"
: "${FORKFLAG_KNOWN_FLAGS_CACHE_MS:=0}"

log() { printf 'unleash-harness: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a command as the PostgreSQL owner: the postgres user when we are root
# (initdb and postgres refuse to run as root), ourselves otherwise.
as_pg() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

lock_hash() { sha256sum "$HERE/package-lock.json" | cut -d' ' -f1; }

installed() {
  [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && command -v curl >/dev/null \
    && [ -f "$STAMP" ] \
    && [ "$(cat "$STAMP")" = "$(lock_hash)" ] \
    && [ -f "$HERE/node_modules/unleash-server/package.json" ]
}

cmd_install() {
  command -v node >/dev/null || die "node is not installed"
  command -v npm >/dev/null || die "npm is not installed"
  command -v flock >/dev/null || die "flock (util-linux) is not installed"
  # One installer at a time (parallel test processes may all call start).
  exec 9>"$HERE/.install.lock"
  flock -w 900 9 || die "timed out waiting for another install to finish"

  local missing=()
  [ -x "$PG_BIN/initdb" ] || missing+=(postgresql-15)
  command -v curl >/dev/null || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    is_root || die "missing ${missing[*]} ($PG_BIN/initdb, curl); installing needs root"
    local aptlog
    aptlog="$(mktemp)"
    log "installing ${missing[*]} with apt-get"
    if ! { DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -q \
           && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q \
                --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
      cat "$aptlog" >&2
      rm -f "$aptlog"
      die "apt-get install ${missing[*]} failed"
    fi
    rm -f "$aptlog"
    [ -x "$PG_BIN/initdb" ] || die "postgresql-15 installed but $PG_BIN/initdb is missing"
  fi

  if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(lock_hash)" ] \
     || [ ! -f "$HERE/node_modules/unleash-server/package.json" ]; then
    local npmlog
    npmlog="$(mktemp)"
    # unleash-server declares node >= 22 but runs on 20: no engine-strict.
    # No install scripts: none is needed (husky, a telemetry ping, a banner,
    # an optional native ssh2 speed-up).
    if ! (cd "$HERE" && timeout 900 npm ci --engine-strict=false --ignore-scripts \
            --no-audit --no-fund --loglevel=error) >"$npmlog" 2>&1; then
      cat "$npmlog" >&2
      rm -f "$npmlog"
      die "npm ci failed in $HERE"
    fi
    rm -f "$npmlog"
    lock_hash >"$STAMP"
  fi
  exec 9>&-
}

# A free TCP port on 127.0.0.1 (the kernel's choice; released at once, so a
# caller that loses the race retries).
free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# Is pid alive and (guarding against pid reuse) running the expected program?
pid_alive() {
  local pid="$1" want="$2"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -z "$want" ] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$want"
}

# wait_gone PID SECONDS WANT: wait (bounded) until PID has exited.
wait_gone() {
  local pid="$1" secs="$2" want="${3:-}" i
  for ((i = 0; i < secs * 10; i++)); do
    pid_alive "$pid" "$want" || return 0
    sleep 0.1
  done
  ! pid_alive "$pid" "$want"
}

print_logs() {
  local state="$1" pgroot
  pgroot="$(pg_root "$state")"
  if [ -f "$state/unleash.log" ]; then
    log "----- unleash server log ($state/unleash.log, last 200 lines) -----"
    tail -n 200 "$state/unleash.log" >&2 || true
  fi
  if [ -n "$pgroot" ] && [ -f "$pgroot/postgres.log" ]; then
    log "----- postgres log ($pgroot/postgres.log, last 60 lines) -----"
    tail -n 60 "$pgroot/postgres.log" >&2 || true
  fi
}

pg_root() {
  local state="$1"
  if [ -f "$state/pg.dir" ]; then cat "$state/pg.dir"; else echo "$state/pg"; fi
}

# Picks where the cluster lives: <state>/pg when the postgres user can reach
# it and the socket path fits, else a private dir under /tmp (recorded in
# <state>/pg.dir so stop finds and removes it).
choose_pg_root() {
  local state="$1" root="$1/pg"
  if is_root; then chmod o+x "$state"; fi
  if [ "${#root}" -gt 80 ] || ! as_pg test -x "$state"; then
    root="$(mktemp -d /tmp/forkflag-pg.XXXXXX)"
  fi
  echo "$root" >"$state/pg.dir"
  echo "$root"
}

start_postgres() {
  local state="$1" root data sock port attempt pw
  root="$(choose_pg_root "$state")"
  data="$root/data"
  sock="$root/sock"
  mkdir -p "$data" "$sock"
  chmod 700 "$root" "$data" "$sock"
  if is_root; then chown -R postgres:postgres "$root"; fi

  # Local socket: trust (the socket dir is private to the cluster's owner).
  # TCP on 127.0.0.1: password (scram) for the unleash role.
  if ! as_pg "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync \
        >"$state/initdb.log" 2>&1; then
    cat "$state/initdb.log" >&2
    return 1
  fi
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$sock'"
    echo "unix_socket_permissions = 0700"
    echo "max_connections = 40"
    echo "shared_buffers = 32MB"
    # A throwaway test database: durability is not needed, speed is.
    echo "fsync = off"
    echo "synchronous_commit = off"
    echo "full_page_writes = off"
    echo "log_min_messages = warning"
  } | as_pg tee -a "$data/postgresql.conf" >/dev/null

  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    # setsid: the cluster is not in the caller's process group, so a Ctrl-C
    # meant for the test command does not kill it behind stop's back.
    if as_pg setsid "$PG_BIN/pg_ctl" -D "$data" -l "$root/postgres.log" \
          -o "-p $port" -w -t 60 start >"$state/pg_ctl.log" 2>&1 </dev/null; then
      echo "$port" >"$state/pg.port"
      break
    fi
    if grep -qiE 'could not (bind|create listen)|address already in use' "$root/postgres.log" 2>/dev/null \
       && [ "$attempt" -lt 5 ]; then
      continue
    fi
    cat "$state/pg_ctl.log" >&2
    return 1
  done
  [ -f "$state/pg.port" ] || return 1

  pw="$(random_hex 16)"
  echo "$pw" >"$state/pg.password"
  chmod 600 "$state/pg.password"
  if ! as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres \
        >"$state/psql.log" 2>&1 <<SQL
CREATE ROLE unleash LOGIN PASSWORD '$pw';
CREATE DATABASE unleash OWNER unleash;
SQL
  then
    cat "$state/psql.log" >&2
    return 1
  fi
}

start_unleash() {
  local state="$1" listen_port="${2:-0}" pg_port admin client pid port deadline code
  pg_port="$(cat "$state/pg.port")"
  if [ -s "$state/tokens" ]; then
    # A resumed server keeps the tokens it was first started with.
    { read -r admin; read -r client; } <"$state/tokens"
  else
    admin="*:*.$(random_hex 24)"
    client="*:development.$(random_hex 24)"
    printf '%s\n%s\n' "$admin" "$client" >"$state/tokens"
  fi
  rm -f "$state/unleash.port" "$state/unleash.pid"

  local pg_password
  pg_password="$(cat "$state/pg.password")"
  (
    cd "$HERE"
    export UNLEASH_HTTP_HOST=127.0.0.1 UNLEASH_HTTP_PORT="$listen_port" \
      UNLEASH_PORT_FILE="$state/unleash.port" UNLEASH_PID_FILE="$state/unleash.pid" \
      DATABASE_HOST=127.0.0.1 DATABASE_PORT="$pg_port" DATABASE_NAME=unleash \
      DATABASE_USERNAME=unleash DATABASE_PASSWORD="$pg_password" \
      DATABASE_SSL=false \
      INIT_ADMIN_API_TOKENS="$admin" INIT_BACKEND_API_TOKENS="$client" \
      CHECK_VERSION=false SEND_TELEMETRY=false LOG_LEVEL="${FORKFLAG_UNLEASH_LOG_LEVEL:-warn}" \
      FORKFLAG_METRICS_FLUSH_MS FORKFLAG_REGISTRATION_FLUSH_MS FORKFLAG_REVISION_POLL_MS \
      FORKFLAG_LAST_SEEN_FLUSH_MS FORKFLAG_KNOWN_FLAGS_CACHE_MS \
      NODE_ENV=production
    # Variables the server would read and that must not leak in from a
    # caller that is itself a test process pointed at another server.
    unset UNLEASH_URL DATABASE_URL DATABASE_URL_FILE PORT HTTP_PORT HTTP_HOST BASE_URI_PATH
    exec setsid node --no-deprecation server.js </dev/null >"$state/unleash.log" 2>&1
  ) &
  local launcher=$!

  deadline=$((SECONDS + START_TIMEOUT))
  pid=""
  port=""
  code=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ -z "$pid" ] && [ -s "$state/unleash.pid" ] && pid="$(cat "$state/unleash.pid")"
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "the unleash server exited during start"
      return 1
    fi
    if [ -z "$pid" ] && ! kill -0 "$launcher" 2>/dev/null && [ ! -s "$state/unleash.pid" ]; then
      log "the unleash server exited during start"
      return 1
    fi
    if [ -s "$state/unleash.port" ]; then
      port="$(cat "$state/unleash.port")"
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/health" || true)"
      if [ "$code" = 200 ]; then
        break
      fi
    fi
    sleep 0.2
  done
  if [ "$code" != 200 ]; then
    log "the unleash server was not healthy within ${START_TIMEOUT}s"
    return 1
  fi

  local tmp="$state/env.tmp"
  {
    echo "UNLEASH_URL=http://127.0.0.1:$port/api"
    echo "UNLEASH_ADMIN_TOKEN=$admin"
    echo "UNLEASH_CLIENT_TOKEN=$client"
    echo "UNLEASH_PID=$pid"
    echo "PG_PORT=$pg_port"
  } >"$tmp"
  mv "$tmp" "$state/env"
}

cmd_start() {
  local state="${1:-}"
  [ -n "$state" ] || die "usage: harness.sh start <state-dir>"
  installed || cmd_install
  umask 077
  mkdir -p "$state"
  state="$(cd "$state" && pwd)"
  [ ! -e "$state/env" ] || die "$state already holds a running server (stop it first)"
  touch "$state/$MARKER"
  if ! start_postgres "$state"; then
    log "postgres failed to start"
    print_logs "$state"
    cmd_stop "$state" >/dev/null 2>&1 || true
    return 1
  fi
  if ! start_unleash "$state"; then
    print_logs "$state"
    cmd_stop "$state" >/dev/null 2>&1 || true
    return 1
  fi
}

stop_unleash() {
  local state="$1" pid
  [ -s "$state/unleash.pid" ] || return 0
  pid="$(cat "$state/unleash.pid")"
  pid_alive "$pid" server.js || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 10 server.js; then
    log "unleash server $pid ignored TERM for 10s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 server.js || log "unleash server $pid is still alive"
  fi
}

stop_postgres() {
  local state="$1" root data pmpid
  root="$(pg_root "$state")"
  data="$root/data"
  [ -f "$data/postmaster.pid" ] || return 0
  pmpid="$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
  fi
  if [ -n "$pmpid" ] && pid_alive "$pmpid" postgres; then
    log "postgres $pmpid survived pg_ctl stop; killing it"
    local children
    mapfile -t children < <(pgrep -P "$pmpid" || true)
    kill -KILL "$pmpid" "${children[@]}" 2>/dev/null || true
    wait_gone "$pmpid" 5 postgres || log "postgres $pmpid is still alive"
  fi
}

# halt: stops only the server (the database keeps its state), to test what
# clients do while it is down. resume: starts it again on the same port with
# the same tokens.
cmd_halt() {
  local state="${1:-}"
  [ -n "$state" ] && [ -e "$state/$MARKER" ] || die "usage: harness.sh halt <state-dir of a started server>"
  stop_unleash "$state"
}

cmd_resume() {
  local state="${1:-}" port
  [ -n "$state" ] && [ -e "$state/$MARKER" ] || die "usage: harness.sh resume <state-dir of a halted server>"
  state="$(cd "$state" && pwd)"
  port="$(sed -n 's#^UNLEASH_URL=http://127.0.0.1:\([0-9]*\)/api$#\1#p' "$state/env")"
  [ -n "$port" ] || die "$state/env has no server port"
  if ! start_unleash "$state" "$port"; then
    print_logs "$state"
    return 1
  fi
}

cmd_stop() {
  local state="${1:-}" root
  [ -n "$state" ] || die "usage: harness.sh stop <state-dir>"
  [ -d "$state" ] || return 0
  state="$(cd "$state" && pwd)"
  if [ ! -e "$state/$MARKER" ]; then
    log "$state was not made by harness.sh start; leaving it alone"
    return 0
  fi
  root="$(pg_root "$state")"
  stop_unleash "$state"
  stop_postgres "$state"
  if [ "$root" != "$state/pg" ] && [ -d "$root" ]; then
    case "$root" in /tmp/forkflag-pg.*) rm -rf -- "$root" ;; esac
  fi
  case "$state" in
    / | "$HOME" | /tmp | /root) log "refusing to remove $state" ;;
    *) rm -rf -- "$state" ;;
  esac
}

# The command runs as a background job that the shell waits for, so a TERM
# sent to this script alone (by a supervisor or `timeout`) is handled at
# once: it is passed on to the command, and the server is stopped when the
# command has exited. INT is not passed on: Ctrl-C already reaches the whole
# foreground process group, and a second INT makes e.g. rspec abort hard.
cmd_run() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "usage: harness.sh run -- <command...>"
  RUN_STATE="$(mktemp -d /tmp/forkflag-unleash.XXXXXX)"
  RUN_CHILD=""
  trap 'cmd_stop "$RUN_STATE"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  cmd_start "$RUN_STATE" || exit 1
  set -a
  # shellcheck disable=SC1091
  . "$RUN_STATE/env"
  set +a
  local status=0 i
  # Background job with the caller's stdin, and INT/QUIT back to their
  # defaults (bash would have the job ignore them).
  exec 3<&0
  ( trap - INT QUIT; exec "$@" ) <&3 3<&- &
  RUN_CHILD=$!
  exec 3<&-
  trap ':' INT
  trap 'kill -TERM "$RUN_CHILD" 2>/dev/null || true' TERM HUP
  # wait returns early (status > 128) when a trapped signal arrives; then
  # wait again for the command's own status. Bounded: one round per signal.
  for ((i = 0; i < 100; i++)); do
    status=0
    wait "$RUN_CHILD" || status=$?
    if [ "$status" -le 128 ] || ! kill -0 "$RUN_CHILD" 2>/dev/null; then
      break
    fi
  done
  exit "$status"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  run) shift; cmd_run "$@" ;;
  halt) shift; cmd_halt "$@" ;;
  resume) shift; cmd_resume "$@" ;;
  *)
    echo "usage: harness.sh install | start <state-dir> | stop <state-dir> | halt <state-dir> | resume <state-dir> | run -- <command...>" >&2
    exit 2
    ;;
esac
