#!/usr/bin/env bash
# Runs one fuzz target over its seed corpus (tests/fuzz/BUILD.bazel).
#   default build: replays every seed once (replay_main.cc);
#   --config=fuzz: fuzzes for SPATE_FUZZ_SECONDS (default 30) with libFuzzer
#   seed SPATE_FUZZ_SEED (default 0: a random seed) from a copy of
#   the seeds (libFuzzer adds inputs to its corpus directory, and runfiles are
#   read-only). A crash fails the test; libFuzzer writes the input that
#   crashed to the test's undeclared outputs to turn into a regression seed.
# Usage: run_fuzzer.sh <fuzzer binary> <corpus dir>
set -euo pipefail
fuzzer="$1"
seeds="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}/corpus"
mkdir -p "$work"
cp "$seeds"/* "$work"/
artifacts="${TEST_UNDECLARED_OUTPUTS_DIR:-$work}/"
exec "$fuzzer" -max_total_time="${SPATE_FUZZ_SECONDS:-30}" -timeout=10 \
  -seed="${SPATE_FUZZ_SEED:-0}" \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
  "$work"
