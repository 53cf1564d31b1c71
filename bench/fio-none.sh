#!/bin/bash
# Throughput through the mounted image in journal mode none: RAID5 4+1 and
# RAID6 4+2 over files in bench/scratch, fio 1 MiB sequential write and read
# and 4 KiB random write (O_DIRECT, QD 16), plus fio directly on one member
# file as the device reference, in one run. Writes a markdown table to
# bench/results/<date>-<host>-none.md. Run as root after scripts/build.sh.
# (The full side-by-side benchmark with the FUSE ceiling is bench/run, later.)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=bench/scratch
RUNTIME=${RUNTIME:-20}
OUT=bench/results/$(date +%Y-%m-%d)-$(hostname -s)-none.md
mkdir -p "$SCRATCH" bench/results

job() {  # name file rw bs iodepth -> "MiB/s IOPS"
  fio --name="$1" --filename="$2" --direct=1 --ioengine=libaio --rw="$3" --bs="$4" --iodepth="$5" \
    --size=768M --runtime="$RUNTIME" --time_based --group_reporting --output-format=json 2>/dev/null |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; k="read" if j["read"]["bw_bytes"] else "write"; print("%.0f %.0f" % (j[k]["bw_bytes"]/2**20, j[k]["iops"]))'
}

rows=()
run_all() {  # label file
  local w r rw
  w=$(job seqwrite "$2" write 1M 4)
  r=$(job seqread "$2" read 1M 4)
  rw=$(job randwrite "$2" randwrite 4k 16)
  rows+=("| $1 | ${w% *} | ${r% *} | ${rw#* } |")
}

for level in 5 6; do
  n=$((level == 5 ? 5 : 6))
  cfg=$SCRATCH/raid$level.toml
  rm -rf "$SCRATCH/r$level" && mkdir -p "$SCRATCH/r$level/mnt"
  {
    echo "[array]"; echo "name = \"bench$level\""; echo "level = $level"; echo 'chunk_size = "64KiB"'
    echo 'member_size = "1GiB"'
    printf 'members = ['; for i in $(seq 0 $((n - 1))); do printf '"r%s/m%s.img",' "$level" "$i"; done; echo ']'
    echo "[journal]"; echo 'mode = "none"'
  } > "$cfg"
  build/r5cfs create "$cfg" >/dev/null
  build/mount.r5cfs "$cfg" "$SCRATCH/r$level/mnt"
  run_all "RAID$level 4+$((n - 4)) (mode none)" "$SCRATCH/r$level/mnt/array.img"
  umount "$SCRATCH/r$level/mnt"
  sleep 1
done
dd if=/dev/zero of="$SCRATCH/plain.img" bs=1M count=1024 status=none
run_all "one member file, no RAID" "$SCRATCH/plain.img"
rm -rf "$SCRATCH"

{
  echo "# r5cfs mode none through FUSE, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s), $(nproc) cores"
  echo
  echo "fio, O_DIRECT, libaio, ${RUNTIME}s per job, files on $(df --output=fstype . | tail -1)."
  echo
  echo "| target | 1 MiB seq write MiB/s (QD4) | 1 MiB seq read MiB/s (QD4) | 4 KiB rand write IOPS (QD16) |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$OUT"
