#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local Spate server on
# 127.0.0.1 for trying it out. Ctrl-C stops it cleanly.
#
#   tools/run.sh                 # data in ./.spate-run (kept across runs)
#   SPATE_DATA=/tmp/x tools/run.sh
#   tools/run.sh --fresh         # wipe the data first
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
spate_install_deps

data="${SPATE_DATA:-$PWD/.spate-run}"
if [ "${1:-}" = "--fresh" ]; then
  rm -rf "$data"
fi
mkdir -p "$data"

bazel build //server:spate-server //tools/spate:spate
# Copy the binaries next to the data: short, stable paths to print.
bin="$(bazel info bazel-bin 2>/dev/null)"
mkdir -p "$data/bin"
cp -f "$bin/server/spate-server" "$bin/tools/spate/spate" "$data/bin/"
server="$data/bin/spate-server"
cli="$data/bin/spate"
case "$cli" in "$PWD"/*) cli="./${cli#"$PWD"/}" ;; esac

client_port=4222
log="$data/node1.log"
"$server" --node_id=1 --data_dir="$data/node1" \
  --client_address="127.0.0.1:$client_port" \
  --ready_file="$data/node1.ready" 2>>"$log" &
pid=$!

stop() {
  echo
  echo "Stopping spate-server (pid $pid)..."
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "Stopped. Data kept in $data (tools/run.sh --fresh wipes it)."
}
trap stop INT TERM

for _ in $(seq 1 300); do
  [ -s "$data/node1.ready" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "spate-server failed to start; its log ($log):" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  sleep 0.1
done
rm -f "$data/node1.ready"

cat <<TXT

Spate is running: node 1 serving clients on 127.0.0.1:$client_port
  data: $data/node1   log: $log

Try it in another terminal (the CLI is $cli):
  $cli pub orders "hello"                       # publish, prints the sequence
  $cli sub orders --all --count 1               # read from the first message
  $cli sub orders --durable d1 --count 1        # a durable subscription...
  $cli sub orders --durable d1                  # ...resumes where it stopped

Press Ctrl-C to stop.
TXT
wait "$pid"
