#!/bin/bash
# mount(8) integration: `mount -t r5cfs CONFIG DIR` runs /sbin/mount.r5cfs
# with "-o rw"; umount shuts the daemon down cleanly (superblocks clean).
set -euo pipefail
if [[ $(id -u) -ne 0 || ! -c /dev/fuse ]]; then
  echo "SKIPPED: mount_helper.sh needs root and /dev/fuse" >&2
  exit 77
fi
if [[ -e /sbin/mount.r5cfs && "$(readlink -f /sbin/mount.r5cfs)" != "$(readlink -f "$MOUNT_R5CFS")" ]]; then
  echo "SKIPPED: an installed /sbin/mount.r5cfs exists; not replacing it" >&2
  exit 77
fi
work=$(mktemp -d /tmp/r5cfs-mount-helper.XXXXXX)
installed_link=0
cleanup() {
  mountpoint -q "$work/mnt" && umount "$work/mnt" || true
  ((installed_link)) && rm -f /sbin/mount.r5cfs
  rm -rf "$work"
}
trap cleanup EXIT
if [[ ! -e /sbin/mount.r5cfs ]]; then
  ln -s "$MOUNT_R5CFS" /sbin/mount.r5cfs
  installed_link=1
fi
cat > "$work/a.toml" <<CFG
[array]
name = "helper"
level = 5
chunk_size = "64KiB"
member_size = "16MiB"
members = ["m0.img", "m1.img", "m2.img"]
[journal]
mode = "none"
CFG
"$R5CFS" create "$work/a.toml" >/dev/null
mkdir "$work/mnt"
mount -t r5cfs "$work/a.toml" "$work/mnt"
grep -q "r5cfs:helper $work/mnt fuse.r5cfs" /proc/mounts || { echo "FAIL: not in /proc/mounts" >&2; exit 1; }
head -c 1M /dev/urandom > "$work/pattern"
dd if="$work/pattern" of="$work/mnt/array.img" bs=64k oflag=direct conv=notrunc status=none
cmp <(head -c 1M "$work/mnt/array.img") "$work/pattern"
pid=$(pgrep -f "mount.r5cfs $work/a.toml" | head -1)
umount "$work/mnt"
# The daemon finishes its clean shutdown after umount returns.
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { echo "FAIL: daemon still running after umount" >&2; exit 1; }
"$R5CFS" info "$work/a.toml" | grep -q "State:        clean" || { echo "FAIL: superblocks not clean" >&2; exit 1; }
echo "mount_helper: ok"
