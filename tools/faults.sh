#!/usr/bin/env bash
# Fault-injection soak: runs seeded fault schedules, each against a fresh
# cluster of real spate-server processes on 127.0.0.1 (tests/faults/), and
# prints one line per run plus totals (runs, faults by kind, messages
# acked, lost/unexpected/reordered/holes/divergent counts).
#
#   tools/faults.sh --runs 200 --seconds 20        # the soak
#   tools/faults.sh --seed 1234 --nodes 5 --seconds 15 --kinds split,crash
#                                                  # replay one run
# Options are passed to the harness binary (--seed first seed, --runs,
# --seconds fault phase per run, --nodes 3|5 (default: by seed), --kinds,
# --verbose). Exits 1 if any run was invalid; the failing runs print their
# schedule, the checker's findings and the command that replays them.
#
# Environment:
#   SPATE_BAZEL_OUTPUT_BASE=DIR   passed to bazel as --output_base
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bazel=(bazel)
if [[ -n "${SPATE_BAZEL_OUTPUT_BASE:-}" ]]; then
  bazel+=(--output_base="$SPATE_BAZEL_OUTPUT_BASE")
fi
(cd "$repo" && "${bazel[@]}" build //tests/faults:faults >&2)
bin="$(cd "$repo" && "${bazel[@]}" info bazel-bin 2>/dev/null)"
runfiles="$bin/tests/faults/faults.runfiles"

# The harness finds spate-server in its runfiles and keeps node data under
# TEST_TMPDIR, as under `bazel test`.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/spate-faults.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
TEST_SRCDIR="$runfiles" TEST_WORKSPACE=spate TEST_TMPDIR="$tmp" \
  "$bin/tests/faults/faults" "$@"
