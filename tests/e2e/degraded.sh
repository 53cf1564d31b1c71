#!/bin/bash
# End-to-end: degraded operation after member files are deleted.
#
# Cases: RAID5 4+1 without slot 2; RAID6 4+2 without slots 1 and 4; RAID6 4+2
# without slot 3. For each: create, mount, write a pattern (dd O_DIRECT,
# random writes at odd offsets and sizes, all mirrored in a model file),
# verify, umount, check P/Q on the members, delete the member file(s), remount:
# the log says degraded, `r5cfs info` shows the slot(s) missing and the array
# degraded, every byte of the image equals the model (O_DIRECT and buffered);
# write more while degraded (fio randwrite iodepth 8 with crc32c verify, dd
# O_DIRECT, random writes; model updated), verify; umount (exit 0, clean,
# still degraded); with one member gone the parity checker rebuilds its chunks
# from P, checks the remaining parity and compares with the model (with two
# gone it is skipped); remount (degraded again), verify everything again.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse

MiB=$((1 << 20))

# check_degraded CFG SLOTS...: info and the last daemon log show exactly these
# slots as unavailable.
check_degraded() {
  local cfg=$1 want
  shift
  want="[$(
    IFS=,
    echo "$*"
  )]"
  want=${want//,/, }
  [[ $(info_get "$cfg" 'j["degraded"]') == True ]] || fail "r5cfs info: array not degraded with slots $want deleted"
  [[ $(info_get "$cfg" 'sorted(j["failed_slots"])') == "$want" ]] \
    || fail "r5cfs info: failed_slots $(info_get "$cfg" 'j["failed_slots"]'), expected $want"
  local s state
  for s in "$@"; do
    state=$(info_get "$cfg" "j['members'][$s]['state']")
    [[ $state == missing || $state == failed ]] || fail "r5cfs info: member $s is '$state', expected missing or failed"
  done
  "$R5CFS" info "$cfg" >"$WS/info.txt" || fail "r5cfs info $cfg failed"
  assert_contains "$WS/info.txt" DEGRADED
  assert_contains "$WS/info.txt" "missing"
  assert_contains "$DAEMON_LOG" "degraded"
  for s in "$@"; do assert_contains "$DAEMON_LOG" "$(member_path "$cfg" "$s")"; done
}

run_case() {
  local name=$1 level=$2 n=$3 cfg model s
  shift 3
  local gone=("$@")
  log "==== RAID$level, $n members, deleting slot(s) ${gone[*]}"
  cfg=$(write_config "$name" "$level" "$n")
  create_array "$cfg"
  start_daemon "$cfg"
  model=$(new_model "$cfg")
  dd_direct_pattern "$IMG" "$model" $((MiB + 3 * 4096)) $((24 * MiB + 5 * 4096))
  random_writes "$cfg" "$IMG" "$model" $((SEED * 100 + level * 10 + ${#gone[@]})) 240
  verify_image "$IMG" "$model"
  stop_daemon
  check_parity "$cfg" "$model"

  for s in "${gone[@]}"; do rm -f "$(member_path "$cfg" "$s")"; done
  log "deleted member(s) ${gone[*]}; remount degraded"
  start_daemon "$cfg"
  check_degraded "$cfg" "${gone[@]}"
  verify_image "$IMG" "$model"

  log "write while degraded"
  (cd "$WS" && fio --name=degraded --filename="$IMG" --offset=$((200 * MiB)) --size=$((16 * MiB)) --rw=randwrite \
    --bsrange=4k-64k --direct=1 --ioengine=libaio --iodepth=8 --verify=crc32c --verify_fatal=1 \
    --verify_state_save=0 --randseed="$SEED" --output="$WS/fio.out") || fail "fio while degraded failed: $(cat "$WS/fio.out")"
  dd if="$IMG" of="$model" bs=1M iflag=direct,skip_bytes oflag=seek_bytes skip=$((200 * MiB)) seek=$((200 * MiB)) \
    count=16 conv=notrunc status=none
  dd_direct_pattern "$IMG" "$model" $((100 * MiB + 9 * 4096)) $((9 * MiB + 4096))
  random_writes "$cfg" "$IMG" "$model" $((SEED * 100 + level * 10 + ${#gone[@]} + 5)) 240
  verify_image "$IMG" "$model"
  stop_daemon
  [[ $(info_get "$cfg" 'j["state"]') == clean ]] || fail "superblocks not clean after a degraded umount"
  # With one member gone, the others still define every byte: rebuild the
  # lost chunks from P, check the parity that remains, compare with the model.
  if [[ ${#gone[@]} == 1 ]]; then check_parity "$cfg" "$model"; fi
  for s in "${gone[@]}"; do
    [[ ! -e $(member_path "$cfg" "$s") ]] || fail "the deleted member $(member_path "$cfg" "$s") reappeared"
  done

  log "remount degraded again"
  start_daemon "$cfg"
  check_degraded "$cfg" "${gone[@]}"
  verify_image "$IMG" "$model"
  stop_daemon
  rm -f "$model"
}

run_case r5 5 5 2
run_case r6two 6 6 1 4
run_case r6one 6 6 3
