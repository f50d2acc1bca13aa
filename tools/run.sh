#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local Spate cluster on
# 127.0.0.1 for trying it out: three nodes (ids 1..3, cluster "local"),
# clients on ports 4222-4224, raft traffic on 6222-6224. Ctrl-C stops every
# node cleanly (SIGTERM, then SIGKILL after 15 s).
#
#   tools/run.sh                 # data, configs, logs in ./.spate-run (kept)
#   tools/run.sh --fresh         # wipe the data first
#   tools/run.sh --nodes 1       # a single node on 4222 (development)
#   tools/run.sh --clusters 2    # two 3-node clusters linked by gateways
#                                # (tools/run-gateways.sh; --fresh passes on)
#   SPATE_DATA=/tmp/x tools/run.sh
#   SPATE_CLIENT_PORT=14222 SPATE_CLUSTER_PORT=16222 tools/run.sh
#                                # other first ports (node N: port + N - 1)
#   SPATE_BAZEL_OUTPUT_BASE=DIR  # passed to bazel as --output_base
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

fresh=0
nodes=3
clusters=1
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1 ;;
    --clusters)
      [ $# -ge 2 ] || usage
      clusters="$2"
      shift
      ;;
    --clusters=*) clusters="${1#--clusters=}" ;;
    --nodes)
      [ $# -ge 2 ] || usage
      nodes="$2"
      shift
      ;;
    --nodes=*) nodes="${1#--nodes=}" ;;
    -h | --help) usage ;;
    *)
      echo "run.sh: unknown argument: $1" >&2
      usage
      ;;
  esac
  shift
done
if [ "$clusters" = 2 ]; then
  # Two linked clusters: the gateway script does it all (ports, configs,
  # stopping every node by PID).
  if [ "$fresh" = 1 ]; then exec tools/run-gateways.sh --fresh; fi
  exec tools/run-gateways.sh
elif [ "$clusters" != 1 ]; then
  echo "run.sh: --clusters must be 1 or 2" >&2
  exit 2
fi
if [ "$nodes" != 1 ] && [ "$nodes" != 3 ]; then
  echo "run.sh: --nodes must be 1 or 3" >&2
  exit 2
fi

source tools/deps.sh
spate_install_deps

data="${SPATE_DATA:-$PWD/.spate-run}"
client_port="${SPATE_CLIENT_PORT:-4222}"
cluster_port="${SPATE_CLUSTER_PORT:-6222}"
monitor_port="${SPATE_MONITOR_PORT:-8222}"

# A port something already listens on: fail now with a clear message
# rather than leave a node to die on bind.
port_busy() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
ports=()
for id in $(seq 1 "$nodes"); do
  ports+=($((client_port + id - 1)))
  ports+=($((monitor_port + id - 1)))
  [ "$nodes" = 1 ] || ports+=($((cluster_port + id - 1)))
done
for port in "${ports[@]}"; do
  if port_busy "$port"; then
    echo "run.sh: port $port on 127.0.0.1 is already in use (another" \
      "spate-server or tools/run.sh?). Stop it, or pick other ports with" \
      "SPATE_CLIENT_PORT=... SPATE_CLUSTER_PORT=... SPATE_MONITOR_PORT=..." \
      "tools/run.sh" >&2
    exit 1
  fi
done

if [ "$fresh" = 1 ]; then
  rm -rf "$data"
fi
mkdir -p "$data"
# Nodes of a 1-node and of a 3-node cluster must not share data: a node's
# raft state records its group members. (Data without the marker comes
# from the earlier run.sh, which only ran a single node.)
if [ ! -f "$data/nodes" ] && [ -d "$data/node1" ]; then
  echo 1 >"$data/nodes"
fi
if [ -f "$data/nodes" ] && [ "$(cat "$data/nodes")" != "$nodes" ]; then
  echo "run.sh: $data holds a $(cat "$data/nodes")-node cluster's data;" \
    "add --fresh to wipe it, or use SPATE_DATA=another/dir" >&2
  exit 1
fi
echo "$nodes" >"$data/nodes"

bazel=(bazel)
if [ -n "${SPATE_BAZEL_OUTPUT_BASE:-}" ]; then
  bazel+=(--output_base="$SPATE_BAZEL_OUTPUT_BASE")
fi
"${bazel[@]}" build //server:spate-server //tools/spate:spate
# Copy the binaries next to the data: short, stable paths to print.
bin="$("${bazel[@]}" info bazel-bin 2>/dev/null)"
mkdir -p "$data/bin"
cp -f "$bin/server/spate-server" "$bin/tools/spate/spate" "$data/bin/"
server="$data/bin/spate-server"
cli="$data/bin/spate"
short() { case "$1" in "$PWD"/*) echo "./${1#"$PWD"/}" ;; *) echo "$1" ;; esac }

# node_config ID: the node's ServerConfig (proto/config.proto) as text.
node_config() {
  local id="$1" peer
  echo "node {"
  echo "  id: $id"
  echo "  cluster_name: \"local\""
  echo "  data_dir: \"$data/node$id\""
  echo "  client_address: \"127.0.0.1:$((client_port + id - 1))\""
  if [ "$nodes" -gt 1 ]; then
    echo "  cluster_address: \"127.0.0.1:$((cluster_port + id - 1))\""
    for peer in $(seq 1 "$nodes"); do
      [ "$peer" = "$id" ] && continue
      echo "  peers {"
      echo "    id: $peer"
      echo "    cluster_address: \"127.0.0.1:$((cluster_port + peer - 1))\""
      echo "    client_address: \"127.0.0.1:$((client_port + peer - 1))\""
      echo "  }"
    done
  fi
  echo "}"
  # HTTP monitoring: /streaming/serverz ... /healthz, /metrics.
  echo "monitor_address: \"127.0.0.1:$((monitor_port + id - 1))\""
}

pids=()
stopped=0
stop() {
  [ "$stopped" = 1 ] && return
  stopped=1
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] && return
  echo
  local pid alive=() waited=0
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null && alive+=("$pid")
  done
  if [ ${#alive[@]} -gt 0 ]; then
    echo "Stopping ${#alive[@]} node(s) (SIGTERM to ${alive[*]})..."
    kill -TERM "${alive[@]}" 2>/dev/null || true
  fi
  # Wait up to 15 s for a clean exit, then SIGKILL what is left.
  while [ ${#alive[@]} -gt 0 ]; do
    if [ "$waited" -ge 150 ]; then
      echo "Still running after 15 s, sending SIGKILL to: ${alive[*]}"
      kill -KILL "${alive[@]}" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
    local still=()
    for pid in "${alive[@]}"; do
      kill -0 "$pid" 2>/dev/null && still+=("$pid")
    done
    alive=("${still[@]+"${still[@]}"}")
  done
  wait 2>/dev/null || true
  rm -f "$data"/node*.pid
  echo "Stopped. Data kept in $(short "$data") (tools/run.sh --fresh wipes it)."
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

setsid=""
command -v setsid >/dev/null && setsid=setsid
for id in $(seq 1 "$nodes"); do
  node_config "$id" >"$data/node$id.conf"
  rm -f "$data/node$id.ready"
  # Each node in its own session: Ctrl-C in the terminal reaches only
  # this script, which stops the nodes itself, by PID. (setsid execs the
  # server in place, so $! is the server's PID.)
  $setsid "$server" --config="$data/node$id.conf" \
    --ready_file="$data/node$id.ready" 2>>"$data/node$id.log" &
  pids[$id]=$!
  echo "${pids[$id]}" >"$data/node$id.pid"
done

for id in "${!pids[@]}"; do
  for _ in $(seq 1 300); do
    [ -s "$data/node$id.ready" ] && break
    if ! kill -0 "${pids[$id]}" 2>/dev/null; then
      echo "spate-server node $id failed to start; its log" \
        "($(short "$data/node$id.log")):" >&2
      tail -20 "$data/node$id.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ ! -s "$data/node$id.ready" ]; then
    echo "spate-server node $id did not start within 30 s; see" \
      "$(short "$data/node$id.log")" >&2
    exit 1
  fi
  rm -f "$data/node$id.ready"
done

addresses=""
for id in "${!pids[@]}"; do
  addresses+="${addresses:+,}127.0.0.1:$((client_port + id - 1))"
done
d="$(short "$data")"
echo
if [ "$nodes" = 1 ]; then
  echo "Spate is running: one node serving clients on 127.0.0.1:$client_port"
  echo "  pid ${pids[1]}  data: $d/node1/  log: $d/node1.log" \
    " config: $d/node1.conf"
else
  echo "Spate is running: a $nodes-node cluster \"local\" on 127.0.0.1"
  for id in "${!pids[@]}"; do
    echo "  node $id  clients 127.0.0.1:$((client_port + id - 1))" \
      " cluster 127.0.0.1:$((cluster_port + id - 1))" \
      " monitor http://127.0.0.1:$((monitor_port + id - 1))  pid ${pids[$id]}"
  done
  echo "  data: $d/node{1,2,3}/  logs: $d/node{1,2,3}.log" \
    " configs: $d/node{1,2,3}.conf"
fi
p2="127.0.0.1:$((client_port + 1))"
p3="127.0.0.1:$((client_port + 2))"
cat <<TXT

Try it in another terminal:
  export SPATE_SERVER=$addresses
  alias spate=$cli
  spate pub orders "hello"                    # publish, prints the sequence
TXT
if [ "$nodes" -gt 1 ]; then
  cat <<TXT
  spate pub orders "hi" --server $p3   # any node serves any client
  spate sub orders --all --count 2 --server $p2
TXT
else
  echo "  spate sub orders --all --count 1            # from the first message"
fi
cat <<TXT
  spate sub orders --durable d1 --client_id me --all --count 1  # durable...
  spate sub orders --durable d1 --client_id me  # ...resumes where it stopped
  spate cluster status                        # nodes, leaders, lag, channels
  spate channels
TXT
if [ "$nodes" -gt 1 ]; then
  cat <<TXT

Failover: keep publishing while a node dies (2 of 3 nodes are a majority):
  for i in \$(seq 1000); do echo "order \$i"; sleep 0.2; done | spate pub orders
  kill -9 \$(cat $data/node1.pid)      # in a third terminal
  spate cluster status                        # node 1 down, new leaders
TXT
fi
echo
echo "Press Ctrl-C to stop all nodes."

# Report nodes that exit on their own (killed for the failover demo, or
# crashed) and keep serving with the others until Ctrl-C. `wait -n`
# returns when a node exits, or at once when a trapped signal arrives.
declare -A reported=()
while :; do
  wait -n 2>/dev/null || true
  running=0
  for id in "${!pids[@]}"; do
    if kill -0 "${pids[$id]}" 2>/dev/null; then
      running=$((running + 1))
    elif [ -z "${reported[$id]:-}" ]; then
      reported[$id]=1
      status=0
      wait "${pids[$id]}" 2>/dev/null || status=$?
      echo "node $id (pid ${pids[$id]}) exited (status $status); to restart" \
        "it in another terminal (Ctrl-C there stops it):" \
        "$server --config=$data/node$id.conf 2>>$data/node$id.log"
    fi
  done
  if [ "$running" -eq 0 ]; then
    echo "All nodes exited."
    break
  fi
done
