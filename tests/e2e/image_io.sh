#!/bin/bash
# End-to-end: I/O through the image file of a RAID5 4+1 and a RAID6 4+2.
#
# For each level: create, mount, then
#   - fio randwrite 4k..64k O_DIRECT iodepth 8 over 48M with crc32c verify;
#   - dd oflag=direct of a random pattern; python random writes at odd offsets
#     and sizes (sub-page, cross-chunk, cross-row, multi-row, O_DIRECT), all
#     mirrored into a model file; fsync; the whole image equals the model
#     (read with O_DIRECT and buffered);
#   - losetup buffered and --direct-io=on: read the whole device back against
#     the model, write a pattern through it with O_DIRECT;
#   - fallocate punch-hole / zero-range at odd offsets (zeros), plain
#     allocation (no-op), growing the image (refused); blkdiscard and
#     blkdiscard -z through both loop devices;
#   - umount (daemon exit 0, superblocks clean); the members' P (and Q) are
#     right in every row and the data chunks sit where md's left-symmetric
#     layout puts them (the parity checker is checked to catch a flipped byte);
#   - remount: the image equals the model again and fio's verify-only pass of
#     its region is clean; stop by umount (RAID5) and by SIGTERM (RAID6): exit
#     0, mount gone, superblocks clean.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse

MiB=$((1 << 20))
FIO_OFF=$((160 * MiB)) # fio owns [160MiB, 208MiB); the other writes stay below
FIO_SIZE=$((48 * MiB))

fio_job() {
  # In the workspace, without state files: fio leaves nothing in the cwd.
  (cd "$WS" && fio --name=e2e --filename="$IMG" --offset="$FIO_OFF" --size="$FIO_SIZE" --rw=randwrite \
    --bsrange=4k-64k --direct=1 --ioengine=libaio --iodepth=8 --verify=crc32c --verify_fatal=1 \
    --verify_state_save=0 --randseed="$SEED" --output="$WS/fio.out" "$@") || fail "fio $* failed: $(cat "$WS/fio.out")"
  grep -q 'err= 0' "$WS/fio.out" || fail "fio reported an error: $(cat "$WS/fio.out")"
}

# model_zero OFFSET LENGTH: zeros in the model.
model_zero() {
  dd if=/dev/zero of="$MODEL" bs=64K oflag=seek_bytes,count_bytes iflag=count_bytes seek="$1" count="$2" conv=notrunc \
    status=none
}

# fallocate_check: PUNCH_HOLE and ZERO_RANGE at odd offsets write zeros; a
# plain allocation changes nothing; growing the image fails.
fallocate_check() {
  local off=$((7 * MiB + 1234)) len=$((200 * 1024 + 77))
  fallocate --punch-hole --keep-size -o "$off" -l "$len" "$IMG" || fail "fallocate --punch-hole on $IMG failed"
  model_zero "$off" "$len"
  off=$((11 * MiB - 999)) len=$((3 * 64 * 1024 + 5))
  fallocate --zero-range --keep-size -o "$off" -l "$len" "$IMG" || fail "fallocate --zero-range on $IMG failed"
  model_zero "$off" "$len"
  off=$((13 * MiB + 17)) len=100
  fallocate --punch-hole --keep-size -o "$off" -l "$len" "$IMG" || fail "fallocate --punch-hole (100 bytes) failed"
  model_zero "$off" "$len"
  fallocate -o 0 -l $((MiB)) "$IMG" || fail "fallocate (plain allocation) inside $IMG failed"
  if fallocate -o "$(stat -c %s "$IMG")" -l $((MiB)) "$IMG" 2>/dev/null; then
    fail "fallocate beyond the end of $IMG succeeded; the image cannot grow"
  fi
  [[ $(stat -c %s "$IMG") == $(stat -c %s "$MODEL") ]] || fail "$IMG changed its size"
  verify_image "$IMG" "$MODEL"
}

# loop_check MODE: losetup the image (MODE buffered|direct), read it all back
# against the model, write a pattern through the device, detach, verify.
loop_check() {
  local mode=$1 loop dio
  if [[ $mode == direct ]]; then
    loop=$(losetup -f --show --direct-io=on "$IMG")
  else
    loop=$(losetup -f --show "$IMG")
  fi
  dio=$(losetup -n -O DIO -l "$loop" | tr -d ' ')
  log "losetup $mode: $loop (DIO=$dio)"
  if [[ $mode == direct ]]; then
    [[ $dio == 1 ]] || fail "losetup --direct-io=on $IMG: the loop device fell back to buffered I/O (DIO=$dio)"
  fi
  r5tool verify --img "$loop" --model "$MODEL" || fail "reading $loop ($mode) differs from the model"
  local off=$((40 * MiB + 20 * 4096))
  [[ $mode == direct ]] && off=$((off + 30 * MiB))
  dd_direct_pattern "$loop" "$MODEL" "$off" $((3 * MiB + 5 * 4096))
  # Discard (PUNCH_HOLE on the image) and write-zeroes read back as zeros.
  blkdiscard -o $((off + 64 * 1024)) -l $((256 * 1024)) "$loop" || fail "blkdiscard on $loop ($mode) failed"
  model_zero $((off + 64 * 1024)) $((256 * 1024))
  blkdiscard -z -o $((off + 1024 * 1024)) -l $((132 * 1024)) "$loop" || fail "blkdiscard -z on $loop ($mode) failed"
  model_zero $((off + 1024 * 1024)) $((132 * 1024))
  r5tool verify --img "$loop" --model "$MODEL" --direct || fail "$loop ($mode) after its own writes differs from the model"
  losetup -d "$loop"
  verify_image "$IMG" "$MODEL"
}

run_level() {
  local level=$1 n=$2 cfg cap size
  log "==== RAID$level, $n members"
  cfg=$(write_config "r$level" "$level" "$n")
  create_array "$cfg"
  start_daemon "$cfg"
  MODEL=$(new_model "$cfg")
  cap=$(info_get "$cfg" 'j["capacity"]')
  size=$(stat -c %s "$IMG")
  [[ $size == "$cap" ]] || fail "$IMG is $size bytes, capacity is $cap"

  log "fio randwrite + crc32c verify, 48M at $FIO_OFF"
  fio_job
  dd if="$IMG" of="$MODEL" bs=1M iflag=direct,skip_bytes oflag=seek_bytes skip="$FIO_OFF" seek="$FIO_OFF" \
    count=$((FIO_SIZE / MiB)) conv=notrunc status=none

  log "dd oflag=direct pattern, random writes"
  dd_direct_pattern "$IMG" "$MODEL" $((3 * MiB + 7 * 4096)) $((5 * MiB + 3 * 4096))
  random_writes "$cfg" "$IMG" "$MODEL" $((SEED * 10 + level)) 600 "$FIO_OFF"
  verify_image "$IMG" "$MODEL"
  fallocate_check

  loop_check buffered
  loop_check direct

  stop_daemon
  [[ $(info_get "$cfg" 'j["state"]') == clean ]] || fail "superblocks not clean after umount"
  check_parity "$cfg" "$MODEL"
  parity_selftest "$cfg"

  log "remount"
  start_daemon "$cfg"
  verify_image "$IMG" "$MODEL"
  fio_job --verify_only
  if [[ $level == 6 ]]; then stop_daemon --sigterm; else stop_daemon; fi
  [[ $(info_get "$cfg" 'j["state"]') == clean ]] || fail "superblocks not clean after the daemon stopped"
}

# The parity checker must notice a flipped byte in a parity chunk: row 0 has
# P on the last member and (RAID6) Q on member 0.
parity_selftest() {
  local cfg=$1 level pos doff
  level=$(info_get "$cfg" 'j["level"]')
  doff=$(info_get "$cfg" 'j["data_offset"]')
  if [[ $level == 5 ]]; then pos=$(($(info_get "$cfg" 'j["member_count"]') - 1)); else pos=0; fi
  local m
  m=$(info_get "$cfg" "[x['path'] for x in j['members'] if x['slot'] == $pos][0]")
  flip_byte "$m" $((doff + 1234))
  if r5tool parity --info "$WS/info.json" --rows 4 2>"$WS/selftest.err"; then
    fail "the parity checker missed a flipped byte in $m"
  fi
  assert_contains "$WS/selftest.err" "$([[ $level == 5 ]] && echo "P wrong" || echo "Q wrong")"
  flip_byte "$m" $((doff + 1234))
  r5tool parity --info "$WS/info.json" --rows 4 || fail "parity wrong after restoring the flipped byte"
}

flip_byte() {
  "$PY" -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDWR); off = int(sys.argv[2])
b = os.pread(fd, 1, off); os.pwrite(fd, bytes([b[0] ^ 0x5a]), off); os.close(fd)' "$1" "$2"
}

run_level 5 5
run_level 6 6
