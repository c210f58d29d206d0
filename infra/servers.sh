#!/usr/bin/env bash
# Real local test servers for Jembatan: Apache Kafka 3.9.1 (KRaft, single node),
# FerretDB v1.24.2 (MongoDB wire protocol on SQLite) and "mongo-atomic", mongo-java-server
# 1.47.0 (MongoDB wire protocol, atomic per document across processes; H2 file backend).
# No Docker needed.
#
#   infra/servers.sh up     [kafka|mongo|mongo-atomic|all] [--record FILE]
#   infra/servers.sh down   [kafka|mongo|mongo-atomic|all] [--recorded FILE]
#   infra/servers.sh status
#   infra/servers.sh logs   [kafka|mongo|mongo-atomic]   (tail -n 50 of the server log)
#
# `up` reuses a server whose port already answers (it is then NOT recorded); with
# --record FILE it appends the names of the servers it actually started to FILE, and
# `down --recorded FILE` stops exactly those (then deletes FILE). `make test` uses this so
# it only takes down what it started itself.
#
# Everything lives in the git-ignored <repo>/.cache/: kafka/libs (jars via Maven),
# kafka/data, bin/ferretdb, ferretdb/{data,state}, mongo-atomic/{libs,classes,data},
# run/*.pid, logs/{kafka,ferretdb,mongo-atomic}.log
# (non-default ports get a "-<port>" suffix on data dirs, pid files and logs).
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), MONGO_PORT (27017),
#              MONGO_ATOMIC_PORT (27018), MONGO_ATOMIC_BACKEND (h2 | memory; h2 keeps data
#              across a restart, even a SIGKILL), KAFKA_READY_TIMEOUT (90),
#              MONGO_READY_TIMEOUT (60), STOP_TIMEOUT (30).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
CACHE="$ROOT/.cache"
LOGS="$CACHE/logs"
RUN="$CACHE/run"
BIN="$CACHE/bin"

KAFKA_VERSION=3.9.1
FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
MONGO_PORT="${MONGO_PORT:-27017}"
MONGO_ATOMIC_PORT="${MONGO_ATOMIC_PORT:-27018}"
MONGO_ATOMIC_BACKEND="${MONGO_ATOMIC_BACKEND:-h2}"
KAFKA_READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
MONGO_READY_TIMEOUT="${MONGO_READY_TIMEOUT:-60}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
HOST=127.0.0.1

# With the default ports the paths are .cache/kafka/data, .cache/logs/kafka.log, ...; with a
# non-default port they get a "-<port>" suffix so a second instance never shares data/pid files.
KSFX=""; [ "$KAFKA_PORT" = 9092 ] || KSFX="-$KAFKA_PORT"
MSFX=""; [ "$MONGO_PORT" = 27017 ] || MSFX="-$MONGO_PORT"
ASFX=""; [ "$MONGO_ATOMIC_PORT" = 27018 ] || ASFX="-$MONGO_ATOMIC_PORT"
KAFKA_HOME="$CACHE/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data$KSFX"
KAFKA_PROPS="$KAFKA_HOME/server$KSFX.properties"
KAFKA_CLUSTER_ID_FILE="$KAFKA_HOME/cluster$KSFX.id"
KAFKA_LOG="$LOGS/kafka$KSFX.log"
FERRET_HOME="$CACHE/ferretdb"
FERRET_DATA="$FERRET_HOME/data$MSFX"
FERRET_STATE="$FERRET_HOME/state$MSFX"
FERRET_BIN="$BIN/ferretdb"
FERRET_LOG="$LOGS/ferretdb$MSFX.log"
ATOMIC_HOME="$CACHE/mongo-atomic"
ATOMIC_LIBS="$ATOMIC_HOME/libs"
ATOMIC_CLASSES="$ATOMIC_HOME/classes"
ATOMIC_DATA="$ATOMIC_HOME/data$ASFX"
ATOMIC_LOG="$LOGS/mongo-atomic$ASFX.log"

PY="$ROOT/.venv/bin/python"

log() { printf '[servers] %s\n' "$*" >&2; }
die() { printf '[servers] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

port_of() {
  case "$1" in kafka) echo "$KAFKA_PORT" ;; mongo) echo "$MONGO_PORT" ;; mongo-atomic) echo "$MONGO_ATOMIC_PORT" ;; esac
}
log_of() {
  case "$1" in kafka) echo "$KAFKA_LOG" ;; mongo) echo "$FERRET_LOG" ;; mongo-atomic) echo "$ATOMIC_LOG" ;; esac
}
pidfile_of() {
  case "$1" in
    kafka) echo "$RUN/kafka$KSFX.pid" ;;
    mongo) echo "$RUN/mongo$MSFX.pid" ;;
    mongo-atomic) echo "$RUN/mongo-atomic$ASFX.pid" ;;
  esac
}
# Substring that must appear in /proc/<pid>/cmdline, so a recycled pid is never signalled.
cmd_marker_of() {
  case "$1" in kafka) echo "kafka.Kafka" ;; mongo) echo "ferretdb" ;; mongo-atomic) echo "jembatan.server=mongo-atomic" ;; esac
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

# Prints the pid of our running server $1 (from its pid file), or fails.
live_pid() {
  local f pid
  f="$(pidfile_of "$1")"
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(cmd_marker_of "$1")" || return 1
  echo "$pid"
}

fail_server() { # name reason [pid-to-stop]: print the log tail, stop pid, exit non-zero
  local name="$1" reason="$2" kill_pid="${3:-}" logf
  logf="$(log_of "$name")"
  printf '\n[servers] ERROR: %s FAILED: %s\n' "$name" "$reason" >&2
  printf '[servers] ---- last 30 lines of %s ----\n' "${logf#"$ROOT"/}" >&2
  tail -n 30 "$logf" >&2 2>/dev/null || printf '(no log)\n' >&2
  printf '[servers] ---- end of %s ----\n' "${logf#"$ROOT"/}" >&2
  live_pid "$name" >/dev/null || rm -f "$(pidfile_of "$name")"
  if [ -n "$kill_pid" ]; then
    log "$name: stopping the half-started server (pid $kill_pid)"
    stop_pid "$name" "$kill_pid" || true
  fi
  printf '[servers] ERROR: %s FAILED (see above)\n' "$name" >&2
  exit 1
}

# Start "$@" detached in its own session; its pid goes to the pid file of server $1.
spawn() {
  local name="$1" logf="$2"; shift 2
  local pidf
  pidf="$(pidfile_of "$name")"
  rm -f "$pidf"
  {
    printf '\n===== %s: starting %s =====\n' "$(date -Is)" "$name"
    printf '%q ' "$@"; printf '\n'
  } >>"$logf"
  # bash writes its own pid, then exec keeps that pid for the server process.
  # fd 9 (the servers.lock flock) must not leak into the long-running server.
  nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" >>"$logf" 2>&1 </dev/null 9>&- &
  local i
  for i in $(seq 50); do [ -s "$pidf" ] && break; sleep 0.1; done
  [ -s "$pidf" ] || fail_server "$name" "process did not start"
}

# ---------------------------------------------------------------- kafka

kafka_cp() { echo "$KAFKA_LIBS/*"; }

kafka_ensure_jars() {
  if compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null &&
     compgen -G "$KAFKA_LIBS/kafka-tools-$KAFKA_VERSION.jar" >/dev/null; then
    return 0
  fi
  command -v java >/dev/null || die "kafka: java not found"
  log "kafka: resolving Kafka $KAFKA_VERSION jars with Maven (log: .cache/logs/mvn-kafka.log)"
  mvn_copy_jars kafka "$INFRA/kafka/pom.xml" "$KAFKA_LIBS"
}

# mvn_copy_jars name pom dest: the pom's dependencies into dest (replaced whole), once.
mvn_copy_jars() {
  local name="$1" pom="$2" dest="$3" mlog="$LOGS/mvn-$1.log"
  command -v mvn >/dev/null || die "$name: mvn not found (needed once to fetch its jars)"
  rm -rf "$dest.tmp"
  if ! mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dest.tmp" >"$mlog" 2>&1; then
    tail -n 30 "$mlog" >&2
    die "$name: mvn dependency:copy-dependencies failed"
  fi
  rm -rf "$dest"
  mv "$dest.tmp" "$dest"
}

kafka_write_props() {
  cat >"$KAFKA_PROPS" <<EOF
# Generated by infra/servers.sh - edits are overwritten on every 'up'.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=3
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=16777216
EOF
}

kafka_ensure_formatted() {
  mkdir -p "$KAFKA_DATA"
  [ -f "$KAFKA_DATA/meta.properties" ] && return 0
  local cid_file="$KAFKA_CLUSTER_ID_FILE" cid
  if [ ! -s "$cid_file" ]; then
    java -cp "$(kafka_cp)" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n 1 >"$cid_file.tmp"
    mv "$cid_file.tmp" "$cid_file"
  fi
  cid="$(cat "$cid_file")"
  [ -n "$cid" ] || die "kafka: could not generate a cluster id"
  log "kafka: formatting storage in ${KAFKA_DATA#"$ROOT"/} (cluster id $cid)"
  if ! java -cp "$(kafka_cp)" -Dlog4j.configuration="file:$INFRA/kafka/log4j.properties" \
        kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1; then
    fail_server kafka "kafka.tools.StorageTool format failed"
  fi
}

kafka_start() {
  kafka_ensure_jars
  kafka_write_props
  kafka_ensure_formatted
  spawn kafka "$KAFKA_LOG" \
    java -Xms256m -Xmx512m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$INFRA/kafka/log4j.properties" \
      -cp "$(kafka_cp)" kafka.Kafka "$KAFKA_PROPS"
}

# ---------------------------------------------------------------- ferretdb

ferret_ok() { [ -x "$FERRET_BIN" ] && "$FERRET_BIN" --version >/dev/null 2>&1; }

ferret_ensure_bin() {
  ferret_ok && return 0
  command -v go >/dev/null || die "mongo: go not found (needed once to build FerretDB)"
  local blog="$LOGS/ferretdb-build.log"
  log "mongo: building FerretDB $FERRETDB_VERSION into .cache/bin (takes a few minutes; log: .cache/logs/ferretdb-build.log)"
  # A plain `go install $FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION` builds a binary that
  # panics at start ("Invalid build/version/version.txt file content"): the module zip has no
  # build/version/version.txt. So: fetch the module, copy it, add version.txt, build that.
  local dir src
  {
    dir="$(go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
           sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" || true
  } 2>>"$blog"
  [ -n "$dir" ] && [ -d "$dir" ] || { tail -n 30 "$blog" >&2; die "mongo: go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed"; }
  src="$CACHE/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src"; mkdir -p "$src" "$BIN"
  cp -R "$dir/." "$src/"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  if ! (cd "$src" && GOFLAGS=-mod=mod go build -buildvcs=false -trimpath -o "$FERRET_BIN.tmp" ./cmd/ferretdb) >>"$blog" 2>&1; then
    tail -n 30 "$blog" >&2
    die "mongo: building FerretDB failed"
  fi
  mv "$FERRET_BIN.tmp" "$FERRET_BIN"
  rm -rf "$src"; rmdir "$CACHE/src" 2>/dev/null || true
  ferret_ok || die "mongo: built $FERRET_BIN but '$FERRET_BIN --version' fails"
}

ferret_start() {
  ferret_ensure_bin
  mkdir -p "$FERRET_DATA" "$FERRET_STATE"
  spawn mongo "$FERRET_LOG" \
    "$FERRET_BIN" --handler=sqlite --sqlite-url="file:$FERRET_DATA/" \
      --listen-addr="$HOST:$MONGO_PORT" --state-dir="$FERRET_STATE" \
      --debug-addr=- --telemetry=disable --log-level=info
}

# ---------------------------------------------------------------- mongo-atomic

atomic_ensure_jars() {
  compgen -G "$ATOMIC_LIBS/mongo-java-server-h2-backend-*.jar" >/dev/null && return 0
  log "mongo-atomic: resolving mongo-java-server jars with Maven (log: .cache/logs/mvn-mongo-atomic.log)"
  mvn_copy_jars mongo-atomic "$INFRA/mongo-atomic/pom.xml" "$ATOMIC_LIBS"
}

atomic_ensure_classes() { # the launcher is committed as source; compile it when it changed
  local src="$INFRA/mongo-atomic/Launcher.java"
  [ -f "$ATOMIC_CLASSES/Launcher.class" ] && [ "$ATOMIC_CLASSES/Launcher.class" -nt "$src" ] && return 0
  command -v javac >/dev/null || die "mongo-atomic: javac not found (a JDK is needed)"
  rm -rf "$ATOMIC_CLASSES.tmp"; mkdir -p "$ATOMIC_CLASSES.tmp"
  if ! javac -nowarn -d "$ATOMIC_CLASSES.tmp" -cp "$ATOMIC_LIBS/*" "$src" >>"$ATOMIC_LOG" 2>&1; then
    tail -n 30 "$ATOMIC_LOG" >&2
    die "mongo-atomic: javac infra/mongo-atomic/Launcher.java failed"
  fi
  rm -rf "$ATOMIC_CLASSES"
  mv "$ATOMIC_CLASSES.tmp" "$ATOMIC_CLASSES"
}

atomic_start() {
  atomic_ensure_jars
  atomic_ensure_classes
  local backend=()
  case "$MONGO_ATOMIC_BACKEND" in
    h2) mkdir -p "$ATOMIC_DATA"; backend=(--h2 "$ATOMIC_DATA/store.mv") ;;
    memory) backend=(--memory) ;;
    *) die "mongo-atomic: MONGO_ATOMIC_BACKEND must be h2 or memory, not '$MONGO_ATOMIC_BACKEND'" ;;
  esac
  # Its warning for every non-unique index it ignores (a documented caveat) would fill
  # the log at each test's index creation: that logger only reports errors.
  spawn mongo-atomic "$ATOMIC_LOG" \
    java -Xms64m -Xmx384m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Djembatan.server=mongo-atomic -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
      -Dorg.slf4j.simpleLogger.log.de.bwaldvogel.mongo.backend.AbstractMongoDatabase=error \
      -cp "$ATOMIC_LIBS/*:$ATOMIC_CLASSES" Launcher --host "$HOST" --port "$MONGO_ATOMIC_PORT" "${backend[@]}"
}

# ---------------------------------------------------------------- readiness

have_py() { [ -x "$PY" ] && "$PY" -c 'import kafka, pymongo' >/dev/null 2>&1; }

# wait_ready name timeout log_offset [start]: poll until the server answers a real request.
# start = $SECONDS when the server was spawned (the timeout counts from there).
wait_ready() {
  local name="$1" timeout="$2" offset="$3" start="${4:-$SECONDS}" port pid now err="" py=0
  port="$(port_of "$name")"
  have_py && py=1
  while :; do
    now=$((SECONDS - start))
    pid="$(live_pid "$name")" || fail_server "$name" "process exited during startup (port $port)"
    if port_open "$port"; then
      if [ "$py" = 1 ]; then
        if err="$("$PY" "$INFRA/ready.py" "$name" "$HOST:$port" 2>&1)"; then break; fi
      elif [ "$name" = kafka ]; then
        # No venv: the broker logs this line once the broker and controller are up.
        if tail -c "+$((offset + 1))" "$KAFKA_LOG" | grep -q 'Kafka Server started'; then
          sleep 2; break
        fi
      else
        sleep 1; break
      fi
    fi
    if [ "$now" -ge "$timeout" ]; then
      fail_server "$name" "not ready on $HOST:$port after ${timeout}s${err:+ (last probe: $err)}" "$pid"
    fi
    sleep 1
  done
  if [ -n "${4:-}" ]; then
    log "$name: ready on $HOST:$port (pid $pid), $((SECONDS - start))s after start"
  else
    log "$name: ready on $HOST:$port (pid $pid)"
  fi
}

# ---------------------------------------------------------------- up / down / status

norm_targets() { # expand all / aliases into "kafka mongo mongo-atomic"
  local t out=()
  [ $# -eq 0 ] && set -- all
  for t in "$@"; do
    case "$t" in
      all) out+=(kafka mongo mongo-atomic) ;;
      kafka) out+=(kafka) ;;
      mongo|ferretdb|mongodb) out+=(mongo) ;;
      mongo-atomic|atomic) out+=(mongo-atomic) ;;
      *) die "unknown server '$t' (use kafka, mongo, mongo-atomic or all)" ;;
    esac
  done
  printf '%s\n' "${out[@]}" | awk '!seen[$0]++'
}

lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/servers.lock"
  flock -w 600 9 || die "could not take .cache/run/servers.lock"
}

cmd_up() {
  local record="" targets=() name started=() pid
  while [ $# -gt 0 ]; do
    case "$1" in
      --record) [ $# -ge 2 ] || die "--record needs a FILE"; record="$2"; shift 2 ;;
      --record=*) record="${1#--record=}"; shift ;;
      *) targets+=("$1"); shift ;;
    esac
  done
  mapfile -t targets < <(norm_targets "${targets[@]+"${targets[@]}"}")
  mkdir -p "$LOGS" "$RUN" "$BIN" "$KAFKA_HOME" "$FERRET_HOME" "$ATOMIC_HOME"
  [ -n "$record" ] && touch "$record"
  lock

  # Start everything first (Kafka's JVM boots while FerretDB builds/starts), then wait.
  declare -A offset=() t0=()
  for name in "${targets[@]}"; do
    if pid="$(live_pid "$name")"; then
      log "$name: already running (pid $pid, port $(port_of "$name")); reusing"
      started+=("$name:reuse")
    elif port_open "$(port_of "$name")"; then
      log "$name: port $(port_of "$name") already answers (not started by this script); reusing"
      started+=("$name:reuse")
    else
      touch "$(log_of "$name")"
      offset[$name]="$(stat -c %s "$(log_of "$name")")"
      log "$name: starting on port $(port_of "$name") (log: ${LOGS#"$ROOT"/}/$(basename "$(log_of "$name")"))"
      case "$name" in kafka) kafka_start ;; mongo) ferret_start ;; mongo-atomic) atomic_start ;; esac
      t0[$name]=$SECONDS
      [ -n "$record" ] && echo "$name" >>"$record"
      started+=("$name:new")
    fi
  done
  local entry timeout
  for entry in "${started[@]}"; do
    name="${entry%%:*}"
    case "$name" in kafka) timeout="$KAFKA_READY_TIMEOUT" ;; mongo|mongo-atomic) timeout="$MONGO_READY_TIMEOUT" ;; esac
    if [ "${entry#*:}" = new ]; then
      wait_ready "$name" "$timeout" "${offset[$name]}" "${t0[$name]}"
    elif live_pid "$name" >/dev/null; then
      wait_ready "$name" "$timeout" 0   # may still be booting from a concurrent 'up'
    fi
  done
}

stop_pid() { # name pid
  local name="$1" pid="$2" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$(pidfile_of "$name")"
}

stop_one() {
  local name="$1" pid port
  port="$(port_of "$name")"
  if pid="$(live_pid "$name")"; then
    log "$name: stopping pid $pid"
    local t0=$SECONDS
    stop_pid "$name" "$pid"
    log "$name: stopped ($((SECONDS - t0))s)"
  else
    rm -f "$(pidfile_of "$name")"
    if port_open "$port"; then
      log "$name: port $port answers but it was not started by this script; leaving it alone"
    else
      log "$name: not running"
    fi
  fi
}

cmd_down() {
  local recorded="" targets=() name
  while [ $# -gt 0 ]; do
    case "$1" in
      --recorded) [ $# -ge 2 ] || die "--recorded needs a FILE"; recorded="$2"; shift 2 ;;
      --recorded=*) recorded="${1#--recorded=}"; shift ;;
      *) targets+=("$1"); shift ;;
    esac
  done
  if [ -n "$recorded" ]; then
    [ ${#targets[@]} -eq 0 ] || die "down: give either server names or --recorded FILE, not both"
    if [ ! -s "$recorded" ]; then
      log "nothing recorded in $recorded; leaving servers as they are"
      rm -f "$recorded"
      return 0
    fi
    mapfile -t targets < <(grep -v '^[[:space:]]*$' "$recorded")
  fi
  mapfile -t targets < <(norm_targets "${targets[@]+"${targets[@]}"}")
  lock
  for name in "${targets[@]}"; do stop_one "$name"; done
  [ -n "$recorded" ] && rm -f "$recorded"
  return 0
}

cmd_status() {
  local name pid port extra
  for name in kafka mongo mongo-atomic; do
    port="$(port_of "$name")"
    extra=""
    [ "$name" = kafka ] && extra=" controller $HOST:$KAFKA_CONTROLLER_PORT"
    if pid="$(live_pid "$name")"; then
      if port_open "$port"; then
        printf '%-12s running   pid %s  %s:%s%s\n' "$name" "$pid" "$HOST" "$port" "$extra"
      else
        printf '%-12s starting  pid %s  %s:%s (port not answering yet)\n' "$name" "$pid" "$HOST" "$port"
      fi
    elif port_open "$port"; then
      printf '%-12s running   %s:%s (external process, no pid file)\n' "$name" "$HOST" "$port"
    else
      printf '%-12s stopped\n' "$name"
    fi
  done
}

cmd_logs() {
  local name
  mapfile -t names < <(norm_targets "$@")
  for name in "${names[@]}"; do
    printf '==> %s <==\n' "$(log_of "$name")"
    tail -n 50 "$(log_of "$name")" 2>/dev/null || true
  done
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

sub="${1:-}"
[ $# -gt 0 ] && shift
case "$sub" in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  restart) cmd_down "$@"; cmd_up "$@" ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
