#!/bin/bash
# End-to-end: administration of a mounted array through its control socket
# (r5cfs(8)): status (text and JSON), the socket's exclusivity and
# permissions, journal drain, check and check --repair of parity corrupted
# behind the daemon's back, an interrupted check resuming after a remount,
# fail, a dead daemon's stale socket, the offline forms (check, drain), and
# the refusal to check a degraded array.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse
command -v setpriv >/dev/null || skip "'setpriv' is not installed"

MiB=$((1 << 20))
CHUNK=65536

expect_eq() {  # DESCRIPTION GOT WANT
  [[ "$2" == "$3" ]] || fail "$1: got '$2', expected '$3'"
}

# run_rc VAR CMD...: runs CMD, output to $WS/out.txt, exit status into VAR.
run_rc() {
  local -n rc_var=$1
  shift
  rc_var=0
  "$@" >"$WS/out.txt" 2>&1 || rc_var=$?
}

JOURNAL_MODE=write-back
cfg=$(write_config adm 6 6)
# Unpaced checks, except where the resume test slows them down.
sed -i 's|^members = |sync_speed_max = 0\nmembers = |' "$cfg"
create_array "$cfg"
start_daemon "$cfg"
sock=$WS/adm.sock
model=$(new_model "$cfg")
cap=$(stat -c %s "$IMG")

log "==== status"
[[ -S $sock ]] || fail "no control socket at $sock"
expect_eq "socket mode and owner" "$(stat -c '%a %U' "$sock")" "600 root"
"$R5CFS" status "$cfg" >"$WS/status.txt" || fail "r5cfs status failed"
for text in "Array:      adm" "State:      active" "mode write-back" "$(member_path "$cfg" 5)"; do
  assert_contains "$WS/status.txt" "$text"
done
expect_eq "status version" "$(status_get "$cfg" 's["version"]')" 1
expect_eq "capacity" "$(status_get "$cfg" 's["array"]["capacity"]')" "$cap"
expect_eq "member states" "$(status_get "$cfg" '[m["state"] for m in s["members"]]')" \
  "['active', 'active', 'active', 'active', 'active', 'active']"
expect_eq "member 3 path" "$(status_get "$cfg" 's["members"][3]["path"]')" "$(member_path "$cfg" 3)"
expect_eq "error" "$(status_get "$cfg" 's["error"]')" None

# 2 MiB stay in the journal and the pool (no pressure, younger than max_age).
dd_direct_pattern "$IMG" "$model" 0 $((2 * MiB))
expect_eq "1 MiB writes counted" "$(status_get "$cfg" 's["requests"]["writes"]["larger"]')" 2
expect_eq "dirty stripes after 2 MiB of writes" "$(status_get "$cfg" 's["cache"]["dirty_stripes"]')" 8
[[ $(status_get "$cfg" 's["journal"]["used_blocks"]') -gt 512 ]] || fail "the journal does not hold the 2 MiB written"
dd_direct_pattern "$IMG" "$model" $((2 * MiB)) $((14 * MiB))
# --watch: one JSON object per line, repeated.
timeout 3 "$R5CFS" status "$cfg" --json --watch --interval 1 >"$WS/watch.txt" || true
[[ $(grep -c '"version":1' "$WS/watch.txt") -ge 2 ]] || fail "status --watch printed $(wc -l <"$WS/watch.txt") lines in 3 s"

log "==== one daemon per array, root only"
mkdir -p "$WS/second.mnt"
run_rc rc timeout 30 "$MOUNT_R5CFS" "$cfg" "$WS/second.mnt" -f
[[ $rc == 2 ]] || fail "a second mount of the array exited $rc, expected 2: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "already serving this array"
mountpoint -q "$WS/second.mnt" && fail "the second mount of the array mounted"
[[ -S $sock ]] || fail "the refused second mount removed the first daemon's socket"
chmod 755 "$WS"
chmod 644 "$cfg"
run_rc rc setpriv --reuid=65534 --regid=65534 --clear-groups "$R5CFS" status "$cfg"
[[ $rc == 2 ]] || fail "a non-root r5cfs status exited $rc, expected 2: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "Permission denied"
# Past the file mode, the daemon itself checks the peer's uid.
chmod 666 "$sock"
run_rc rc setpriv --reuid=65534 --regid=65534 --clear-groups "$R5CFS" status "$cfg"
chmod 600 "$sock"
[[ $rc == 2 ]] || fail "a non-root client through a loosened socket exited $rc, expected 2: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "only root may administer"

log "==== journal drain (online)"
"$R5CFS" journal drain "$cfg" >"$WS/out.txt" || fail "r5cfs journal drain failed: $(cat "$WS/out.txt")"
expect_eq "dirty stripes after drain" "$(status_get "$cfg" 's["cache"]["dirty_stripes"]')" 0
[[ $(status_get "$cfg" 's["array_io"]["member_bytes_written"]') -ge $((16 * MiB)) ]] || fail "drain wrote nothing to the members"
verify_image "$IMG" "$model"

log "==== check and check --repair"
"$R5CFS" check "$cfg" >"$WS/out.txt" || fail "check of a clean array failed: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "0 mismatches"
# One corrupt 4 KiB block per chosen row, each on another member, written
# behind the daemon's back (RAID6 locates a single bad block of a row,
# whether data, P or Q, and repairs it).
data_offset=$(info_get "$cfg" 'j["data_offset"]')
rows=(3 40 77 150)
for i in "${!rows[@]}"; do
  dd if=/dev/urandom of="$(member_path "$cfg" "$i")" bs=4096 count=1 oflag=direct,seek_bytes conv=notrunc status=none \
    seek=$((data_offset + rows[i] * CHUNK + 8192))
done
run_rc rc "$R5CFS" check "$cfg"
[[ $rc == 2 ]] || fail "check with corrupt rows exited $rc, expected 2: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "4 mismatches"
assert_contains "$WS/out.txt" "mismatching rows: ${rows[*]}"
expect_eq "status check.mismatch_rows" "$(status_get "$cfg" 's["check"]["mismatch_rows"]')" "[3, 40, 77, 150]"
"$R5CFS" check "$cfg" --repair >"$WS/out.txt" || fail "check --repair failed: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "4 mismatches, 4 repaired"
for i in "${!rows[@]}"; do
  assert_contains "$DAEMON_LOG" "row ${rows[i]} parity mismatch (slot $i holds the bad block), repaired"
done
"$R5CFS" check "$cfg" >"$WS/out.txt" || fail "check after repair failed: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "0 mismatches"
verify_image "$IMG" "$model"

log "==== an interrupted check resumes after a remount"
stop_daemon
sed -i 's|^sync_speed_max = 0|sync_speed_max = "16MiB"|' "$cfg"
start_daemon "$cfg"
"$R5CFS" check "$cfg" --no-wait || fail "check --no-wait failed"
sleep 1.5
timeout 2 "$R5CFS" check "$cfg" >"$WS/out.txt" 2>&1 || true
assert_contains "$WS/out.txt" "following the check that is running already"
stop_daemon
at=$(info_get "$cfg" 'j["check"]["next_row"]')
[[ $at -gt 0 ]] || fail "no check position in the superblocks after an unmount mid-check"
"$R5CFS" info "$cfg" >"$WS/out.txt"
assert_contains "$WS/out.txt" "interrupted at row $at"
start_daemon "$cfg"
assert_contains "$DAEMON_LOG" "resuming the interrupted check at row $at"
"$R5CFS" check "$cfg" --stop >"$WS/out.txt" || fail "check --stop failed"
[[ $(status_get "$cfg" 's["check"]["next_row"]') -gt $at ]] || fail "the resumed check did not go past row $at"
expect_eq "check state" "$(status_get "$cfg" 's["check"]["state"]')" stopped
# --restart starts over; unpaced again, it completes and clears the position.
stop_daemon
sed -i 's|^sync_speed_max = "16MiB"|sync_speed_max = 0|' "$cfg"
start_daemon "$cfg"
"$R5CFS" check "$cfg" --restart >"$WS/out.txt" || fail "check --restart failed: $(cat "$WS/out.txt")"
expect_eq "rows checked by --restart" "$(status_get "$cfg" 's["check"]["rows_checked"]')" \
  "$(status_get "$cfg" 's["check"]["rows"]')"
expect_eq "check position after a complete check" "$(info_get "$cfg" 'j.get("check")')" None
# Offline (not mounted), the tool itself runs the check.
stop_daemon
run_rc rc "$R5CFS" check "$cfg"
[[ $rc == 0 ]] || fail "offline check exited $rc: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "check done"
start_daemon "$cfg"

log "==== fail"
"$R5CFS" fail "$cfg" 2 >"$WS/out.txt" || fail "r5cfs fail slot 2 failed: $(cat "$WS/out.txt")"
"$R5CFS" fail "$cfg" "$(member_path "$cfg" 4)" >"$WS/out.txt" || fail "r5cfs fail by path failed: $(cat "$WS/out.txt")"
expect_eq "states after two fails" "$(status_get "$cfg" '[m["state"] for m in s["members"]]')" \
  "['active', 'active', 'failed', 'active', 'failed', 'active']"
expect_eq "array state" "$(status_get "$cfg" 's["array"]["state"]')" degraded
run_rc rc "$R5CFS" fail "$cfg" 0
[[ $rc == 2 ]] || fail "failing a third RAID6 member exited $rc, expected 2"
assert_contains "$WS/out.txt" "would fail the array"
run_rc rc "$R5CFS" fail "$cfg" 9
[[ $rc == 1 ]] || fail "failing slot 9 of 6 exited $rc, expected 1"
run_rc rc "$R5CFS" fail "$cfg" /nonexistent
[[ $rc == 1 ]] || fail "failing a path that is no member exited $rc, expected 1"
verify_image "$IMG" "$model"
random_writes "$cfg" "$IMG" "$model" $((SEED + 7)) 60
verify_image "$IMG" "$model"

log "==== a dead daemon's socket"
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
forget_pid "$DAEMON_PID"
DAEMON_PID=""
umount "$MNT" 2>/dev/null || umount -l "$MNT"
[[ -S $sock ]] || fail "expected the killed daemon's socket to remain"
run_rc rc "$R5CFS" status "$cfg"
[[ $rc == 3 ]] || fail "status of an unmounted array exited $rc, expected 3: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "is not mounted"
start_daemon "$cfg"
assert_contains "$DAEMON_LOG" "replacing the control socket of a daemon that is gone"
verify_image "$IMG" "$model"
stop_daemon
[[ ! -e $sock ]] || fail "the socket outlived a clean unmount"

log "==== offline: check of a degraded array, journal drain"
run_rc rc "$R5CFS" check "$cfg"
[[ $rc == 2 ]] || fail "offline check of a degraded array exited $rc, expected 2: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "there is no redundancy to check"
"$R5CFS" journal drain "$cfg" >"$WS/out.txt" 2>&1 || fail "offline journal drain failed: $(cat "$WS/out.txt")"
assert_contains "$WS/out.txt" "drained (offline)"
[[ ! -e $sock ]] || fail "an offline command left its socket behind"
start_daemon "$cfg"
verify_image "$IMG" "$model"
stop_daemon
