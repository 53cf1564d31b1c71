#!/bin/bash
# The journal modes through the real mount (DESIGN §2, §4-5):
#  - fio with crc32c verification in write-back and write-through, RAID5 and
#    RAID6, verified again after umount and remount;
#  - umount keeps dirty data in the journal (replayed at the next mount);
#    -o drain leaves it empty and clean;
#  - leaving write-back for mode none drains the journal at mount;
#  - kill -9 during writes: every write fsynced before the kill reads back
#    after the remount's replay, and parity is consistent afterwards.
source "$(dirname "$0")/lib.sh"
require_root_fuse

journal_get() { "$R5CFS" journal inspect "$1" --json | "$PY" -c "import json,sys; j=json.load(sys.stdin); print($2)"; }

fio_verify() {  # IMG NAME [extra fio args]: random writes with crc32c, read back and checked
  local img=$1 name=$2
  shift 2
  fio --name="$name" --filename="$img" --direct=1 --ioengine=libaio --rw=randwrite --bsrange=4k-128k --iodepth=8 \
    --size=48MiB --verify=crc32c --verify_fatal=1 --randseed="$SEED" "$@" --output="$WS/$name.fio" >/dev/null 2>&1 \
    || fail "fio $name: $(tail -5 "$WS/$name.fio")"
}

for mode in write-back write-through; do
  for level in 5 6; do
    n=$((level == 5 ? 5 : 6))
    cfg=$(JOURNAL_MODE=$mode write_config "fio-$mode-$level" "$level" "$n" 32MiB)
    create_array "$cfg"
    start_daemon "$cfg"
    fio_verify "$IMG" "write-$mode-$level"
    stop_daemon
    start_daemon "$cfg"
    fio_verify "$IMG" "reverify-$mode-$level" --verify_only
    stop_daemon
    check_parity "$cfg"
    log "$mode RAID$level: fio verify before and after remount ok"
  done
done

# Write-back keeps dirty stripes in the journal across umount; the next
# mount replays them; leaving for mode none drains it.
cfg=$(JOURNAL_MODE=write-back write_config keep 5 5 32MiB)
create_array "$cfg"
start_daemon "$cfg"
model=$(new_model "$cfg")
random_writes "$cfg" "$IMG" "$model" "$SEED" 100
stop_daemon
[[ $(journal_get "$cfg" 'len(j["records"])') -gt 0 ]] || fail "umount emptied the journal (expected it kept)"
[[ $(journal_get "$cfg" 'j["clean"]') == False ]] || fail "journal marked clean while it holds dirty stripes"
start_daemon "$cfg"
assert_contains "$DAEMON_LOG" "journal replay:"
r5tool verify --img "$IMG" --model "$model" || fail "data kept in the journal did not read back"
random_writes "$cfg" "$IMG" "$model" $((SEED + 1)) 50
stop_daemon
sed -i 's/^mode = "write-back"/mode = "none"/' "$cfg"
start_daemon "$cfg"
r5tool verify --img "$IMG" --model "$model" || fail "data lost when switching write-back -> none"
stop_daemon
[[ $(journal_get "$cfg" 'j["clean"]') == True ]] || fail "mode none left the journal dirty"
[[ $(journal_get "$cfg" 'len(j["records"])') == 0 ]] || fail "mode none left records in the journal"
check_parity "$cfg"
sed -i 's/^mode = "none"/mode = "write-back"/' "$cfg"
start_daemon "$cfg" -o drain
random_writes "$cfg" "$IMG" "$model" $((SEED + 2)) 50
stop_daemon
[[ $(journal_get "$cfg" 'j["clean"]') == True ]] || fail "-o drain left the journal dirty"
check_parity "$cfg"
log "journal kept across umount, replayed, drained by mode none and by -o drain"

# kill -9 in the middle of writes.
for level in 5 6; do
  n=$((level == 5 ? 5 : 6))
  cfg=$(JOURNAL_MODE=write-back write_config "kill$level" "$level" "$n" 32MiB)
  create_array "$cfg"
  start_daemon "$cfg"
  model=$(new_model "$cfg")
  synced=$WS/synced.kill$level
  kill_during_writes "$cfg" "$model" "$synced"
  start_daemon "$cfg"
  assert_contains "$DAEMON_LOG" "journal replay:"
  assert_not_contains "$DAEMON_LOG" "resynchronised"
  r5tool verify --img "$IMG" --model "$synced" --direct --allow-larger || fail "fsynced writes lost after kill -9"
  stop_daemon
  check_parity "$cfg"
  log "RAID$level write-back: kill -9, replay, fsynced data and parity ok"
done

# A 4 MiB journal under random writes: writers wait for the flusher to free
# log space, never deadlock. TINY_RUNTIME=60 for the long form.
cfg=$(JOURNAL_MODE=write-back JOURNAL_SIZE=4MiB write_config tiny 5 5 32MiB)
create_array "$cfg"
start_daemon "$cfg"
runtime=${TINY_RUNTIME:-12}
timeout $((runtime + 60)) fio --name=tiny --filename="$IMG" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k \
  --iodepth=16 --time_based --runtime="$runtime" --output="$WS/tiny.fio" >/dev/null 2>&1 \
  || fail "fio on a 4 MiB journal failed or hung: $(tail -3 "$WS/tiny.fio")"
stop_daemon
# The log went round many times: 4 MiB of journal carried at least 40 MiB.
logged=$(grep -o '[0-9]* MiB logged' "$DAEMON_LOG" | tail -1 | cut -d' ' -f1)
[[ ${logged:-0} -ge 40 ]] || fail "the 4 MiB journal carried only ${logged:-0} MiB: $(grep 'journal closed' "$DAEMON_LOG")"
check_parity "$cfg"
log "4 MiB journal, ${runtime}s of random writes: $(grep -o '[0-9]* writes in [0-9]* commits.*' "$DAEMON_LOG" | tail -1)"
