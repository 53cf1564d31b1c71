#!/bin/bash
# End-to-end: ext4 on a loop device over the image of a RAID5 4+1 and a RAID6
# 4+2 in journal mode none, and a RAID5 4+1 in write-back (drained at unmount).
#
# For each level: create, mount, losetup (RAID5 buffered, RAID6
# --direct-io=on), mkfs.ext4, mount, copy a tree (~40 MiB of random files in
# nested folders, a symlink, an empty folder, /usr/share/doc/fio with cp -a),
# umount ext4, e2fsck -fn clean, losetup -d, umount r5cfs (daemon exit 0,
# superblocks clean, P/Q right on the members), remount r5cfs with -o ro
# (writes fail, losetup gives a read-only device), losetup in the other mode,
# mount ext4 read-only: checksums, file types, modes, sizes and
# link targets match the source tree; e2fsck -fn clean again; the read-only
# mount wrote nothing to the members (mount.r5cfs(8): ro writes nothing).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse

TREE=$WS/tree
EXT4=$WS/ext4
mkdir -p "$EXT4"

make_tree() {
  r5tool tree --dir "$TREE/random" --bytes $((40 << 20)) --seed "$SEED"
  if [[ -d /usr/share/doc/fio ]]; then
    cp -a /usr/share/doc/fio "$TREE/fio-doc"
  fi
  mkdir -p "$TREE/empty"
  ln -s random/d00 "$TREE/link-to-d00"
  (cd "$TREE" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WS/tree.sha256"
  tree_listing "$TREE" >"$WS/tree.list"
  log "source tree: $(wc -l <"$WS/tree.sha256") files, $(du -sh "$TREE" | cut -f1)"
}

# Type, mode, size (not for folders) and link target of everything in a tree.
tree_listing() {
  (cd "$1" && {
    find . ! -type d -printf '%y %m %s %p %l\n'
    find . -type d -printf '%y %m %p\n'
  } | LC_ALL=C sort)
}

losetup_mode() {
  if [[ $1 == direct ]]; then
    losetup -f --show --direct-io=on "$IMG"
  else
    losetup -f --show "$IMG"
  fi
}

run_level() {
  local level=$1 n=$2 write_mode=$3 read_mode=$4 journal_mode=${5:-none} cfg loop
  log "==== RAID$level, $n members, journal mode $journal_mode: write through a $write_mode loop, read through a $read_mode loop"
  cfg=$(JOURNAL_MODE=$journal_mode write_config "r$level-$journal_mode" "$level" "$n")
  create_array "$cfg"
  if [[ $journal_mode == none ]]; then
    start_daemon "$cfg"
  else
    start_daemon "$cfg" -o drain  # the read-only remount below needs an empty journal
  fi

  loop=$(losetup_mode "$write_mode")
  log "mkfs.ext4 on $loop ($write_mode, DIO=$(losetup -n -O DIO -l "$loop" | tr -d ' '))"
  mkfs.ext4 -q "$loop" || fail "mkfs.ext4 $loop failed"
  mount "$loop" "$EXT4"
  cp -a "$TREE" "$EXT4/tree" || fail "copying the tree into ext4 failed"
  (cd "$EXT4/tree" && sha256sum --quiet -c "$WS/tree.sha256") || fail "checksums differ right after the copy"
  umount "$EXT4"
  e2fsck -fn "$loop" >"$WS/fsck.out" 2>&1 || fail "e2fsck -fn $loop after writing is not clean: $(cat "$WS/fsck.out")"
  losetup -d "$loop"
  stop_daemon
  [[ $(info_get "$cfg" 'j["state"]') == clean ]] || fail "superblocks not clean after umount"
  check_parity "$cfg"

  log "remount read-only, read back"
  local hashes
  hashes=$(sha256sum "${cfg%.toml}"/m*.img)
  start_daemon "$cfg" -o ro
  if dd if=/dev/zero of="$IMG" bs=4k count=1 conv=notrunc status=none 2>/dev/null; then
    fail "writing to $IMG succeeded on a read-only mount"
  fi
  loop=$(losetup_mode "$read_mode" 2>/dev/null)
  [[ $(losetup -n -O RO -l "$loop" | tr -d ' ') == 1 ]] || fail "losetup of the read-only image gave a writable $loop"
  mount -o ro "$loop" "$EXT4"
  (cd "$EXT4/tree" && sha256sum --quiet -c "$WS/tree.sha256") || fail "checksums differ after remounting r5cfs"
  tree_listing "$EXT4/tree" >"$WS/ext4.list"
  diff -u "$WS/tree.list" "$WS/ext4.list" >&2 || fail "the file listing on ext4 differs from the source tree"
  umount "$EXT4"
  e2fsck -fn "$loop" >"$WS/fsck.out" 2>&1 || fail "e2fsck -fn $loop after remount is not clean: $(cat "$WS/fsck.out")"
  losetup -d "$loop"
  stop_daemon
  [[ $(info_get "$cfg" 'j["state"]') == clean ]] || fail "superblocks not clean after the read-only mount"
  [[ $(sha256sum "${cfg%.toml}"/m*.img) == "$hashes" ]] || fail "the read-only mount wrote to the members"
}

make_tree
run_level 5 5 buffered direct
run_level 6 6 direct buffered
run_level 5 5 direct buffered write-back
