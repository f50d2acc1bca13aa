#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite.
# Extra arguments go to `bazel test` (e.g. tools/test.sh //raft/...).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
spate_install_deps

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(//...)
fi
# CI machines have 2 cores; tests that start clusters are marked exclusive
# or sized so that running them side by side stays within time limits.
bazel test --test_output=errors "${targets[@]}"
# The whole suite also fuzzes each libFuzzer target for 30 s (clang build in
# its own output base; SPATE_FUZZ_SECONDS=0 skips it, see tools/fuzz.sh),
# with a fixed libFuzzer seed so that a failure replays the same way.
if [ $# -eq 0 ] && [ "${SPATE_FUZZ_SECONDS:-30}" != "0" ]; then
  SPATE_FUZZ_SEED="${SPATE_FUZZ_SEED:-1}" \
    tools/fuzz.sh --seconds "${SPATE_FUZZ_SECONDS:-30}"
fi
