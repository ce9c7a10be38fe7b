#!/usr/bin/env bash
# Installs the Debian 12 packages hearth needs, only those missing; fast when nothing is.
# Usage: scripts/install-deps.sh   (as root, or with sudo available)
set -euo pipefail

# systemd: systemd-analyze (tests/test-systemd-units verifies the units); iproute2: ip netns for the
# network tests.
packages=(
  build-essential cmake ninja-build pkg-config git
  libzmq3-dev libsodium-dev cppzmq-dev
  libmsgpack-cxx-dev libboost-dev
  libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  libpcre2-dev libsystemd-dev
  clang-14 libclang-rt-14-dev
  python3-zmq python3-msgpack
  systemd iproute2
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
