#!/bin/sh
# Runs check_manifests.py over the deploy/ tree in the test's runfiles.
set -eu
dir="$(dirname "$0")"
exec python3 "$dir/check_manifests.py" "$dir"
