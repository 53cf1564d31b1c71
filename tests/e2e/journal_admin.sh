#!/bin/bash
# End-to-end: journal administration on a mounted array (r5cfs(8)).
#  A. journal mode, live: write-back -> write-through -> none -> write-back,
#     writing between the changes; the config follows; data verifies.
#  B. journal remove (live, drains) and journal add (live, a new journal),
#     each surviving a remount; the config follows.
#  C. losing the journal device: the journal is a loop device over a sparse
#     file on a 4 MiB tmpfs, so its writes fail once that is full. Writes
#     then fail with EIO, reads still return everything acknowledged, status
#     names the error; journal remove --force writes the cached data to the
#     members, the array takes writes again in mode none, parity is resynced,
#     and everything acknowledged reads back, also after a remount.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse

MiB=$((1 << 20))

# write_piece OFFSET_MIB LENGTH_MIB: dd O_DIRECT + fsync into the image and the model.
write_piece() { dd_direct_pattern "$IMG" "$model" $(($1 * MiB)) $(($2 * MiB)); }

JOURNAL_MODE=write-back
cfg=$(write_config ja 5 5)
create_array "$cfg"
start_daemon "$cfg"
model=$(new_model "$cfg")

log "==== A. journal mode, live"
write_piece 0 8
for mode in write-through none write-back; do
  "$R5CFS" journal mode "$cfg" "$mode" >"$WS/out.txt" 2>&1 || fail "journal mode $mode failed: $(cat "$WS/out.txt")"
  [[ $(status_get "$cfg" 's["journal"]["mode"]') == "$mode" ]] || fail "status does not show mode $mode"
  grep -q "^mode = \"$mode\"" "$cfg" || fail "the config does not say mode $mode: $(grep -n mode "$cfg")"
  random_writes "$cfg" "$IMG" "$model" $((SEED + ${#mode})) 60
  write_piece $((8 + ${#mode} * 4)) 4
  verify_image "$IMG" "$model"
done
[[ $(status_get "$cfg" 's["cache"]') != None ]] || fail "no journaled cache after switching back to write-back"
stop_daemon
start_daemon "$cfg"
verify_image "$IMG" "$model"

log "==== B. journal remove and journal add, live"
"$R5CFS" journal remove "$cfg" >"$WS/out.txt" 2>&1 || fail "journal remove failed: $(cat "$WS/out.txt")"
[[ $(status_get "$cfg" 's["journal"]["mode"]') == none ]] || fail "mode is not none after journal remove"
grep -q '^# path = ' "$cfg" || fail "journal.path is still active in the config: $(grep -n path "$cfg")"
random_writes "$cfg" "$IMG" "$model" $((SEED + 20)) 60
stop_daemon
start_daemon "$cfg"
verify_image "$IMG" "$model"
journal2=$WS/ja/journal2.img
"$R5CFS" journal add "$cfg" "$journal2" 16MiB >"$WS/out.txt" 2>&1 || fail "journal add failed: $(cat "$WS/out.txt")"
[[ $(status_get "$cfg" 's["journal"]["mode"]') == write-back ]] || fail "mode is not write-back after journal add"
[[ $(status_get "$cfg" 's["journal"]["path"]') == "$journal2" ]] || fail "status does not show the new journal"
grep -q "^path = \"$journal2\"" "$cfg" || fail "the config does not name the new journal: $(grep -n path "$cfg")"
write_piece 40 6
random_writes "$cfg" "$IMG" "$model" $((SEED + 21)) 60
[[ $(status_get "$cfg" 's["journal"]["records"]') -gt 0 ]] || fail "nothing went through the new journal"
# A journal is refused while one is attached.
"$R5CFS" journal add "$cfg" "$WS/ja/journal3.img" 16MiB >"$WS/out.txt" 2>&1 && fail "a second journal add succeeded"
assert_contains "$WS/out.txt" "has a journal already"
stop_daemon
start_daemon "$cfg"
verify_image "$IMG" "$model"
stop_daemon

log "==== C. losing the journal device"
mkdir -p "$WS/tfs"
mount -t tmpfs -o size=4m tmpfs "$WS/tfs"
truncate -s 64M "$WS/tfs/journal.img"
loopdev=$(losetup -f --show "$WS/tfs/journal.img")
cfg=$(write_config jl 5 5)
sed -i "s|^path = \"jl/journal.img\"|path = \"$loopdev\"|" "$cfg"
create_array "$cfg"
start_daemon "$cfg"
model=$(new_model "$cfg")
failed_at=""
for ((i = 0; i < 16; i++)); do
  head -c $MiB /dev/urandom >"$WS/piece.bin"
  if dd if="$WS/piece.bin" of="$IMG" bs=1M seek=$i oflag=direct conv=notrunc,fsync status=none 2>"$WS/dd.txt"; then
    dd if="$WS/piece.bin" of="$model" bs=1M seek=$i conv=notrunc status=none
  else
    failed_at=$i
    break
  fi
done
[[ -n $failed_at ]] || fail "the journal on a full tmpfs never failed"
assert_contains "$WS/dd.txt" "Input/output error"
log "the journal failed at MiB $failed_at"
# The failed piece may be partly in the image: the model takes the image's
# bytes there (neither fsynced nor acknowledged), all else must match.
dd if="$IMG" of="$model" bs=1M skip="$failed_at" seek="$failed_at" count=1 iflag=direct conv=notrunc status=none
verify_image "$IMG" "$model"
[[ $(status_get "$cfg" 's["array"]["read_only"]') == True ]] || fail "status does not say read-only after the journal failed"
[[ $(status_get "$cfg" 's["error"]') == *"space"* || $(status_get "$cfg" 's["error"]') == *"error"* ]] \
  || fail "status does not name the journal error: $(status_get "$cfg" 's["error"]')"
dd if=/dev/zero of="$IMG" bs=4k count=1 oflag=direct conv=notrunc,fsync status=none 2>/dev/null \
  && fail "a write succeeded on a failed journal"
"$R5CFS" journal remove "$cfg" >"$WS/out.txt" 2>&1 && fail "journal remove without --force succeeded on a failed journal"
"$R5CFS" journal remove "$cfg" --force >"$WS/out.txt" 2>&1 || fail "journal remove --force failed: $(cat "$WS/out.txt")"
[[ $(status_get "$cfg" 's["journal"]["mode"]') == none ]] || fail "mode is not none after journal remove --force"
[[ $(status_get "$cfg" 's["error"]') == None ]] || fail "status still shows an error: $(status_get "$cfg" 's["error"]')"
assert_contains "$DAEMON_LOG" "dirty stripes written to the members"
verify_image "$IMG" "$model"
write_piece 20 4
random_writes "$cfg" "$IMG" "$model" $((SEED + 30)) 60
verify_image "$IMG" "$model"
for ((i = 0; i < 100; i++)); do
  [[ $(status_get "$cfg" 's["resync"]["pending"]') == False ]] && break
  sleep 0.2
done
[[ $(status_get "$cfg" 's["resync"]["pending"]') == False ]] || fail "the parity resync did not finish in 20 s"
stop_daemon
losetup -d "$loopdev"
umount "$WS/tfs"
check_parity "$cfg" "$model"
start_daemon "$cfg"
verify_image "$IMG" "$model"
stop_daemon
