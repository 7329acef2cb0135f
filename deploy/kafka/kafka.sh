#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft) for msht-broker development, tests and the demo.
# See docs/KAFKA.md. Run `bash deploy/kafka/kafka.sh --help`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# Pinned: the newest Kafka 4.x that aiokafka 0.14 was verified against (docs/KAFKA.md).
KAFKA_VERSION="${MSHT_KAFKA_VERSION:-4.4.0}"
CACHE="${MSHT_KAFKA_CACHE:-$HOME/.cache/msht-broker}"
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
# MSHT_KAFKA_STATE_DIR wins; MSHT_KAFKA_HOME is the older name for the same thing.
STATE="${MSHT_KAFKA_STATE_DIR:-${MSHT_KAFKA_HOME:-$HOME/.local/state/msht-broker/kafka}}"
DATA="$STATE/data"
LOGS="$STATE/logs"
CONF="$STATE/server.properties"
PIDFILE="$STATE/kafka.pid"
TLS_DIR="$STATE/tls"
HOST=127.0.0.1
# A second, private broker (fault tests) needs its own state directory and three free ports.
PORT="${MSHT_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${MSHT_KAFKA_CONTROLLER_PORT:-9093}"
TLS_PORT="${MSHT_KAFKA_TLS_PORT:-9094}"
HEAP="${MSHT_KAFKA_HEAP:-1g}"
START_TIMEOUT="${MSHT_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${MSHT_KAFKA_STOP_TIMEOUT:-30}"
ADMIN_USER=admin
ADMIN_PASSWORD=admin-secret

usage() {
    cat <<USAGE
usage: kafka.sh COMMAND

Runs a single-node Apache Kafka $KAFKA_VERSION (KRaft, broker+controller) on $HOST.

commands:
  fetch    download the Kafka jars with Maven into $CACHE (reused between runs)
  certs    make (or keep) the CA and broker certificate for the TLS listener in $TLS_DIR
  format   write the config and format storage (cluster id, SCRAM admin user); no-op if formatted
  start    fetch, format and start the broker in the background; reuses a running broker
  stop     stop the broker (TERM, then KILL after ${STOP_TIMEOUT}s)
  wipe     stop the broker and delete its data and logs
  status   say whether the broker is running and answering
  logs     print the tail of the broker log (LINES=n to change, default 100)

ports: $PORT clients (SASL_PLAINTEXT, SCRAM-SHA-512), $TLS_PORT clients over TLS (SASL_SSL,
       SCRAM-SHA-512, CA in $TLS_DIR/ca.pem), $CONTROLLER_PORT controller;
       admin user $ADMIN_USER/$ADMIN_PASSWORD
environment: MSHT_KAFKA_STATE_DIR (data, logs, config, certificates; now $STATE;
               MSHT_KAFKA_HOME is an older name for it)
             MSHT_KAFKA_PORT (default 9092), MSHT_KAFKA_CONTROLLER_PORT (default 9093),
             MSHT_KAFKA_TLS_PORT (default 9094), MSHT_KAFKA_HEAP (JVM heap, default 1g)
             MSHT_KAFKA_CACHE (jar cache), MSHT_KAFKA_VERSION (default $KAFKA_VERSION),
             MSHT_KAFKA_START_TIMEOUT (seconds, default 90)
USAGE
}

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

classpath() { printf '%s/*' "$LIBS"; }

java_run() {
    # Classes only; the broker's own JVM options are set in cmd_start.
    java -Xmx256m -cp "$(classpath)" -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
        -Dkafka.logs.dir="$LOGS" "$@"
}

cmd_fetch() {
    if [[ -f "$LIBS/.complete" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "Maven (mvn) is not installed; it is needed to fetch Kafka's jars"
    command -v java >/dev/null || die "Java is not installed; Kafka needs Java 17 or newer"
    log "fetching Apache Kafka $KAFKA_VERSION jars into $LIBS"
    mkdir -p "$LIBS"
    local mvnlog="$CACHE/fetch-$KAFKA_VERSION.log"
    mvn -B -Dstyle.color=never -f "$HERE/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$LIBS" -DincludeScope=runtime \
        >"$mvnlog" 2>&1 \
        || { tail -n 40 "$mvnlog" >&2; die "Maven could not fetch Kafka $KAFKA_VERSION (full output: $mvnlog)"; }
    # A half-finished fetch must not look complete; only a successful run writes the marker.
    ls "$LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"
    touch "$LIBS/.complete"
}

msht_bin() {
    if [[ -x "$REPO/.venv/bin/msht" ]]; then printf '%s\n' "$REPO/.venv/bin/msht"; return 0; fi
    command -v msht || die "the msht command is needed to make the TLS certificates; install the project (pip install -e .)"
}

cmd_certs() {
    # Idempotent: sound files are kept; a certificate near expiry is reissued by the same CA.
    local msht out
    msht="$(msht_bin)"
    out="$("$msht" tls generate --out "$TLS_DIR" 2>&1)" \
        || { printf '%s\n' "$out" >&2; die "msht tls generate failed"; }
    case "$out" in wrote*) log "${out%%$'\n'*}" ;; esac
}

cmd_format() {
    cmd_fetch
    cmd_certs
    mkdir -p "$DATA" "$LOGS"
    sed -e "s#@DATA_DIR@#$DATA#" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
        -e "s#@TLS_PORT@#$TLS_PORT#g" -e "s#@TLS_KEYSTORE@#$TLS_DIR/broker.keystore.pem#" \
        "$HERE/server.properties" > "$CONF"
    if [[ -f "$DATA/meta.properties" ]]; then
        return 0
    fi
    local cluster_id
    cluster_id="$(java_run kafka.tools.StorageTool random-uuid | tail -n 1)"
    log "formatting storage in $DATA (cluster id $cluster_id)"
    java_run kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF" \
        --add-scram "SCRAM-SHA-512=[name=$ADMIN_USER,password=$ADMIN_PASSWORD]" >>"$LOGS/format.log" 2>&1 \
        || { tail -n 30 "$LOGS/format.log" >&2; die "formatting the storage failed"; }
}

running_pid() {
    # Prints the pid when the pid file names a live Kafka process of ours.
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    grep -q 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/${1:-$PORT}") 2>/dev/null; }

python_bin() {
    if [[ -x "$REPO/.venv/bin/python" ]]; then printf '%s\n' "$REPO/.venv/bin/python"; else printf 'python3\n'; fi
}

broker_answers() {
    # A SCRAM-authenticated metadata call, through the project's own client factory when the
    # package is installed; otherwise an open port is the best evidence we have.
    local py
    py="$(python_bin)"
    if "$py" -c 'import broker.kafka.clients' 2>/dev/null; then
        MSHT_BOOTSTRAP_SERVERS="$HOST:$PORT" MSHT_SECURITY_PROTOCOL=SASL_PLAINTEXT \
            MSHT_USERNAME="$ADMIN_USER" MSHT_PASSWORD="$ADMIN_PASSWORD" \
            "$py" -c 'import asyncio, broker.kafka.clients as k, broker.settings as s
asyncio.run(k.wait_for_broker(s.Settings(), timeout=5))' >/dev/null 2>&1
    else
        port_open
    fi
}

print_log_tail() {
    local lines="${1:-60}"
    if [[ -f "$LOGS/server.log" ]]; then
        log "last $lines lines of $LOGS/server.log:"
        tail -n "$lines" "$LOGS/server.log" >&2
    fi
    if [[ -s "$LOGS/kafka.out" ]]; then
        log "last $lines lines of $LOGS/kafka.out:"
        tail -n "$lines" "$LOGS/kafka.out" >&2
    fi
}

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        if broker_answers; then
            log "Kafka already running (pid $pid) on $HOST:$PORT"
            return 0
        fi
        log "Kafka process $pid is running but not answering yet; waiting"
    else
        if port_open && broker_answers; then
            log "a Kafka broker not started from $STATE already answers on $HOST:$PORT; using it"
            return 0
        fi
        local p
        for p in "$PORT" "$CONTROLLER_PORT" "$TLS_PORT"; do
            if port_open "$p"; then
                die "something else is listening on $HOST:$p (not the broker from $STATE); stop it or choose other MSHT_KAFKA_*PORT values"
            fi
        done
        cmd_format
        log "starting Kafka $KAFKA_VERSION (logs in $LOGS)"
        # setsid: the broker must outlive the shell (and make target) that started it.
        setsid java -Xmx"$HEAP" -Xms"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$LOGS" \
            -cp "$(classpath)" kafka.Kafka "$CONF" >"$LOGS/kafka.out" 2>&1 </dev/null &
        pid=$!
        printf '%s\n' "$pid" > "$PIDFILE"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            print_log_tail 60
            rm -f "$PIDFILE"
            die "Kafka exited during start-up (see the log above)"
        fi
        if port_open && broker_answers; then
            log "Kafka $KAFKA_VERSION is up on $HOST:$PORT (pid $pid, SASL_PLAINTEXT SCRAM-SHA-512, user $ADMIN_USER)"
            if port_open "$TLS_PORT"; then
                log "TLS listener on $HOST:$TLS_PORT (SASL_SSL; clients trust $TLS_DIR/ca.pem)"
            fi
            return 0
        fi
        sleep 1
    done
    print_log_tail 60
    die "Kafka did not answer on $HOST:$PORT within ${START_TIMEOUT}s (pid $pid still running; 'kafka.sh stop' ends it)"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE"
        log "Kafka is not running"
        return 0
    fi
    log "stopping Kafka (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
        log "Kafka did not stop within ${STOP_TIMEOUT}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
}

cmd_wipe() {
    cmd_stop
    log "deleting $DATA and $LOGS"
    rm -rf -- "$DATA" "$LOGS" "$CONF"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        if broker_answers; then
            echo "running (pid $pid), answering on $HOST:$PORT"
            if port_open "$TLS_PORT"; then
                echo "TLS listener on $HOST:$TLS_PORT (CA: $TLS_DIR/ca.pem)"
            fi
            return 0
        fi
        echo "running (pid $pid), not answering on $HOST:$PORT"
        return 1
    fi
    echo "not running"
    return 3
}

cmd_logs() {
    local lines="${LINES:-100}"
    [[ -f "$LOGS/server.log" ]] || die "no broker log yet at $LOGS/server.log"
    tail -n "$lines" "$LOGS/server.log"
}

main() {
    local cmd="${1:-}"
    case "$cmd" in
        fetch) cmd_fetch ;;
        certs) cmd_certs ;;
        format) cmd_format ;;
        start) cmd_start ;;
        stop) cmd_stop ;;
        wipe) cmd_wipe ;;
        status) cmd_status ;;
        logs) cmd_logs ;;
        -h|--help|help) usage ;;
        "") usage >&2; exit 2 ;;
        *) log "unknown command: $cmd"; usage >&2; exit 2 ;;
    esac
}

main "$@"
