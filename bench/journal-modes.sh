#!/bin/bash
# Journal modes side by side (issue 3's performance targets), in one run so the
# ratios are comparable: RAID5 4+1, chunk 64 KiB, members and a 1 GiB journal
# as files in bench/scratch, fio through the mounted image (O_DIRECT, libaio):
#   W1 the RFC's workload: 4 streams, each writing its own region sequentially
#      in 4-16 KiB writes (bssplit 4k/8k/16k), fsync every 28 writes (~256 KiB)
#   W2 4 KiB random writes, QD 16, no fsync
#   W3 1 MiB sequential writes, QD 4
# then W8: mount time of a journal left two-thirds full by kill -9, as a ratio
# of the journal file's sequential read rate.
# Writes bench/results/<date>-<host>-journal.md. Run as root after scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=bench/scratch
RUNTIME=${RUNTIME:-15}
OUT=bench/results/$(date +%Y-%m-%d)-$(hostname -s)-journal.md
mkdir -p "$SCRATCH" bench/results
trap 'umount "$SCRATCH"/mnt 2>/dev/null || true' EXIT

fio_json() {  # file, fio args... -> "MiB/s IOPS" of the write side
  local file=$1
  shift
  fio --filename="$file" --direct=1 --ioengine=libaio --runtime="$RUNTIME" --time_based --group_reporting \
    --output-format=json "$@" 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["write"]; print("%.0f %.0f" % (j["bw_bytes"]/2**20, j["iops"]))'
}

config() {  # mode memory max_age
  rm -rf "$SCRATCH/a" && mkdir -p "$SCRATCH/a" "$SCRATCH/mnt"
  cat > "$SCRATCH/bench.toml" <<EOT
[array]
name = "bench"
level = 5
chunk_size = "64KiB"
member_size = "2GiB"
members = ["a/m0.img", "a/m1.img", "a/m2.img", "a/m3.img", "a/m4.img"]
[journal]
path = "a/journal.img"
size = "1GiB"
mode = "$1"
[cache]
memory = "$2"
max_age = "$3"
EOT
  build/r5cfs create "$SCRATCH/bench.toml" >/dev/null
}

declare -A W1 W2 W3
MODES=${MODES:-none write-back write-through}  # MODES=write-back W8=0 for a quick look
for mode in $MODES; do
  # Each workload on a freshly created array: none inherits another's dirty stripes.
  for w in W1 W2 W3; do
    config "$mode" 256MiB 10s
    build/mount.r5cfs "$SCRATCH/bench.toml" "$SCRATCH/mnt"
    img=$SCRATCH/mnt/array.img
    case $w in
      W1) W1[$mode]=$(fio_json "$img" --name=w1 --numjobs=4 --rw=write --bssplit=4k/33:8k/33:16k/34 --fsync=28 \
            --size=512M --offset_increment=1G --iodepth=1) ;;
      W2) W2[$mode]=$(fio_json "$img" --name=w2 --rw=randwrite --bs=4k --iodepth=16 --size=4G) ;;
      W3) W3[$mode]=$(fio_json "$img" --name=w3 --rw=write --bs=1M --iodepth=4 --size=4G) ;;
    esac
    umount "$SCRATCH/mnt"
    sleep 1
  done
done

if [[ ${W8:-1} == 0 ]]; then
  for mode in $MODES; do echo "$mode: W1 ${W1[$mode]} W2 ${W2[$mode]} W3 ${W3[$mode]} (MiB/s IOPS)"; done
  rm -rf "$SCRATCH"
  exit 0
fi

# W8: fill the journal (no flushing by age, memory for it all), kill -9, time the mount.
config write-back 1GiB 24h
build/mount.r5cfs "$SCRATCH/bench.toml" "$SCRATCH/mnt" -o foreground >"$SCRATCH/fill.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -e $SCRATCH/mnt/array.img ]] && break; sleep 0.1; done
fio --name=fill --filename="$SCRATCH/mnt/array.img" --direct=1 --ioengine=libaio --rw=write --bs=1M --iodepth=4 \
  --size=640M --output=/dev/null
kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
umount "$SCRATCH/mnt" 2>/dev/null || umount -l "$SCRATCH/mnt"
sync; echo 3 > /proc/sys/vm/drop_caches
start=$(date +%s.%N)
build/mount.r5cfs "$SCRATCH/bench.toml" "$SCRATCH/mnt" -o foreground >"$SCRATCH/replay.log" 2>&1 &
pid=$!
for _ in $(seq 3000); do [[ -e $SCRATCH/mnt/array.img ]] && break; sleep 0.01; done
mount_s=$(echo "$(date +%s.%N) - $start" | bc)
replay_line=$(grep -o 'journal replay: .*' "$SCRATCH/replay.log" || echo "no replay line")
replay_mib=$(echo "$replay_line" | sed -n 's/.*(\([0-9]*\) MiB read).*/\1/p')
replay_s=$(echo "$replay_line" | sed -n 's/.* in \([0-9.]*\) s .*/\1/p')
umount "$SCRATCH/mnt"; wait "$pid" || true
sync; echo 3 > /proc/sys/vm/drop_caches
read_mibs=$(dd if="$SCRATCH/a/journal.img" of=/dev/null bs=4M iflag=direct 2>&1 | sed -n 's/.*, \([0-9.]*\) \([GM]\)B\/s/\1 \2/p' |
  awk '{print ($2=="G") ? $1*1000/1.048576 : $1/1.048576}')
rm -rf "$SCRATCH"

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
{
  echo "# r5cfs journal modes, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s), $(nproc) cores"
  echo
  echo "RAID5 4+1, chunk 64 KiB, members and a 1 GiB journal as files on $(df --output=fstype . | tail -1)"
  echo "(journal and members share one device here). fio through FUSE, O_DIRECT, ${RUNTIME}s per job."
  echo
  echo "| workload | none | write-back | write-through | write-back ÷ none | target |"
  echo "|---|---|---|---|---|---|"
  echo "| W1 RFC: 4 streams, 4-16 KiB seq, fsync/256 KiB (MiB/s) | ${W1[none]% *} | ${W1[write-back]% *} | ${W1[write-through]% *} | $(ratio "${W1[write-back]% *}" "${W1[none]% *}") | ≥ 3 |"
  echo "| W2 4 KiB rand write QD16 (IOPS) | ${W2[none]#* } | ${W2[write-back]#* } | ${W2[write-through]#* } | $(ratio "${W2[write-back]#* }" "${W2[none]#* }") | ≥ 2 |"
  echo "| W3 1 MiB seq write QD4 (MiB/s) | ${W3[none]% *} | ${W3[write-back]% *} | ${W3[write-through]% *} | $(ratio "${W3[write-back]% *}" "${W3[none]% *}") | ≥ 0.5 |"
  echo
  echo "W8 replay after kill -9 with 640 MiB of dirty data in the journal: $replay_line"
  echo "(mount to image visible: ${mount_s}s). Journal file sequential read (dd, 4 MiB, O_DIRECT): ${read_mibs} MiB/s."
  echo "Replay rate ÷ sequential read rate: $(ratio "$replay_mib / $replay_s" "$read_mibs") (target ≥ 0.5)."
} | tee "$OUT"
