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
CLUSTER_DEFAULT_DIR="$HOME/.local/state/msht-broker/kafka-cluster"
CLUSTER_DIR="${MSHT_KAFKA_CLUSTER_DIR:-$CLUSTER_DEFAULT_DIR}"
CLUSTER_HEAP="${MSHT_KAFKA_CLUSTER_HEAP:-384m}"
CLUSTER_NODES=(1 2 3)
CLUSTER_PORTS=""

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

A local three-node cluster (KRaft; each node broker+controller; replication factor 3,
min.insync.replicas=2, unclean leader election off; SCRAM-SHA-512 and ACLs as above, no TLS)
for fault tests. It never touches the single broker above. DIR defaults to
\$MSHT_KAFKA_CLUSTER_DIR, else $CLUSTER_DEFAULT_DIR.
  cluster-start [--dir DIR] [--ports B1,B2,B3,C1,C2,C3]
                 format (first time) and start the three nodes; wait until each answers.
                 Ports: client ports B1..B3 and controller ports C1..C3; without --ports, the
                 ports recorded in DIR, else six free ports chosen now (recorded in DIR/ports)
  cluster-stop [--dir DIR]            stop every node (TERM, then KILL)
  cluster-kill-node N [--dir DIR]     SIGKILL node N (1-3), as a crash would
  cluster-start-node N [--dir DIR]    start node N again and wait until it answers
  cluster-status [--dir DIR]          each node: running and answering?
  cluster-bootstrap [--dir DIR]       print the bootstrap address list (host:port,...)
  cluster-wipe [--dir DIR]            stop every node and delete DIR

ports: $PORT clients (SASL_PLAINTEXT, SCRAM-SHA-512), $TLS_PORT clients over TLS (SASL_SSL,
       SCRAM-SHA-512, CA in $TLS_DIR/ca.pem), $CONTROLLER_PORT controller;
       admin user $ADMIN_USER/$ADMIN_PASSWORD
environment: MSHT_KAFKA_STATE_DIR (data, logs, config, certificates; now $STATE;
               MSHT_KAFKA_HOME is an older name for it)
             MSHT_KAFKA_PORT (default 9092), MSHT_KAFKA_CONTROLLER_PORT (default 9093),
             MSHT_KAFKA_TLS_PORT (default 9094), MSHT_KAFKA_HEAP (JVM heap, default 1g)
             MSHT_KAFKA_CACHE (jar cache), MSHT_KAFKA_VERSION (default $KAFKA_VERSION),
             MSHT_KAFKA_START_TIMEOUT (seconds, default 90)
             MSHT_KAFKA_CLUSTER_DIR (three-node cluster), MSHT_KAFKA_CLUSTER_HEAP (per node,
               default 384m)
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
    local py port="${1:-$PORT}"
    py="$(python_bin)"
    if "$py" -c 'import broker.kafka.clients' 2>/dev/null; then
        MSHT_BOOTSTRAP_SERVERS="$HOST:$port" MSHT_SECURITY_PROTOCOL=SASL_PLAINTEXT \
            MSHT_USERNAME="$ADMIN_USER" MSHT_PASSWORD="$ADMIN_PASSWORD" \
            "$py" -c 'import asyncio, broker.kafka.clients as k, broker.settings as s
asyncio.run(k.wait_for_broker(s.Settings(), timeout=5))' >/dev/null 2>&1
    else
        port_open "$port"
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

# --- the three-node cluster ------------------------------------------------------------------
# Everything below acts on $CLUSTER_DIR only: its own config, data, logs and pid files per node
# (DIR/node<N>/...), its own ports (DIR/ports). Nothing here reads or writes $STATE.

node_dir() { printf '%s/node%s\n' "$CLUSTER_DIR" "$1"; }

check_node() {
    case "${1:-}" in 1|2|3) ;; *) die "node must be 1, 2 or 3, not '${1:-}'" ;; esac
}

choose_free_ports() {
    # Six ports that can be bound now, below the kernel's ephemeral range: a port from that
    # range could be taken, while a node is down, as the source port of some client's
    # connection, and the node could not start again.
    "$(python_bin)" - <<'PY'
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
chosen = []
for port in random.sample(range(20000, max(low, 20100)), k=min(400, max(low, 20100) - 20000)):
    if port in (9092, 9093, 9094):
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    chosen.append(port)
    if len(chosen) == 6:
        break
print(",".join(map(str, chosen)))
PY
}

load_cluster_ports() {
    # Sets the globals NODE_PORT[1..3] and NODE_CONTROLLER_PORT[1..3] from CLUSTER_PORTS, the
    # ports file, or (when starting a new cluster) six free ports.
    local list="$CLUSTER_PORTS" recorded="$CLUSTER_DIR/ports"
    if [[ -f "$recorded" ]]; then
        local kept
        kept="$(cat "$recorded")"
        if [[ -n "$list" && "$list" != "$kept" ]]; then
            die "$CLUSTER_DIR was made with ports $kept, not $list; use another --dir or cluster-wipe it"
        fi
        list="$kept"
    elif [[ -z "$list" ]]; then
        [[ "${1:-}" == new ]] || die "no cluster in $CLUSTER_DIR (no ports file); run cluster-start first"
        list="$(choose_free_ports)"
    fi
    local -a ports
    IFS=, read -r -a ports <<<"$list"
    [[ ${#ports[@]} -eq 6 ]] || die "--ports needs six ports (three client, three controller), not '$list'"
    local p
    for p in "${ports[@]}"; do
        [[ "$p" =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || die "not a port number: '$p'"
        # The shared single broker's ports are never the cluster's, whatever was asked for.
        case "$p" in "$PORT"|"$CONTROLLER_PORT"|"$TLS_PORT"|9092|9093|9094)
            die "port $p belongs to the single broker; choose other cluster ports" ;;
        esac
    done
    [[ $(printf '%s\n' "${ports[@]}" | sort -u | wc -l) -eq 6 ]] || die "the six ports must differ: $list"
    NODE_PORT=([1]="${ports[0]}" [2]="${ports[1]}" [3]="${ports[2]}")
    NODE_CONTROLLER_PORT=([1]="${ports[3]}" [2]="${ports[4]}" [3]="${ports[5]}")
    CLUSTER_PORTS="$list"
}

cluster_bootstrap() {
    printf '%s:%s,%s:%s,%s:%s\n' "$HOST" "${NODE_PORT[1]}" "$HOST" "${NODE_PORT[2]}" "$HOST" "${NODE_PORT[3]}"
}

node_pid() {
    # The pid of node N when its pid file names a live Kafka started with this node's config.
    local pidfile pid
    pidfile="$(node_dir "$1")/kafka.pid"
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $(node_dir "$1")/server.properties" \
        || return 1
    printf '%s\n' "$pid"
}

cluster_format() {
    cmd_fetch
    mkdir -p "$CLUSTER_DIR"
    local voters="" n
    for n in "${CLUSTER_NODES[@]}"; do
        voters+="${voters:+,}$n@$HOST:${NODE_CONTROLLER_PORT[$n]}"
    done
    local cluster_id_file="$CLUSTER_DIR/cluster.id" cluster_id
    if [[ ! -f "$cluster_id_file" ]]; then
        java_run kafka.tools.StorageTool random-uuid | tail -n 1 >"$cluster_id_file.tmp"
        mv "$cluster_id_file.tmp" "$cluster_id_file"
    fi
    cluster_id="$(cat "$cluster_id_file")"
    printf '%s\n' "$CLUSTER_PORTS" >"$CLUSTER_DIR/ports"
    for n in "${CLUSTER_NODES[@]}"; do
        local dir
        dir="$(node_dir "$n")"
        mkdir -p "$dir/data" "$dir/logs"
        sed -e "s#@NODE_ID@#$n#" -e "s#@DATA_DIR@#$dir/data#" -e "s#@PORT@#${NODE_PORT[$n]}#g" \
            -e "s#@CONTROLLER_PORT@#${NODE_CONTROLLER_PORT[$n]}#g" -e "s#@VOTERS@#$voters#" \
            "$HERE/cluster.properties" >"$dir/server.properties"
        [[ -f "$dir/data/meta.properties" ]] && continue
        log "formatting node $n in $dir/data (cluster id $cluster_id)"
        # Every node gets the same admin SCRAM credential in its bootstrap metadata.
        java -Xmx256m -cp "$(classpath)" -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
            -Dkafka.logs.dir="$dir/logs" kafka.tools.StorageTool format -t "$cluster_id" \
            -c "$dir/server.properties" \
            --add-scram "SCRAM-SHA-512=[name=$ADMIN_USER,password=$ADMIN_PASSWORD]" \
            >>"$dir/logs/format.log" 2>&1 \
            || { tail -n 30 "$dir/logs/format.log" >&2; die "formatting node $n failed"; }
    done
}

launch_node() {
    local n="$1" dir pid
    dir="$(node_dir "$n")"
    if pid="$(node_pid "$n")"; then
        log "node $n already running (pid $pid)"
        return 0
    fi
    local p
    for p in "${NODE_PORT[$n]}" "${NODE_CONTROLLER_PORT[$n]}"; do
        port_open "$p" && die "something else is listening on $HOST:$p; node $n cannot start there"
    done
    setsid java -Xmx"$CLUSTER_HEAP" -Xms"$CLUSTER_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:ActiveProcessorCount=2 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$dir/logs" \
        -cp "$(classpath)" kafka.Kafka "$dir/server.properties" >"$dir/logs/kafka.out" 2>&1 </dev/null &
    printf '%s\n' "$!" >"$dir/kafka.pid"
    log "node $n starting (pid $!, client port ${NODE_PORT[$n]}, controller port ${NODE_CONTROLLER_PORT[$n]})"
}

node_log_tail() {
    local dir
    dir="$(node_dir "$1")"
    log "node $1: last 40 lines of $dir/logs/server.log:"
    tail -n 40 "$dir/logs/server.log" >&2 2>/dev/null || true
    tail -n 20 "$dir/logs/kafka.out" >&2 2>/dev/null || true
}

wait_for_nodes() {
    # Wait until every node named answers a SCRAM-authenticated metadata request on its port.
    local deadline=$((SECONDS + START_TIMEOUT)) n pending=("$@")
    while ((${#pending[@]})); do
        local still=()
        for n in "${pending[@]}"; do
            if ! node_pid "$n" >/dev/null; then
                node_log_tail "$n"
                die "node $n exited during start-up (see the log above)"
            fi
            if port_open "${NODE_PORT[$n]}" && broker_answers "${NODE_PORT[$n]}"; then
                log "node $n answers on $HOST:${NODE_PORT[$n]}"
            else
                still+=("$n")
            fi
        done
        pending=("${still[@]+"${still[@]}"}")
        ((${#pending[@]})) || break
        if ((SECONDS >= deadline)); then
            for n in "${pending[@]}"; do node_log_tail "$n"; done
            die "node(s) ${pending[*]} did not answer within ${START_TIMEOUT}s (cluster-stop ends them)"
        fi
        sleep 1
    done
}

cmd_cluster_start() {
    load_cluster_ports new
    cluster_format
    local n
    for n in "${CLUSTER_NODES[@]}"; do launch_node "$n"; done
    wait_for_nodes "${CLUSTER_NODES[@]}"
    log "three-node cluster up in $CLUSTER_DIR; bootstrap $(cluster_bootstrap) (SASL_PLAINTEXT SCRAM-SHA-512, user $ADMIN_USER)"
    cluster_bootstrap
}

stop_node() {
    local n="$1" signal="$2" pid
    if ! pid="$(node_pid "$n")"; then
        rm -f "$(node_dir "$n")/kafka.pid"
        return 0
    fi
    kill "-$signal" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "node $n did not stop within ${STOP_TIMEOUT}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    rm -f "$(node_dir "$n")/kafka.pid"
}

cmd_cluster_stop() {
    [[ -d "$CLUSTER_DIR" ]] || { log "no cluster in $CLUSTER_DIR"; return 0; }
    local n pid
    # TERM all at once (a controlled shutdown each), then wait for each.
    for n in "${CLUSTER_NODES[@]}"; do
        if pid="$(node_pid "$n")"; then log "stopping node $n (pid $pid)"; kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for n in "${CLUSTER_NODES[@]}"; do stop_node "$n" TERM; done
}

cmd_cluster_kill_node() {
    check_node "${1:-}"
    load_cluster_ports
    local pid
    pid="$(node_pid "$1")" || die "node $1 of $CLUSTER_DIR is not running"
    log "SIGKILL node $1 (pid $pid)"
    stop_node "$1" KILL
}

cmd_cluster_start_node() {
    check_node "${1:-}"
    load_cluster_ports
    [[ -f "$(node_dir "$1")/data/meta.properties" ]] || die "node $1 of $CLUSTER_DIR is not formatted; run cluster-start"
    launch_node "$1"
    wait_for_nodes "$1"
}

cmd_cluster_status() {
    load_cluster_ports
    local n pid down=0
    for n in "${CLUSTER_NODES[@]}"; do
        if pid="$(node_pid "$n")"; then
            if broker_answers "${NODE_PORT[$n]}"; then
                echo "node $n: running (pid $pid), answering on $HOST:${NODE_PORT[$n]}"
            else
                echo "node $n: running (pid $pid), not answering on $HOST:${NODE_PORT[$n]}"; down=1
            fi
        else
            echo "node $n: not running"; down=1
        fi
    done
    echo "bootstrap: $(cluster_bootstrap)"
    return "$down"
}

cmd_cluster_wipe() {
    cmd_cluster_stop
    [[ -d "$CLUSTER_DIR" ]] || return 0
    [[ -f "$CLUSTER_DIR/cluster.id" || -f "$CLUSTER_DIR/ports" ]] \
        || die "$CLUSTER_DIR does not look like a cluster directory; not deleting it"
    log "deleting $CLUSTER_DIR"
    rm -rf -- "$CLUSTER_DIR"
}

cluster_main() {
    local cmd="$1" node=""
    shift
    while (($#)); do
        case "$1" in
            --dir) [[ $# -ge 2 ]] || die "--dir needs a directory"; CLUSTER_DIR="$2"; shift 2 ;;
            --dir=*) CLUSTER_DIR="${1#--dir=}"; shift ;;
            --ports) [[ $# -ge 2 ]] || die "--ports needs six ports"; CLUSTER_PORTS="$2"; shift 2 ;;
            --ports=*) CLUSTER_PORTS="${1#--ports=}"; shift ;;
            -*) die "unknown option: $1" ;;
            *) [[ -z "$node" ]] || die "unexpected argument: $1"; node="$1"; shift ;;
        esac
    done
    [[ "$CLUSTER_DIR" == /* ]] || CLUSTER_DIR="$PWD/$CLUSTER_DIR"
    case "$cmd" in
        cluster-start) [[ -z "$node" ]] || die "cluster-start takes no node"; cmd_cluster_start ;;
        cluster-stop) cmd_cluster_stop ;;
        cluster-kill-node) cmd_cluster_kill_node "$node" ;;
        cluster-start-node) cmd_cluster_start_node "$node" ;;
        cluster-status) cmd_cluster_status ;;
        cluster-bootstrap) load_cluster_ports; cluster_bootstrap ;;
        cluster-wipe) cmd_cluster_wipe ;;
    esac
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
        cluster-start|cluster-stop|cluster-kill-node|cluster-start-node|cluster-status|cluster-bootstrap|cluster-wipe)
            cluster_main "$@" ;;
        -h|--help|help) usage ;;
        "") usage >&2; exit 2 ;;
        *) log "unknown command: $cmd"; usage >&2; exit 2 ;;
    esac
}

main "$@"
