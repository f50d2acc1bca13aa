#!/usr/bin/env bash
# CI smoke test of the benchmark suite: tools/bench.sh --smoke runs all
# seven standard cases with tiny counts against a fresh 3-node cluster of
# the built spate-server, and every case must complete and report non-zero
# rates, ordered non-zero latency percentiles and CPU time for each of the
# three server processes (bench_table.py check). It measures nothing: the
# numbers of a loaded CI machine mean little; it guards the tool chain.
set -euo pipefail
root="$TEST_SRCDIR/spate"
bin="$TEST_TMPDIR/bin"
mkdir -p "$bin"
ln -sf "$root/server/spate-server" "$bin/spate-server"
ln -sf "$root/tools/spate/spate" "$bin/spate"
out="$TEST_TMPDIR/bench"
SPATE_BIN_DIR="$bin" SPATE_BENCH_DIR="$out" \
  bash "$root/tools/bench.sh" --smoke
python3 "$root/tools/bench_table.py" check "$out/results.jsonl" 7
