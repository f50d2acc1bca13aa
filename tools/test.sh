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
exec bazel test --test_output=errors "${targets[@]}"
