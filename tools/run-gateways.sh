#!/usr/bin/env bash
# Starts two local 3-node Spate clusters linked by gateways on 127.0.0.1, to
# try cross-cluster publish and mirrors (docs/gateways.md):
#
#   cluster "east": clients 4222-4224, raft 6222-6224, gateways 7222-7224
#   cluster "west": clients 4232-4234, raft 6232-6234, gateways 7232-7234
#
# west owns what is created there; east mirrors west's channel "orders" as
# "orders-mirror". Ctrl-C stops every node (SIGTERM, SIGKILL after 15 s).
#
#   tools/run-gateways.sh           # data, configs, logs in ./.spate-gateways
#   tools/run-gateways.sh --fresh   # wipe the data first
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
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
for base in 4222 6222 7222 4232 6232 7232; do
  for i in 0 1 2; do
    if port_busy $((base + i)); then
      echo "run-gateways.sh: port $((base + i)) on 127.0.0.1 is in use" >&2
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
  local off=$((base - 4222))
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
  echo "gateways {"
  echo "  name: \"$other\""
  for peer in 1 2 3; do
    echo "  addresses: \"127.0.0.1:$((other_gw + peer - 1))\""
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

cat <<TXT

Two clusters are running on 127.0.0.1, linked by gateways:
  east  clients 4222-4224  gateways 7222-7224  (mirrors west/orders as orders-mirror)
  west  clients 4232-4234  gateways 7232-7234
  data, logs (<cluster><id>.log), configs: $data

Try it in another terminal:
  alias spate=$data/bin/spate
  spate pub orders "from west" --server 127.0.0.1:4232   # west creates and owns "orders"
  spate pub orders "from east" --server 127.0.0.1:4222   # crosses the gateway, acked after west commits
  spate sub orders-mirror --all --count 2 --server 127.0.0.1:4223  # the mirror, read locally in east
  spate sub orders --all --count 2 --server 127.0.0.1:4224         # west's channel, relayed from west
  grep gateway $data/east1.log        # links up/down/refused, mirror feeds
  (Admin.ClusterStatus answers carry "gateways": links, mirror lag, conflicts)

Press Ctrl-C to stop all nodes.
TXT
while :; do
  wait -n 2>/dev/null || true
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && break
done
