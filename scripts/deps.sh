#!/bin/bash
# Installs the Debian 12 packages r5cfs needs to build, run and test.
# Skips apt entirely when everything is already installed.
set -euo pipefail

PACKAGES=(
  g++ meson ninja-build pkg-config
  libfuse3-dev fuse3 libisal-dev libxxhash-dev libtomlplusplus-dev doctest-dev liburing-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libblkid-dev uuid-dev
  e2fsprogs fio util-linux python3 groff-base
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "r5cfs: missing packages: ${missing[*]}; run this script as root to install them" >&2
    exit 1
  fi
  echo "r5cfs: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
