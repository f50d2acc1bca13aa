#!/usr/bin/env bash
# Starts two local 3-node Spate clusters linked by gateways on 127.0.0.1, to
# try cross-cluster publish and mirrors (docs/gateways.md):
#
#   cluster "east": clients 4222-4224, raft 6222-6224, gateways 7222-7224,
#                   HTTP monitor 8222-8224
#   cluster "west": clients 4232-4234, raft 6232-6234, gateways 7232-7234,
#                   HTTP monitor 8232-8234
#
# west owns what is created there; east mirrors west's channel "orders" as
# "orders-mirror". Ctrl-C or SIGTERM stops every node by PID (SIGTERM,
# SIGKILL after 15 s). `tools/run.sh --clusters 2` runs this script.
#
#   tools/run-gateways.sh           # data, configs, logs in ./.spate-gateways
#   tools/run-gateways.sh --fresh   # wipe the data first
#   SPATE_DATA=/tmp/x               # another data directory
#   SPATE_PORT_OFFSET=10000         # every port above + 10000
#   SPATE_BAZEL_OUTPUT_BASE=DIR     # passed to bazel as --output_base
set -euo pipefail
cd "$(dirname "$0")/.."

fresh=0
case "${1:-}" in
  --fresh) fresh=1 ;;
  "") ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

source tools/deps.sh
spate_install_deps

data="${SPATE_DATA:-$PWD/.spate-gateways}"
offset="${SPATE_PORT_OFFSET:-0}"
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
for base in 4222 6222 7222 8222 4232 6232 7232 8232; do
  for i in 0 1 2; do
    if port_busy $((base + offset + i)); then
      echo "run-gateways.sh: port $((base + offset + i)) on 127.0.0.1 is in" \
        "use; stop what uses it or set SPATE_PORT_OFFSET" >&2
      exit 1
    fi
  done
done
[ "$fresh" = 1 ] && rm -rf "$data"
mkdir -p "$data"

bazel=(bazel)
[ -n "${SPATE_BAZEL_OUTPUT_BASE:-}" ] && bazel+=(--output_base="$SPATE_BAZEL_OUTPUT_BASE")
"${bazel[@]}" build //server:spate-server //tools/spate:spate
bin="$("${bazel[@]}" info bazel-bin 2>/dev/null)"
mkdir -p "$data/bin"
cp -f "$bin/server/spate-server" "$bin/tools/spate/spate" "$data/bin/"

# node_config CLUSTER CLIENT_BASE OTHER_CLUSTER OTHER_GATEWAY_BASE ID
node_config() {
  local cluster="$1" base="$2" other="$3" other_gw="$4" id="$5" peer
  local off=$((base - 4222 + offset))
  echo "node {"
  echo "  id: $id"
  echo "  cluster_name: \"$cluster\""
  echo "  data_dir: \"$data/$cluster$id\""
  echo "  client_address: \"127.0.0.1:$((4222 + off + id - 1))\""
  echo "  cluster_address: \"127.0.0.1:$((6222 + off + id - 1))\""
  echo "  gateway_address: \"127.0.0.1:$((7222 + off + id - 1))\""
  for peer in 1 2 3; do
    [ "$peer" = "$id" ] && continue
    echo "  peers { id: $peer cluster_address: \"127.0.0.1:$((6222 + off + peer - 1))\"" \
      "client_address: \"127.0.0.1:$((4222 + off + peer - 1))\" }"
  done
  echo "}"
  echo "monitor_address: \"127.0.0.1:$((8222 + off + id - 1))\""
  echo "gateways {"
  echo "  name: \"$other\""
  for peer in 1 2 3; do
    echo "  addresses: \"127.0.0.1:$((other_gw + offset + peer - 1))\""
  done
  echo "}"
  if [ "$cluster" = east ]; then
    echo "mirrors { channel: \"orders-mirror\" source_cluster: \"west\"" \
      "source_channel: \"orders\" }"
  fi
}

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] && return
  echo
  echo "Stopping ${#pids[@]} nodes..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 150); do
    local alive=0 pid
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "Stopped. Data kept in $data (--fresh wipes it)."
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

setsid=""
command -v setsid >/dev/null && setsid=setsid
for spec in "east 4222 west 7232" "west 4232 east 7222"; do
  read -r cluster base other other_gw <<<"$spec"
  for id in 1 2 3; do
    conf="$data/$cluster$id.conf"
    node_config "$cluster" "$base" "$other" "$other_gw" "$id" >"$conf"
    rm -f "$data/$cluster$id.ready"
    $setsid "$data/bin/spate-server" --config="$conf" \
      --ready_file="$data/$cluster$id.ready" 2>>"$data/$cluster$id.log" &
    pids+=($!)
    echo "$!" >"$data/$cluster$id.pid"
  done
done
for name in east1 east2 east3 west1 west2 west3; do
  for _ in $(seq 300); do
    [ -s "$data/$name.ready" ] && break
    sleep 0.1
  done
  if [ ! -s "$data/$name.ready" ]; then
    echo "node $name did not start; see $data/$name.log" >&2
    tail -20 "$data/$name.log" >&2
    exit 1
  fi
done

e=$((4222 + offset))
w=$((4232 + offset))
cat <<TXT

Two clusters are running on 127.0.0.1, linked by gateways:
  east  clients $e-$((e + 2))  gateways $((e + 3000))-$((e + 3002))  monitor $((e + 4000))-$((e + 4002))  (mirrors west/orders as orders-mirror)
  west  clients $w-$((w + 2))  gateways $((w + 3000))-$((w + 3002))  monitor $((w + 4000))-$((w + 4002))
  node pids: ${pids[*]}
  data, logs (<cluster><id>.log), configs: $data

Try it in another terminal:
  alias spate=$data/bin/spate
  spate pub orders "from west" --server 127.0.0.1:$w   # west creates and owns "orders"
  spate pub orders "from east" --server 127.0.0.1:$e   # crosses the gateway, acked after west commits
  spate sub orders-mirror --all --count 2 --server 127.0.0.1:$((e + 1))  # the mirror, read locally in east
  spate sub orders --all --count 2 --server 127.0.0.1:$((e + 2))         # west's channel, relayed from west
  spate mirror add orders-copy2 west orders --server 127.0.0.1:$e,127.0.0.1:$((e + 1)),127.0.0.1:$((e + 2))
  spate mirror list --server 127.0.0.1:$e,127.0.0.1:$((e + 1)),127.0.0.1:$((e + 2))
  spate cluster status --server 127.0.0.1:$e           # ends with the Gateways section
  curl http://127.0.0.1:$((e + 4000))/streaming/gatewayz
  grep gateway $data/east1.log        # links up/down/refused, mirror feeds

Press Ctrl-C to stop all nodes.
TXT
while :; do
  wait -n 2>/dev/null || true
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && break
done
