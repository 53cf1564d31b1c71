# Shared helpers of the r5cfs end-to-end tests; source it from a test script.
#
# Environment (meson sets all three; by hand they default to the source tree):
#   R5CFS        path of the r5cfs tool          (default $SRCDIR/build/r5cfs)
#   MOUNT_R5CFS  path of the mount.r5cfs daemon  (default $SRCDIR/build/mount.r5cfs)
#   SRCDIR       source tree root
#   R5CFS_E2E_KEEP=1  keep the workspace (and print its path) after the run
#   R5CFS_E2E_SEED    seed of the random patterns (default: fixed per test)
#   R5CFS_E2E_TRACE=1 trace every command with a timestamp (set -x)
#
# Exit codes: 0 pass, 1 fail (with a "FAIL:" line), 77 skip (with a loud banner).

set -euo pipefail
set -E
if [[ "${R5CFS_E2E_TRACE:-0}" == 1 ]]; then
  PS4='+ ${EPOCHREALTIME} ${BASH_SOURCE[0]##*/}:${LINENO}: '
  set -x
fi

TEST_NAME=$(basename "$0" .sh)
: "${SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${R5CFS:=$SRCDIR/build/r5cfs}"
: "${MOUNT_R5CFS:=$SRCDIR/build/mount.r5cfs}"
: "${R5CFS_E2E_SEED:=1}"
SEED=$R5CFS_E2E_SEED

PY=python3          # python3, resolved by require_root_fuse
WS=""               # the temp workspace, made by require_root_fuse
DAEMON_PID=""       # the running mount.r5cfs -f
DAEMON_PIDS=()      # every daemon started, for the cleanup trap
DAEMON_LOG=""       # stderr of the last daemon started
DAEMON_N=0
MNT=""              # mount point of the running daemon
IMG=""              # the image file in it

# forget_pid PID: a reaped daemon leaves the cleanup list.
forget_pid() {
  local p keep=()
  for p in "${DAEMON_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  DAEMON_PIDS=("${keep[@]}")
}

log() { echo "[$TEST_NAME +${SECONDS}s] $*" >&2; }

fail() {
  {
    echo "FAIL: $TEST_NAME: $*"
    if [[ -n "$DAEMON_LOG" && -s "$DAEMON_LOG" ]]; then
      echo "---- last lines of the daemon log $DAEMON_LOG:"
      tail -n 20 "$DAEMON_LOG"
      echo "----"
    fi
  } >&2
  exit 1
}

on_err() {
  local rc=$1 line=$2 cmd=$3
  # Guard against a failing command whose status happens to be 77 (skip).
  echo "FAIL: $TEST_NAME: line $line: command exited with $rc: $cmd" >&2
  exit 1
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

skip() {
  cat >&2 <<EOF

########################################################################
###
###   SKIPPED: $TEST_NAME: $*
###
###   The r5cfs end-to-end tests need root, /dev/fuse, loop devices,
###   losetup, mkfs.ext4, e2fsck, fio and python3. Nothing was tested.
###
########################################################################

EOF
  exit 77
}

cleanup() {
  local rc=$?
  set +e
  trap - ERR
  if [[ -n "$WS" && -d "$WS" ]]; then
    # 1. non-FUSE mounts under the workspace (ext4 on a loop device)
    local m
    for m in $(findmnt -rn -o TARGET,FSTYPE | awk -v ws="$WS/" 'index($1, ws) == 1 && $2 !~ /^fuse/ {print $1}' | sort -r); do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
    # 2. loop devices backed by a file under the workspace
    local dev
    for dev in $(losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v ws="$WS/" 'index($2, ws) == 1 {print $1}'); do
      timeout 20 losetup -d "$dev" || echo "cleanup: could not detach $dev" >&2
    done
    # 3. the FUSE mounts
    for m in $(findmnt -rn -o TARGET,FSTYPE | awk -v ws="$WS/" 'index($1, ws) == 1 {print $1}' | sort -r); do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
  fi
  # 4. daemons still alive (only the ones this script started and has not
  # reaped yet, so a recycled pid is never hit)
  local pid i
  for pid in "${DAEMON_PIDS[@]}"; do
    grep -qa mount.r5cfs "/proc/$pid/cmdline" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "cleanup: killing daemon $pid" >&2; kill -KILL "$pid"; }
  done
  case $rc in
    0 | 1 | 77) ;;
    *) echo "FAIL: $TEST_NAME: exited with status $rc" >&2; rc=1 ;;
  esac
  if [[ -n "$WS" && -d "$WS" ]]; then
    if [[ "${R5CFS_E2E_KEEP:-0}" == 1 ]]; then
      echo "workspace kept: $WS" >&2
    else
      rm -rf "$WS"
    fi
  fi
  if [[ $rc == 0 ]]; then log "PASS (${SECONDS}s)"; fi
  exit $rc
}

# Skips (exit 77) unless the test can really run; then makes the workspace.
require_root_fuse() {
  [[ $(id -u) == 0 ]] || skip "not running as root (uid $(id -u))"
  [[ -c /dev/fuse ]] || skip "/dev/fuse is missing"
  local tool
  for tool in losetup mkfs.ext4 e2fsck fio python3 mountpoint findmnt timeout sha256sum; do
    command -v "$tool" >/dev/null || skip "'$tool' is not installed"
  done
  # The real interpreter: a pyenv shim costs 0.3s per call.
  PY=$(python3 -c 'import sys; print(sys.executable)') || skip "python3 does not run"
  losetup -f >/dev/null 2>&1 || skip "no free loop device (losetup -f failed)"
  [[ -x "$R5CFS" ]] || fail "R5CFS=$R5CFS is not an executable (build first: ninja -C build)"
  [[ -x "$MOUNT_R5CFS" ]] || fail "MOUNT_R5CFS=$MOUNT_R5CFS is not an executable"
  WS=$(mktemp -d "${TMPDIR:-/tmp}/r5cfs-e2e-$TEST_NAME.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  write_tool
  log "workspace $WS, seed $SEED"
}

# write_config NAME LEVEL NMEMBERS [MEMBER_SIZE] [CHUNK_SIZE]
# Writes $WS/NAME.toml for members NAME/m0.img.. (relative to the config) and
# prints its path. JOURNAL_MODE (default none) sets journal.mode; any other
# mode gets a journal NAME/journal.img of JOURNAL_SIZE (default 32MiB).
write_config() {
  local name=$1 level=$2 n=$3 member_size=${4:-64MiB} chunk=${5:-64KiB}
  local cfg=$WS/$name.toml members="" i journal="" mode=${JOURNAL_MODE:-none}
  for ((i = 0; i < n; i++)); do
    members+="${members:+, }\"$name/m$i.img\""
  done
  [[ $mode == none ]] || journal="path = \"$name/journal.img\"
size = \"${JOURNAL_SIZE:-32MiB}\""
  cat >"$cfg" <<EOF
# written by tests/e2e/lib.sh write_config
[array]
name = "$name"
level = $level
layout = "left-symmetric"
chunk_size = "$chunk"
member_size = "$member_size"
members = [$members]

[journal]
mode = "$mode"
$journal

[cache]
memory = "64MiB"

[mount]
image = "array.img"
control = "$name.sock"
EOF
  echo "$cfg"
}

# member_path CFG SLOT: the member file write_config made for SLOT.
member_path() { echo "${1%.toml}/m$2.img"; }

create_array() {
  local cfg=$1 out
  shift
  out=$("$R5CFS" create "$cfg" "$@" 2>&1) || fail "r5cfs create $cfg $* failed: $out"
}

# start_daemon CFG [mount.r5cfs options...]: mounts on ${CFG%.toml}.mnt with
# -f in the background; sets MNT, IMG, DAEMON_PID, DAEMON_LOG. With
# ALLOW_REFUSAL=1, a daemon that exits without mounting makes it return 1 with
# the exit status in MOUNT_RC instead of failing the test.
start_daemon() {
  local cfg=$1 i rc
  shift
  MNT=${cfg%.toml}.mnt
  mkdir -p "$MNT"
  DAEMON_N=$((DAEMON_N + 1))
  DAEMON_LOG=$WS/daemon.$DAEMON_N.log
  log "mount.r5cfs $cfg $MNT -f $*"
  "$MOUNT_R5CFS" "$cfg" "$MNT" -f "$@" >>"$DAEMON_LOG" 2>&1 &
  DAEMON_PID=$!
  DAEMON_PIDS+=("$DAEMON_PID")
  for ((i = 0; i < 600; i++)); do
    mountpoint -q "$MNT" && break
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      rc=0
      wait "$DAEMON_PID" || rc=$?
      forget_pid "$DAEMON_PID"
      DAEMON_PID=""
      if [[ ${ALLOW_REFUSAL:-0} == 1 ]]; then
        MOUNT_RC=$rc
        return 1
      fi
      fail "mount.r5cfs $cfg exited with status $rc before the mount appeared"
    fi
    sleep 0.05
  done
  mountpoint -q "$MNT" || fail "mount.r5cfs $cfg: $MNT not mounted after 30s"
  IMG=$MNT/array.img
  [[ -f "$IMG" ]] || fail "$IMG is not a regular file in the mount"
}

# stop_daemon [--sigterm]: umount (or SIGTERM the daemon); the daemon must
# exit with status 0 and the mount must be gone.
# shellcheck disable=SC2120  # the option is optional
stop_daemon() {
  local i rc=0
  [[ -n "$DAEMON_PID" ]] || fail "stop_daemon: no daemon running"
  sync
  if [[ ${1:-} == --sigterm ]]; then
    log "kill -TERM $DAEMON_PID"
    kill -TERM "$DAEMON_PID"
  else
    for ((i = 0; i < 50; i++)); do
      umount "$MNT" 2>/dev/null && break
      sleep 0.2
    done
    mountpoint -q "$MNT" && fail "umount $MNT failed (busy?): $(umount "$MNT" 2>&1)"
  fi
  for ((i = 0; i < 600; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$DAEMON_PID" 2>/dev/null && fail "mount.r5cfs (pid $DAEMON_PID) still running 60s after umount"
  wait "$DAEMON_PID" || rc=$?
  forget_pid "$DAEMON_PID"
  [[ $rc == 0 ]] || fail "mount.r5cfs exited with status $rc after ${1:-umount}, expected 0"
  mountpoint -q "$MNT" && fail "$MNT is still mounted after the daemon exited"
  DAEMON_PID=""
  log "daemon exited 0"
}

# expect_mount_fails CFG: mount.r5cfs must exit non-zero without mounting.
# Sets MOUNT_RC and MOUNT_LOG.
expect_mount_fails() {
  local cfg=$1 mnt=${1%.toml}.mnt i pid
  mkdir -p "$mnt"
  DAEMON_N=$((DAEMON_N + 1))
  MOUNT_LOG=$WS/daemon.$DAEMON_N.log
  "$MOUNT_R5CFS" "$cfg" "$mnt" -f >"$MOUNT_LOG" 2>&1 &
  pid=$!
  DAEMON_PIDS+=("$pid")
  for ((i = 0; i < 1500; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    if mountpoint -q "$mnt"; then
      umount "$mnt" || umount -l "$mnt"
      wait "$pid" || true
      forget_pid "$pid"
      fail "mount.r5cfs $cfg mounted, expected it to refuse; log: $(cat "$MOUNT_LOG")"
    fi
    sleep 0.02
  done
  kill -0 "$pid" 2>/dev/null && fail "mount.r5cfs $cfg still running after 30s, expected it to refuse"
  MOUNT_RC=0
  wait "$pid" || MOUNT_RC=$?
  forget_pid "$pid"
  [[ $MOUNT_RC != 0 ]] || fail "mount.r5cfs $cfg exited 0 without mounting; log: $(cat "$MOUNT_LOG")"
}

assert_contains() {
  local file=$1 text=$2
  grep -qF -- "$text" "$file" || fail "expected '$text' in $file, which holds: $(cat "$file")"
}

assert_not_contains() {
  local file=$1 text=$2
  ! grep -qF -- "$text" "$file" || fail "did not expect '$text' in $file, which holds: $(cat "$file")"
}

# info_json CFG: `r5cfs info --json` (must exit 0).
info_json() {
  local out
  out=$("$R5CFS" info "$1" --json) || fail "r5cfs info $1 --json failed"
  echo "$out"
}

# info_get CFG PYEXPR: evaluates PYEXPR with j = the info JSON, prints it.
info_get() {
  local js
  js=$(info_json "$1")
  "$PY" -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" <<<"$js"
}

# status_get CFG PYEXPR: evaluates PYEXPR with s = `r5cfs status --json` of
# the mounted array, prints it.
status_get() {
  local js
  js=$("$R5CFS" status "$1" --json) || fail "r5cfs status $1 --json failed"
  "$PY" -c 'import json, sys; s = json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" <<<"$js"
}

# new_model CFG: an all-zero model of the image (fresh arrays read as zeros);
# prints its path.
new_model() {
  local cap model
  model=$WS/model.$(basename "${1%.toml}")
  cap=$(info_get "$1" 'j["capacity"]')
  rm -f "$model"
  truncate -s "$cap" "$model"
  echo "$model"
}

# r5tool SUBCOMMAND ARGS: the python helper (pattern writer, verifier,
# parity checker, tree generator), see write_tool.
r5tool() { "$PY" "$WS/r5tool.py" "$@"; }

# random_writes CFG IMG MODEL SEED COUNT [LIMIT]: random writes at odd offsets
# and sizes (sub-page, cross-chunk, cross-row, some O_DIRECT) to IMG and MODEL,
# below LIMIT (default: anywhere), then fsync.
random_writes() {
  local cfg=$1 img=$2 model=$3 seed=$4 count=$5 limit=${6:-0} chunk dpr
  chunk=$(info_get "$cfg" 'j["chunk_size"]')
  dpr=$(info_get "$cfg" 'j["data_members_per_row"]')
  r5tool write --img "$img" --model "$model" --seed "$seed" --count "$count" --chunk "$chunk" --data-members "$dpr" --limit "$limit" \
    || fail "random writes to $img failed"
}

# kill_during_writes CFG MODEL SYNCED: on the mounted array, fsynced random
# writes into the first half of the image (and MODEL), then unsynced 4 KiB
# fio writes into the second half, and SIGKILL of the daemon in the middle of
# them. Leaves the array unmounted and SYNCED holding what must survive: the
# first half of MODEL.
kill_during_writes() {
  local cfg=$1 model=$2 synced=$3 cap half fio_pid
  cap=$(info_get "$cfg" 'j["capacity"]')
  half=$((cap / 2 / 65536 * 65536))
  random_writes "$cfg" "$IMG" "$model" "$SEED" 150 "$half"
  fio --name=crash --filename="$IMG" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=16 \
    --offset="$half" --size=$((cap - half)) --time_based --runtime=30 --output=/dev/null >/dev/null 2>&1 &
  fio_pid=$!
  sleep 1.5
  log "kill -KILL $DAEMON_PID during writes"
  kill -KILL "$DAEMON_PID"
  wait "$fio_pid" || true
  wait "$DAEMON_PID" 2>/dev/null || true
  forget_pid "$DAEMON_PID"
  DAEMON_PID=""
  umount "$MNT" 2>/dev/null || umount -l "$MNT"
  head -c "$half" "$model" >"$synced"
}

# dd_direct_pattern IMG MODEL OFFSET LENGTH: writes LENGTH random bytes at
# OFFSET (both multiples of 4096) with dd oflag=direct, and into the model.
dd_direct_pattern() {
  local img=$1 model=$2 off=$3 len=$4 pat=$WS/pattern.bin
  head -c "$len" /dev/urandom >"$pat"
  dd if="$pat" of="$img" bs=1M oflag=direct,seek_bytes seek="$off" conv=notrunc,fsync status=none \
    || fail "dd oflag=direct to $img at $off failed"
  dd if="$pat" of="$model" bs=1M oflag=seek_bytes seek="$off" conv=notrunc status=none
  rm -f "$pat"
}

# verify_image IMG MODEL: IMG must equal MODEL byte for byte, read once with
# O_DIRECT (the daemon) and once buffered after dropping the file's cache.
verify_image() {
  local img=$1 model=$2
  r5tool verify --img "$img" --model "$model" --direct || fail "O_DIRECT read of $img differs from the model"
  r5tool verify --img "$img" --model "$model" || fail "buffered read of $img differs from the model"
}

# check_parity CFG [MODEL]: reads the members (daemon stopped) and checks P
# (and Q for RAID6) of every row, and with MODEL that the data chunks sit
# where md's layout puts them and equal the model. With one member
# unavailable, its data chunks are rebuilt from P and the parity that remains
# is checked; with more it fails.
check_parity() {
  local cfg=$1 model=${2:-} info=$WS/info.json
  info_json "$cfg" >"$info"
  r5tool parity --info "$info" ${model:+--model "$model"} || fail "parity check of $cfg failed"
}

write_tool() {
  cat >"$WS/r5tool.py" <<'PYEOF'
"""Helpers of the r5cfs e2e tests: pattern writer, verifier, parity checker."""
import argparse, json, mmap, os, random, sys

MiB = 1 << 20

def die(msg):
    print("r5tool: " + msg, file=sys.stderr)
    sys.exit(1)

# ---------------------------------------------------------------- writes
def cmd_write(a):
    rnd = random.Random(a.seed)
    cap = a.limit or os.path.getsize(a.model)
    chunk, row = a.chunk, a.chunk * a.data_members
    fd = os.open(a.img, os.O_RDWR)
    dfd = os.open(a.img, os.O_RDWR | os.O_DIRECT)
    mfd = os.open(a.model, os.O_RDWR)
    kinds = {}
    for i in range(a.count):
        kind = ["subpage", "pages", "cross-chunk", "cross-row", "large", "direct"][i % 6]
        if kind == "subpage":
            ln = rnd.randint(1, 4095)
            off = rnd.randrange(0, cap - ln)
        elif kind == "pages":
            ln = rnd.randint(1, 16) * 4096
            off = rnd.randrange(0, (cap - ln) // 4096) * 4096
        elif kind == "cross-chunk":
            b = rnd.randrange(1, cap // chunk) * chunk
            off = b - rnd.randint(1, min(8191, chunk - 1))
            ln = min(cap - off, (b - off) + rnd.randint(1, 2 * chunk))
        elif kind == "cross-row":
            b = rnd.randrange(1, cap // row) * row
            off = b - rnd.randint(1, row)
            ln = min(cap - off, (b - off) + rnd.randint(1, row + chunk))
        elif kind == "large":
            ln = rnd.randint(1, 3 * row + 12345)
            off = rnd.randrange(0, cap - ln)
        else:  # O_DIRECT: page aligned offset, length and buffer
            ln = rnd.randint(1, 64) * 4096
            off = rnd.randrange(0, (cap - ln) // 4096) * 4096
        data = rnd.randbytes(ln)
        if kind == "direct":
            buf = mmap.mmap(-1, ln)
            buf.write(data)
            n = os.pwritev(dfd, [buf], off)
            buf.close()
        else:
            n = os.pwrite(fd, data, off)
        if n != ln:
            die("short write %d of %d at %d" % (n, ln, off))
        os.pwrite(mfd, data, off)
        kinds[kind] = kinds.get(kind, 0) + 1
    os.fsync(fd)
    os.fsync(dfd)
    for f in (fd, dfd, mfd):
        os.close(f)
    print("r5tool: %d writes (%s) seed %d" % (a.count, ", ".join("%s %d" % kv for kv in sorted(kinds.items())), a.seed),
          file=sys.stderr)

# ---------------------------------------------------------------- verify
def first_diff(x, y):
    for i in range(min(len(x), len(y))):
        if x[i] != y[i]:
            return i
    return min(len(x), len(y))

def cmd_verify(a):
    msize = os.path.getsize(a.model)
    flags = os.O_RDONLY | (os.O_DIRECT if a.direct else 0)
    fd = os.open(a.img, flags)
    size = os.lseek(fd, 0, os.SEEK_END)
    if size < msize or (size != msize and not a.allow_larger):
        die("%s is %d bytes, the model %d" % (a.img, size, msize))
    if not a.direct:
        # Drop clean cached pages so the reads reach the daemon (or the loop device).
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    mf = open(a.model, "rb")
    bs = 4 * MiB
    buf = mmap.mmap(-1, bs)
    off, bad, first = 0, 0, None
    while off < msize:
        ln = min(bs, msize - off)
        want = mf.read(ln)
        if a.direct:
            rl = (ln + 4095) // 4096 * 4096
            n = os.preadv(fd, [memoryview(buf)[:rl]], off)
            got = buf[:min(n, ln)]
        else:
            got = os.pread(fd, ln, off)
        if got != want:
            for p in range(0, ln, 4096):
                if got[p:p + 4096] != want[p:p + 4096]:
                    bad += 1
                    if first is None:
                        first = off + p + first_diff(got[p:p + 4096], want[p:p + 4096])
        off += ln
    os.close(fd)
    if bad:
        die("%s%s: %d 4KiB blocks differ from the model, first difference at byte %d"
            % (a.img, " (O_DIRECT)" if a.direct else "", bad, first))
    print("r5tool: %s%s matches the model (%d bytes)" % (a.img, " (O_DIRECT)" if a.direct else "", msize),
          file=sys.stderr)

# ---------------------------------------------------------------- parity
def xtime(x, lo7, hi1):
    """Multiplies every byte of the little-endian packed int x by g = 2 in
    GF(2^8) with polynomial 0x11d: shift left, reduce bytes whose top bit was set."""
    hi = (x >> 7) & hi1
    return ((x & lo7) << 1) ^ (hi * 0x1d)

def cmd_parity(a):
    info = json.load(open(a.info))
    level, n, chunk = info["level"], info["member_count"], info["chunk_size"]
    doff, dsize, cap = info["data_offset"], info["data_size"], info["capacity"]
    if info.get("layout") != "left-symmetric":
        die("only left-symmetric is checked, got %s" % info.get("layout"))
    # One unavailable member is reconstructed from P; more cannot be checked.
    failed = info.get("failed_slots") or []
    if len(failed) > 1:
        die("slots %s are unavailable; the parity check needs all members but one" % failed)
    missing = failed[0] if failed else None
    paths = {}
    for m in info["members"]:
        if m.get("state") == "active":
            paths[m["slot"]] = m["path"]
    if sorted(paths) != [s for s in range(n) if s != missing]:
        die("active slots %s, unavailable %s, expected 0..%d" % (sorted(paths), failed, n - 1))
    npar = 1 if level == 5 else 2
    dc = n - npar
    rows = dsize // chunk
    if a.rows:
        rows = min(rows, a.rows)
    if dsize % chunk or cap != dsize // chunk * dc * chunk:
        die("capacity %d != rows %d x %d data chunks x %d" % (cap, rows, dc, chunk))
    files = [open(paths[s], "rb") if s != missing else None for s in range(n)]
    model = open(a.model, "rb") if a.model else None
    if model and os.path.getsize(a.model) != cap:
        die("model is %d bytes, capacity %d" % (os.path.getsize(a.model), cap))
    lo7 = int.from_bytes(b"\x7f" * chunk, "little")
    hi1 = int.from_bytes(b"\x01" * chunk, "little")
    batch = max(1, (4 * MiB) // chunk)
    bad_p, bad_q, bad_d, nonzero = [], [], [], 0
    for r0 in range(0, rows, batch):
        nr = min(batch, rows - r0)
        blobs = []
        for f in files:
            if f is None:
                blobs.append(None)
                continue
            f.seek(doff + r0 * chunk)
            blob = f.read(nr * chunk)
            if len(blob) != nr * chunk:
                die("short read of %s" % f.name)
            blobs.append(blob)
        if model:
            mblob = model.read(nr * dc * chunk)
        for i in range(nr):
            r = r0 + i
            ch = [blobs[m][i * chunk:(i + 1) * chunk] if m != missing else None for m in range(n)]
            pd = n - 1 - (r % n)
            if level == 5:
                data_pos = [(pd + 1 + k) % n for k in range(dc)]
                qd = None
            else:
                qd = (pd + 1) % n
                data_pos = [(pd + 2 + k) % n for k in range(dc)]
            ints = [int.from_bytes(ch[m], "little") if m != missing else None for m in range(n)]
            if missing in data_pos:  # rebuild the data chunk from P
                x = ints[pd]
                for m in data_pos:
                    if m != missing:
                        x ^= ints[m]
                ints[missing] = x
                ch[missing] = x.to_bytes(chunk, "little")
            p = 0
            for m in data_pos:
                p ^= ints[m]
            if missing != pd and p != ints[pd]:
                bad_p.append(r)
            if qd is not None:
                q = 0
                for m in reversed(data_pos):  # Horner: Q = sum g^k D_k
                    q = xtime(q, lo7, hi1) ^ ints[m]
                if missing != qd and q != ints[qd]:
                    bad_q.append(r)
            if any(ints[m] for m in data_pos):
                nonzero += 1
            if model:
                for k, m in enumerate(data_pos):
                    if ch[m] != mblob[(i * dc + k) * chunk:(i * dc + k + 1) * chunk]:
                        bad_d.append((r, k, m))
    msg = []
    if bad_p:
        msg.append("P wrong in %d of %d rows (first rows %s)" % (len(bad_p), rows, bad_p[:8]))
    if bad_q:
        msg.append("Q wrong in %d of %d rows (first rows %s)" % (len(bad_q), rows, bad_q[:8]))
    if bad_d:
        msg.append("%d data chunks differ from the model at md's left-symmetric place (first (row, k, member) %s)"
                   % (len(bad_d), bad_d[:8]))
    if msg:
        die("; ".join(msg))
    print("r5tool: RAID%d %d members%s: P%s correct in all %d rows%s; %d rows hold data"
          % (level, n, "" if missing is None else " (slot %d rebuilt from P)" % missing,
             " and Q" if level == 6 else "", rows,
             ", data placement equals the model" if model else "", nonzero), file=sys.stderr)

# ---------------------------------------------------------------- tree
def cmd_tree(a):
    rnd = random.Random(a.seed)
    total, i = 0, 0
    while total < a.bytes:
        d = os.path.join(a.dir, "d%02d" % rnd.randrange(12), "s%d" % rnd.randrange(3))
        os.makedirs(d, exist_ok=True)
        r = rnd.random()
        size = rnd.randint(0, 4096) if r < 0.4 else rnd.randint(4097, 256 * 1024) if r < 0.85 else rnd.randint(256 * 1024, 2 * MiB)
        with open(os.path.join(d, "f%04d.bin" % i), "wb") as f:
            f.write(os.urandom(size))
        total += size
        i += 1
    print("r5tool: tree of %d files, %d bytes" % (i, total), file=sys.stderr)

ap = argparse.ArgumentParser()
sub = ap.add_subparsers(dest="cmd", required=True)
w = sub.add_parser("write")
w.add_argument("--img", required=True); w.add_argument("--model", required=True)
w.add_argument("--seed", type=int, required=True); w.add_argument("--count", type=int, required=True)
w.add_argument("--chunk", type=int, required=True); w.add_argument("--data-members", type=int, required=True)
w.add_argument("--limit", type=int, default=0, help="write below this offset only")
v = sub.add_parser("verify")
v.add_argument("--img", required=True); v.add_argument("--model", required=True)
v.add_argument("--direct", action="store_true"); v.add_argument("--allow-larger", action="store_true")
p = sub.add_parser("parity")
p.add_argument("--info", required=True); p.add_argument("--model")
p.add_argument("--rows", type=int, default=0, help="check only the first ROWS rows")
t = sub.add_parser("tree")
t.add_argument("--dir", required=True); t.add_argument("--bytes", type=int, required=True)
t.add_argument("--seed", type=int, required=True)
a = ap.parse_args()
{"write": cmd_write, "verify": cmd_verify, "parity": cmd_parity, "tree": cmd_tree}[a.cmd](a)
PYEOF
}
