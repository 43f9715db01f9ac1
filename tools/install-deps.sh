#!/usr/bin/env bash
# Installs every Debian package Spline needs to build, test and run (Debian 12).
# Idempotent; run as root (or with sudo available). The README and .ci/run both call it.
set -euo pipefail
pkgs=(
  # build
  gcc g++ make cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev clang-format
  # libraries
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler
  libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev libyaml-dev
  libcmocka-dev
  # real components used by tests and the playground
  etcd-server etcd-client prometheus curl jq iproute2 procps psmisc
  # analysis
  valgrind
)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts the packaged etcd and prometheus as services when systemd runs; Spline
# starts its own instances on free ports, so stop the packaged ones where they run.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now etcd prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
