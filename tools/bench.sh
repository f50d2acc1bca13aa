#!/usr/bin/env bash
# Runs Spate's standard benchmark suite against a fresh local 3-node
# cluster (replication 3, fsync before every ack: the server default) and
# prints one table. Each case is one `spate bench --json` run; the JSON
# lines are kept in the run directory.
#
#   tools/bench.sh                      # the suite once (a few minutes)
#   tools/bench.sh --runs 2             # twice, each on a fresh cluster
#   tools/bench.sh --smoke              # tiny counts, seconds (CI)
#   tools/bench.sh --compare-jetstream  # the NATS JetStream anchor suite and
#                                       # ours in one run, side by side
#   tools/bench.sh --keep               # keep the run directory
#   tools/bench.sh --cases 1,4          # only these cases (6 needs 1)
#
# Cases (128 B unless said; async = window of 1,000 unacked publishes):
#   1  1 publisher, async, 200k msgs        5  1 publisher + 1 durable sub
#   2  1 publisher, async, 1 KB, 100k msgs     (max in flight 1,000, manual
#   3  4 publishers on 4 channels, async,       ack), 100k msgs, concurrently
#      200k msgs in total                   6  catch-up: a new subscriber
#   4  sync publish, 10k msgs                  reads case 1's 200k msgs
#                                           7  open loop: 10k msgs/s for
#                                              10 s, 1 subscriber
#
# Environment:
#   SPATE_BIN_DIR=DIR      use DIR/spate-server and DIR/spate (no build)
#   SPATE_BAZEL_OUTPUT_BASE=DIR   passed to bazel as --output_base
#   SPATE_BENCH_DIR=DIR    run directory (default: a new /tmp/spate-bench.*)
#   JETSTREAM_ANCHORS=DIR  the JetStream anchor scripts (default:
#                          ../shared/anchors/jetstream beside the repo)
#   SKIP_210=1             --compare-jetstream: only Debian's nats-server
#   SPATE_BENCH_CONFIG=TEXT  protobuf text appended to every node's config
#                          (e.g. 'store { sync_writes: false }', the named
#                          unsafe mode, to see what fsync costs); the table
#                          title then says so: not the standard suite
#   SPATE_BENCH_PERF=1     record each case with `perf record -g` on the
#                          three servers: RUNDIR/perf-case<N>.data (needs
#                          linux-perf; use with --keep or SPATE_BENCH_DIR)
# Server processes are started and stopped by this script, by PID.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
self="$repo/tools/bench.sh"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

smoke=0
runs=1
cases=""
compare=0
keep=0
table=1
results=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --runs)
      [ $# -ge 2 ] || usage
      runs="$2"
      shift
      ;;
    --runs=*) runs="${1#--runs=}" ;;
    --compare-jetstream) compare=1 ;;
    --cases=*) cases="${1#--cases=}" ;;
    --cases)
      [ $# -ge 2 ] || usage
      cases="$2"
      shift
      ;;
    --keep) keep=1 ;;
    # Internal (the JetStream anchor's OURS_CMD hook): append the JSON
    # lines to FILE and print no table.
    --results=*)
      results="${1#--results=}"
      table=0
      ;;
    -h | --help) usage ;;
    *)
      echo "bench.sh: unknown argument: $1" >&2
      usage
      ;;
  esac
  shift
done
case "$runs" in '' | *[!0-9]* | 0)
  echo "bench.sh: --runs needs a positive number" >&2
  exit 2
  ;;
esac

log() { echo "bench.sh: $*" >&2; }

# ---- binaries -------------------------------------------------------------
if [ -n "${SPATE_BIN_DIR:-}" ]; then
  bin="$SPATE_BIN_DIR"
else
  source "$repo/tools/deps.sh"
  spate_install_deps
  bazel=(bazel)
  if [ -n "${SPATE_BAZEL_OUTPUT_BASE:-}" ]; then
    bazel+=(--output_base="$SPATE_BAZEL_OUTPUT_BASE")
  fi
  (cd "$repo" && "${bazel[@]}" build //server:spate-server //tools/spate:spate)
  bin="$(cd "$repo" && "${bazel[@]}" info bazel-bin 2>/dev/null)"
  bin_server="$bin/server/spate-server"
  bin_cli="$bin/tools/spate/spate"
fi
bin_server="${bin_server:-$bin/spate-server}"
bin_cli="${bin_cli:-$bin/spate}"
for f in "$bin_server" "$bin_cli"; do
  [ -x "$f" ] || {
    log "missing binary $f"
    exit 1
  }
done

# ---- the side-by-side run ---------------------------------------------------
if [ "$compare" = 1 ]; then
  # The anchor's run.sh runs the JetStream phases, then our suite through
  # its OURS_CMD hook, and saves everything in one file; the anchor folder
  # may be read-only, so it runs from a copy.
  anchors="${JETSTREAM_ANCHORS:-$repo/../shared/anchors/jetstream}"
  [ -f "$anchors/run.sh" ] || anchors=/work/shared/anchors/jetstream
  [ -f "$anchors/run.sh" ] || {
    log "JetStream anchor scripts not found (set JETSTREAM_ANCHORS)"
    exit 1
  }
  missing=()
  for pkg in nats-server libnats-dev gcc curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    $sudo apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      "${missing[@]}" </dev/null
  fi
  out="${SPATE_BENCH_DIR:-$(mktemp -d /tmp/spate-bench-compare.XXXXXX)}"
  mkdir -p "$out"
  rm -rf "$out/jetstream"
  cp -r "$anchors" "$out/jetstream"
  chmod -R u+w "$out/jetstream"
  ours="$out/spate.jsonl"
  : >"$ours"
  ours_cmd="SPATE_BIN_DIR='$bin' SPATE_BENCH_DIR='$out/spate'"
  ours_cmd+=" bash '$self' --runs $runs --results='$ours'"
  [ "$smoke" = 1 ] && ours_cmd+=" --smoke"
  log "JetStream anchor suite, then Spate's, in $out"
  (cd "$out/jetstream" && OURS_CMD="$ours_cmd" ./run.sh) || true
  anchor_out="$(ls -t "$out"/jetstream/runs/run-*.txt | head -1)"
  python3 "$repo/tools/bench_table.py" compare "$ours" "$anchor_out"
  echo
  python3 "$repo/tools/bench_table.py" suite "$ours"
  echo
  echo "Raw lines: $anchor_out (JetStream and our progress), $ours (Spate)"
  exit 0
fi

# ---- the cluster ------------------------------------------------------------
dir="${SPATE_BENCH_DIR:-$(mktemp -d /tmp/spate-bench.XXXXXX)}"
mkdir -p "$dir"
[ -n "$results" ] || results="$dir/results.jsonl"
[ "$table" = 1 ] && : >"$results"

# Six ports on 127.0.0.1 that were free a moment ago.
free_ports() {
  python3 - <<'PY'
import socket
socks = []
for _ in range(6):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

pids=()
cluster_running=0
stop_cluster() {
  [ "$cluster_running" = 1 ] || return 0
  cluster_running=0
  local pid waited=0 alive
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  while :; do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    if [ "$waited" -ge 150 ]; then
      for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_cluster
  if [ "$keep" = 0 ] && [ -z "${SPATE_BENCH_DIR:-}" ]; then
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

servers=""
# start_cluster RUN: three fresh nodes (ids 1..3) with their own data dirs.
start_cluster() {
  local run="$1" id peer ports
  read -r -a ports <<<"$(free_ports)"
  local cdir="$dir/run$run"
  rm -rf "$cdir"
  mkdir -p "$cdir"
  servers=""
  for id in 1 2 3; do
    {
      echo "node {"
      echo "  id: $id"
      echo "  cluster_name: \"bench\""
      echo "  data_dir: \"$cdir/node$id\""
      echo "  client_address: \"127.0.0.1:${ports[$((id - 1))]}\""
      echo "  cluster_address: \"127.0.0.1:${ports[$((id + 2))]}\""
      for peer in 1 2 3; do
        [ "$peer" = "$id" ] && continue
        echo "  peers {"
        echo "    id: $peer"
        echo "    cluster_address: \"127.0.0.1:${ports[$((peer + 2))]}\""
        echo "    client_address: \"127.0.0.1:${ports[$((peer - 1))]}\""
        echo "  }"
      done
      echo "}"
      echo "${SPATE_BENCH_CONFIG:-}"
    } >"$cdir/node$id.conf"
    servers+="${servers:+,}127.0.0.1:${ports[$((id - 1))]}"
  done
  cluster_running=1
  for id in 1 2 3; do
    "$bin_server" --config="$cdir/node$id.conf" \
      --ready_file="$cdir/node$id.ready" 2>>"$cdir/node$id.log" &
    pids+=($!)
    echo "$!" >"$cdir/node$id.pid"
  done
  for id in 1 2 3; do
    local tries=0
    until [ -s "$cdir/node$id.ready" ]; do
      if ! kill -0 "${pids[$((id - 1))]}" 2>/dev/null || [ $tries -ge 600 ]; then
        log "node $id did not start; its log:"
        tail -20 "$cdir/node$id.log" >&2
        exit 1
      fi
      sleep 0.1
      tries=$((tries + 1))
    done
  done
  log "run $run: 3 nodes on $servers (pids ${pids[*]}), data in $cdir"
}

# ---- the suite --------------------------------------------------------------
if [ "$smoke" = 1 ]; then
  n1=2000 n2=1000 n3=2000 n4=200 n5=1000 rate=1000 secs=1s
else
  n1=200000 n2=100000 n3=200000 n4=10000 n5=100000 rate=10000 secs=10s
fi
failed=0
# bench_case RUN CASE ARGS...: one `spate bench` run, its JSON appended.
bench_case() {
  local run="$1" case="$2"
  if [ -n "$cases" ] && [[ ",$cases," != *",$case,"* ]]; then
    return 0
  fi
  shift 2
  local line perf_pid=""
  if [ "${SPATE_BENCH_PERF:-0}" = 1 ]; then
    perf record -q -F 499 -g -p "$(
      IFS=,
      echo "${pids[*]}"
    )" -o "$dir/run$run/perf-case$case.data" 2>/dev/null &
    perf_pid=$!
    sleep 0.5 # perf attaches
  fi
  if line="$("$bin_cli" bench --json --label="$case" --server="$servers" \
    --server_pids="$(
      IFS=,
      echo "${pids[*]}"
    )" --client_id="bench-r$run-c$case" "$@")"; then
    echo "$line" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read()); d["run"] = int(sys.argv[1])
print(json.dumps(d))' "$run" >>"$results"
  else
    log "case $case of run $run FAILED: spate bench $*"
    echo "{\"label\": \"$case\", \"run\": $run, \"failed\": true}" >>"$results"
    failed=1
  fi
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
}

run_suite() {
  local run="$1"
  start_cluster "$run"
  log "machine: nproc=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"
  bench_case "$run" 1 c1 --count "$n1" --window 1000
  bench_case "$run" 2 c2 --count "$n2" --window 1000 --size 1024
  bench_case "$run" 3 c3 --pubs 4 --channels 4 --count "$n3" --window 1000
  bench_case "$run" 4 c4 --sync --count "$n4"
  bench_case "$run" 5 c5 --count "$n5" --window 1000 --subs 1 \
    --sub_kind durable --manual_ack --max_in_flight 1000
  bench_case "$run" 6 c1 --pubs 0 --subs 1 --all --count "$n1" \
    --max_in_flight 1000
  bench_case "$run" 7 c7 --rate "$rate" --duration "$secs" --subs 1 \
    --window 1000
  stop_cluster
}

for run in $(seq 1 "$runs"); do run_suite "$run"; done
if [ "$table" = 1 ]; then
  echo
  python3 "$repo/tools/bench_table.py" suite "$results"
  echo
  echo "JSON lines: $results$([ "$keep" = 0 ] && [ -z "${SPATE_BENCH_DIR:-}" ] && echo " (removed; --keep keeps them)")"
fi
exit "$failed"
