#!/bin/bash
# End-to-end: r5cfs replace (r5cfs(8)). RAID5 4+1 in write-back:
#  A. online, under a fio verify workload: fail a member, replace it with a
#     new file; fio's verify passes during and after the rebuild, the config
#     names the new member, the parity is right; then the proof that the new
#     member holds the right data: another member is deleted and the degraded
#     array still reads back everything.
#  B. SIGKILL of the daemon in the middle of a rebuild: the remount resumes it
#     from the recorded position (not from row 0) and it completes.
#  C. offline (not mounted), RAID6 4+2 with two members gone.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse

MiB=$((1 << 20))

set_speed() { sed -i "s|^sync_speed_max = .*|sync_speed_max = $2|" "$1"; }

# wait_rebuilt CFG: until no member is rebuilding (60 s at most).
wait_rebuilt() {
  local i
  for ((i = 0; i < 600; i++)); do
    [[ $(status_get "$1" 's["rebuild"]["state"]') == running ]] || return 0
    sleep 0.1
  done
  fail "the rebuild did not finish in 60 s"
}

# fio_verify SEED: one write+verify pass over [0, 48 MiB) of the image; fio
# checks its own data, and the model takes what it wrote.
fio_verify() {
  fio --name=replace --filename="$IMG" --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite --bs=16k \
    --offset=0 --size=$((48 * MiB)) --verify=crc32c --do_verify=1 --verify_fatal=1 --randseed="$1" \
    --output="$WS/fio.txt" >/dev/null 2>&1 || fail "fio verify failed during the rebuild: $(tail -20 "$WS/fio.txt")"
  dd if="$IMG" of="$model" bs=1M count=48 iflag=direct conv=notrunc status=none
}

JOURNAL_MODE=write-back
cfg=$(write_config rep 5 5)
sed -i 's|^members = |sync_speed_max = "16MiB"\nmembers = |' "$cfg"
create_array "$cfg"
start_daemon "$cfg"
model=$(new_model "$cfg")
# fio writes [0, 48 MiB) (copied into the model after each verified pass).
dd_direct_pattern "$IMG" "$model" $((64 * MiB)) $((96 * MiB))

log "==== A. online replace under fio verify"
"$R5CFS" fail "$cfg" 1 >/dev/null || fail "r5cfs fail 1 failed"
new1=$WS/rep/new1.img
"$R5CFS" replace "$cfg" 1 "$new1" --no-wait >"$WS/out.txt" || fail "replace --no-wait failed: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "array.members[1] is now \"$new1\""
grep -qF "\"$new1\"" "$cfg" || fail "the config does not name the new member: $(grep -A6 members "$cfg")"
[[ $(status_get "$cfg" 's["members"][1]["state"]') == rebuilding ]] || fail "slot 1 is not rebuilding"
passes=0
while [[ $(status_get "$cfg" 's["rebuild"]["state"]') == running ]]; do
  fio_verify $((passes + 1))
  passes=$((passes + 1))
done
[[ $passes -ge 2 ]] || fail "the rebuild ended after $passes fio passes: too fast to overlap the workload"
log "$passes fio write+verify passes during the rebuild"
expect_state=$(status_get "$cfg" '[m["state"] for m in s["members"]]')
[[ $expect_state == "['active', 'active', 'active', 'active', 'active']" ]] || fail "after the rebuild: $expect_state"
[[ $(status_get "$cfg" 's["members"][1]["path"]') == "$new1" ]] || fail "slot 1 is not $new1"
[[ $(status_get "$cfg" 's["array"]["state"]') == active ]] || fail "array not active after the rebuild"
fio_verify 99
verify_image "$IMG" "$model"
"$R5CFS" check "$cfg" >"$WS/out.txt" || fail "check after the rebuild failed: $(cat "$WS/out.txt")"
stop_daemon
check_parity "$cfg"
# The new member's data is needed to read the array without slot 3.
rm -f "$(member_path "$cfg" 3)"
start_daemon "$cfg"
verify_image "$IMG" "$model"
fio --name=readback --filename="$IMG" --direct=1 --ioengine=libaio --iodepth=8 --rw=randwrite --bs=16k \
  --offset=0 --size=$((48 * MiB)) --verify=crc32c --verify_only=1 --randseed=99 --output="$WS/fio.txt" >/dev/null 2>&1 \
  || fail "fio's data does not read back degraded through the new member: $(tail -20 "$WS/fio.txt")"

log "==== B. SIGKILL in the middle of a rebuild"
set_speed "$cfg" '"8MiB"'
stop_daemon
start_daemon "$cfg"
new3=$WS/rep/new3.img
"$R5CFS" replace "$cfg" 3 "$new3" --no-wait >"$WS/out.txt" || fail "replace of slot 3 failed: $(cat "$WS/out.txt")"
sleep 7  # past the first 5 s checkpoint
before=$(status_get "$cfg" 's["rebuild"]["next_row"]')
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
forget_pid "$DAEMON_PID"
DAEMON_PID=""
umount "$MNT" 2>/dev/null || umount -l "$MNT"
at=$(info_get "$cfg" 'j["members"][3]["state"]')
[[ $at == rebuilding ]] || fail "r5cfs info shows slot 3 as '$at' after the kill, expected rebuilding"
set_speed "$cfg" 0
start_daemon "$cfg"
assert_contains "$DAEMON_LOG" "is being rebuilt onto it"
resumed=$(grep -o 'started at row [0-9]*' "$DAEMON_LOG" | tail -1 | awk '{print $4}')
[[ -n $resumed && $resumed -gt 0 && $resumed -le $before ]] \
  || fail "the rebuild resumed at row '${resumed}', expected a recorded position in (0, $before]"
log "killed at row $before, resumed at row $resumed"
wait_rebuilt "$cfg"
[[ $(status_get "$cfg" 's["array"]["state"]') == active ]] || fail "array not active after the resumed rebuild"
verify_image "$IMG" "$model"
"$R5CFS" check "$cfg" >"$WS/out.txt" || fail "check after the resumed rebuild failed: $(cat "$WS/out.txt")"
stop_daemon

log "==== C. offline replace, RAID6 with two members gone"
cfg6=$(write_config rep6 6 6)
sed -i 's|^members = |sync_speed_max = 0\nmembers = |' "$cfg6"
create_array "$cfg6"
start_daemon "$cfg6"
model6=$(new_model "$cfg6")
dd_direct_pattern "$IMG" "$model6" 0 $((64 * MiB))
random_writes "$cfg6" "$IMG" "$model6" $((SEED + 3)) 80
stop_daemon
rm -f "$(member_path "$cfg6" 0)" "$(member_path "$cfg6" 4)"
new0=$WS/rep6/new0.img
"$R5CFS" replace "$cfg6" 0 "$new0" >"$WS/out.txt" 2>&1 || fail "offline replace failed: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "slot 0 rebuilt onto $new0"
run_rc=0
"$R5CFS" replace "$cfg6" 4 "$(member_path "$cfg6" 1)" >"$WS/out.txt" 2>&1 || run_rc=$?
[[ $run_rc == 1 ]] || fail "replacing slot 4 by the member of slot 1 exited $run_rc, expected 1: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "is a member of the array already"
start_daemon "$cfg6"
[[ $(status_get "$cfg6" '[m["state"] for m in s["members"]]') == "['active', 'active', 'active', 'active', 'missing', 'active']" ]] \
  || fail "after the offline replace: $(status_get "$cfg6" '[m["state"] for m in s["members"]]')"
verify_image "$IMG" "$model6"
stop_daemon
