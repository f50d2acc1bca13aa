#!/usr/bin/env bash
# Fuzzes every libFuzzer target (tests/fuzz) with clang, ASan and UBSan.
#   tools/fuzz.sh                  30 s per target (the CI smoke run), with
#                                  the fixed libFuzzer seed 1 so that a CI
#                                  failure replays the same way locally
#   tools/fuzz.sh --seconds 1800   a long local run per target, random seed
# SPATE_FUZZ_SEED=N overrides the seed either way.
# Builds in its own Bazel output base (a compiler switch would otherwise
# rebuild the normal build), runs the targets one after another through
# `bazel test --config=fuzz` (tests/fuzz/run_fuzzer.sh), and fails if any
# target crashes; the crashing input is kept under bazel-testlogs/tests/
# fuzz/<target>/test.outputs/ — add it to tests/fuzz/corpus/<name>/ with
# the fix, so the normal build replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
seed="${SPATE_FUZZ_SEED:-1}"
if [ "${1:-}" = "--seconds" ]; then
  seconds="${2:?--seconds N}"
  seed="${SPATE_FUZZ_SEED:-0}"
fi
output_base="${SPATE_FUZZ_OUTPUT_BASE:-$HOME/.cache/bazel-spate-fuzz}"
targets=(//tests/fuzz:fsm_fuzzer_test //tests/fuzz:raft_fuzzer_test
         //tests/fuzz:record_fuzzer_test //tests/fuzz:request_fuzzer_test)
SPATE_FUZZ_SECONDS="$seconds" SPATE_FUZZ_SEED="$seed" bazel --output_base="$output_base" test \
  --config=fuzz --jobs=2 --local_test_jobs=1 --test_timeout=$((seconds + 600)) \
  --test_output=errors "${targets[@]}"
