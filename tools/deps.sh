#!/usr/bin/env bash
# Installs the Debian packages Spate needs, only those that are missing.
# Sourced by tools/run.sh and tools/test.sh; runnable on its own.
# Uses sudo when not root; never prompts (CI has no terminal).

SPATE_PACKAGES=(
  bazel-bootstrap bazel-rules-java g++ clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcpp-httplib-dev prometheus-cpp-dev nlohmann-json3-dev zlib1g-dev
  libjemalloc-dev
)

spate_install_deps() {
  local missing=()
  local pkg
  for pkg in "${SPATE_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "Installing missing Debian packages: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
  fi
  $sudo apt-get update -qq </dev/null &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      "${missing[@]}" </dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  spate_install_deps
fi
