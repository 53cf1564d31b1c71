#!/bin/bash
# kill -9 loop (issue 4, item 8): on the mounted image, a writer makes random
# O_DIRECT writes with an fdatasync every few writes while fio adds unsynced
# load elsewhere; the daemon is killed with SIGKILL at a random moment, the
# array is mounted again (journal replay) and every block must hold the last
# write an fdatasync covered or a later one, never an older write or garbage
# (tests/e2e/kill_writer.py). Write-back and write-through take turns, on
# RAID5 and RAID6. KILL_CYCLES cycles per level (default 4, so 8 in CI); the
# long form is KILL_CYCLES=50 (100 cycles).
source "$(dirname "$0")/lib.sh"
require_root_fuse

cycles=${KILL_CYCLES:-4}
writer() { "$PY" "$SRCDIR/tests/e2e/kill_writer.py" "$@"; }

for level in 5 6; do
  n=$((level == 5 ? 5 : 6))
  cfg=$(JOURNAL_MODE=write-back write_config "loop$level" "$level" "$n" 32MiB)
  create_array "$cfg"
  cap=$(info_get "$cfg" 'j["capacity"]')
  tracked=$((cap * 3 / 4 / 4096))  # the writer's blocks; fio writes behind them
  state=$WS/state.$level.json
  for ((c = 1; c <= cycles; c++)); do
    mode=$([[ $((c % 2)) == 1 ]] && echo write-back || echo write-through)
    sed -i "s/^mode = .*/mode = \"$mode\"/" "$cfg"
    start_daemon "$cfg"
    cyclelog=$WS/cycle.$level.$c.json
    writer write --img "$IMG" --blocks "$tracked" --state "$state" --log "$cyclelog" --seed $((SEED * 1000 + c)) \
      >"$WS/writer.$level.$c.out" 2>&1 &
    writer_pid=$!
    fio --name=load --filename="$IMG" --direct=1 --ioengine=libaio --rw=randwrite --bsrange=4k-64k --iodepth=8 \
      --offset=$((tracked * 4096)) --size=$((cap - tracked * 4096)) --time_based --runtime=60 \
      --output=/dev/null >/dev/null 2>&1 &
    fio_pid=$!
    delay=$(( (RANDOM % 2500) + 500 ))  # 0.5 to 3 s
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    log "cycle $c ($mode): kill -KILL $DAEMON_PID after ${delay} ms"
    kill -KILL "$DAEMON_PID"
    wait "$writer_pid" || fail "the writer failed: $(cat "$WS/writer.$level.$c.out")"
    wait "$fio_pid" || true
    wait "$DAEMON_PID" 2>/dev/null || true
    forget_pid "$DAEMON_PID"
    DAEMON_PID=""
    umount "$MNT" 2>/dev/null || umount -l "$MNT"
    start_daemon "$cfg"
    [[ $mode == write-back ]] && assert_contains "$DAEMON_LOG" "journal replay:"
    out=$(writer check --img "$IMG" --blocks "$tracked" --state "$state" --log "$cyclelog" 2>&1) \
      || fail "RAID$level cycle $c ($mode): $out
writer: $(cat "$WS/writer.$level.$c.out")"
    log "RAID$level cycle $c ($mode): $(cat "$WS/writer.$level.$c.out" | cut -d';' -f1); $out"
    stop_daemon
  done
  check_parity "$cfg"
  log "RAID$level: $cycles kill -9 cycles, every fdatasynced write survived, parity consistent"
done
