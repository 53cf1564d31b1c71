#!/bin/bash
# Mode none after a crash: SIGKILL the daemon in the middle of random writes,
# damage the parity of one row behind its back, remount. The mount must
# notice the unclean shutdown, resync parity in the background (repairing
# that row) while serving I/O, leave the superblocks clean only once the
# resync is done, and every write fsynced before the crash must read back.
source "$(dirname "$0")/lib.sh"
require_root_fuse

for level in 5 6; do
  n=$((level == 5 ? 5 : 6))
  cfg=$(write_config "crash$level" "$level" "$n" 48MiB)
  create_array "$cfg"
  start_daemon "$cfg"
  model=$(new_model "$cfg")
  synced=$WS/synced.crash$level
  kill_during_writes "$cfg" "$model" "$synced"
  [[ $(info_get "$cfg" 'j["state"]') == dirty ]] || fail "superblocks not dirty after the crash"

  # Stale parity for row 0: its P chunk sits on member n-1 (left-symmetric).
  data_offset=$(info_get "$cfg" 'j["data_offset"]')
  head -c 65536 /dev/urandom | dd of="$(member_path "$cfg" $((n - 1)))" bs=64k seek=$((data_offset / 65536)) \
    conv=notrunc status=none

  start_daemon "$cfg"
  assert_contains "$DAEMON_LOG" "was not shut down cleanly: parity will be resynchronised in the background"
  # Served correctly while the resync runs.
  r5tool verify --img "$IMG" --model "$synced" --direct --allow-larger || fail "fsynced writes lost after the crash"
  for ((i = 0; i < 600; i++)); do
    grep -q "resync of 'crash$level' complete" "$DAEMON_LOG" && break
    sleep 0.1
  done
  assert_contains "$DAEMON_LOG" "resync of 'crash$level' complete"
  grep -Eq "complete: [0-9]+ rows checked, [1-9][0-9]* repaired" "$DAEMON_LOG" \
    || fail "the resync repaired nothing: $(grep resync "$DAEMON_LOG")"
  r5tool verify --img "$IMG" --model "$synced" --allow-larger || fail "fsynced writes differ after the resync"
  stop_daemon
  [[ $(info_get "$cfg" 'j["state"]') == clean ]] || fail "superblocks not clean after the resync and umount"
  check_parity "$cfg"
  log "RAID$level: crash, resync and fsynced data ok"
done
