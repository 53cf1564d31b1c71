#!/bin/bash
# Quick start, command 1: install dependencies, build, create the demo RAID5
# array of conf/demo.toml over five 256 MiB files in ./demo, and mount it on
# ./demo/mnt. Run as root. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh >/dev/null
CONFIG=conf/demo.toml
MNT=demo/mnt
if mountpoint -q "$MNT"; then
  echo "r5cfs: the demo array is already mounted on $MNT"
else
  if ! build/r5cfs info "$CONFIG" >/dev/null 2>&1; then
    build/r5cfs create "$CONFIG"
  fi
  mkdir -p "$MNT"
  build/mount.r5cfs "$CONFIG" "$MNT"
fi
IMAGE="$(pwd)/$MNT/array.img"
cat <<MSG

The demo array is mounted: $IMAGE ($(stat -c %s "$IMAGE") bytes)
  Status:     build/r5cfs info $CONFIG
  Use it:     losetup -f --show $IMAGE     # prints /dev/loopN
              mkfs.ext4 /dev/loopN && mount /dev/loopN /mnt
  Stop:       umount /mnt; losetup -d /dev/loopN; umount $(pwd)/$MNT
MSG
