#!/bin/bash
# End-to-end: bad input (issue 2, items 2 and 5).
#
# 1. Config errors: unknown keys and tables, wrong types, duplicate member
#    paths (also through ./ and a symlink), journal path equal to a member, a
#    member or journal equal to the config file, too few members (RAID5 < 3, RAID6 < 4),
#    bad chunk sizes, bad size and duration strings, bad image names, bad
#    level, layout and name, a missing required key, a TOML syntax error.
#    Also: an unknown mount option, create without member_size, an existing
#    member too small; relative paths resolve against the config's folder.
#    For each: `r5cfs create` (with and without --force), `r5cfs info` and
#    `mount.r5cfs` exit non-zero with one line naming the file, the key, the
#    value found and what is expected; no file in the workspace changed; no
#    member file was created when the members did not exist.
# 2. create refuses a member holding an r5cfs superblock or an ext4 file
#    system unless --force (and creates none of the other members); with
#    --force it succeeds.
# 3. Assembly: members listed in the wrong order (notice; data reads back;
#    writes land in the right slots), a member of another array (left out,
#    "another r5cfs array", degraded, the foreign member untouched), a stale
#    member ("stale" in log and info, newest data reads back), a blank member
#    and a truncated member (left out with a message, untouched), geometry
#    mismatches (refused naming the key), two members claiming one slot
#    (refused naming both), too many members missing (refused, "cannot
#    start"). Refusals change no file.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
require_root_fuse

MSIZE=16MiB  # arrays that hold data; >10M for the truncation case

# snapshot [PATH...]: every file under the workspace (or under the PATHs
# inside it) but logs and outputs, with its checksum.
snapshot() {
  (cd "$WS" && find "${@:-.}" -type f ! -name 'daemon.*.log' ! -path './out/*' -print0 | LC_ALL=C sort -z \
    | xargs -0 -r sha256sum)
}

# quick_snapshot: path, size, mtime and ctime of every file (a write to a file
# changes its ctime even when the content stays the same).
quick_snapshot() {
  (cd "$WS" && find . -type f ! -name 'daemon.*.log' ! -path './out/*' -printf '%p %s %T@ %C@\n' | LC_ALL=C sort)
}
mkdir -p "$WS/out"

# ---------------------------------------------------------------------------
# 1. Config errors

# gen_config OUT DIR [SECTION.KEY=RAW ...]: a valid RAID5 config for members
# DIR/m0.img..m4.img, then each SECTION.KEY set to the raw TOML text RAW (an
# empty RAW deletes the key; a new section is appended). '@' in RAW is DIR.
gen_config() {
  "$PY" - "$@" <<'EOF'
import sys
out, d, muts = sys.argv[1], sys.argv[2], sys.argv[3:]
conf = {
    "array": {"name": '"bad"', "level": "5", "layout": '"left-symmetric"', "chunk_size": '"64KiB"',
              "member_size": '"16MiB"', "members": "[" + ", ".join('"@/m%d.img"' % i for i in range(5)) + "]"},
    "journal": {"mode": '"none"'},
    "cache": {"memory": '"64MiB"'},
    "mount": {"image": '"array.img"'},
}
for m in muts:
    k, raw = m.split("=", 1)
    sec, key = k.split(".", 1)
    t = conf.setdefault(sec, {})
    if raw == "":
        t.pop(key, None)
    else:
        t[key] = raw
with open(out, "w") as f:
    for sec, kv in conf.items():
        f.write("[%s]\n" % sec)
        for k, v in kv.items():
            f.write("%s = %s\n" % (k, v.replace("@", d)))
        f.write("\n")
EOF
}

# check_message FILE WHAT CFG EXPECT...: FILE holds one line that contains
# "CFG:" and every EXPECT.
check_message() {
  local file=$1 what=$2 cfg=$3 e
  shift 3
  [[ $(grep -c . "$file") == 1 ]] || fail "$what: expected a one-line message, got: $(cat "$file")"
  assert_contains "$file" "$cfg:"
  for e in "$@"; do assert_contains "$file" "$e"; done
}

# bad_case DESC MUTATION... -- EXPECT...: see the header, part 1.
N_BAD=0
bad_case() {
  local desc=$1 muts=() expects=() dir cfg before rc e
  shift
  while [[ $# -gt 0 && $1 != -- ]]; do muts+=("$1"); shift; done
  shift
  expects=("$@")
  N_BAD=$((N_BAD + 1))
  local dirs=(good new)
  [[ ${ONLY_GOOD:-0} == 1 ]] && dirs=(good)
  for dir in "${dirs[@]}"; do
    cfg=$WS/bad.toml
    gen_config "$cfg" "$dir" "${muts[@]}"
    local exp=()
    for e in "${expects[@]}"; do exp+=("${e//@/$dir}"); done
    before=$(quick_snapshot)

    rc=0
    "$R5CFS" create "$cfg" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
    [[ $rc != 0 ]] || fail "$desc: r5cfs create succeeded"
    [[ $rc == 1 ]] || fail "$desc: r5cfs create exited $rc, expected 1 (config error)"
    check_message "$WS/out/create.err" "$desc: r5cfs create" "$cfg" "${exp[@]}"

    if [[ $dir == good ]]; then
      rc=0
      "$R5CFS" create --force "$cfg" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
      [[ $rc == 1 ]] || fail "$desc: r5cfs create --force exited $rc, expected 1 (config error)"
      check_message "$WS/out/create.err" "$desc: r5cfs create --force" "$cfg" "${exp[@]}"
      rc=0
      "$R5CFS" info "$cfg" >"$WS/out/stdout" 2>"$WS/out/info.err" || rc=$?
      [[ $rc == 1 ]] || fail "$desc: r5cfs info exited $rc, expected 1 (config error)"
      check_message "$WS/out/info.err" "$desc: r5cfs info" "$cfg" "${exp[@]}"
    fi

    expect_mount_fails "$cfg"
    [[ $MOUNT_RC == 1 ]] || fail "$desc: mount.r5cfs exited $MOUNT_RC, expected 1 (configuration error)"
    check_message "$MOUNT_LOG" "$desc: mount.r5cfs" "$cfg" "${exp[@]}"

    [[ "$(quick_snapshot)" == "$before" ]] || fail "$desc: files changed: $(diff <(echo "$before") <(quick_snapshot))"
    [[ ! -e $WS/new ]] || fail "$desc: r5cfs create made $WS/new: $(ls -la "$WS/new")"
  done
}

log "==== config errors"
GOOD=$(write_config good 5 5 4MiB)
create_array "$GOOD"
ln -s m1.img "$WS/good/link1.img"
config_before=$(snapshot)

bad_case "unknown key" 'array.levle=5' -- "array.levle" "unknown key"
bad_case "unknown key in [journal]" 'journal.mod="none"' -- "journal.mod" "unknown key"
bad_case "unknown table" 'raid.level=5' -- "'raid'" "unknown table"
bad_case "level is a string" 'array.level="5"' -- "array.level" 'found "5"' "expected 5 or 6"
bad_case "level 4" 'array.level=4' -- "array.level" "found integer 4" "expected 5 or 6"
bad_case "level missing" 'array.level=' -- "array.level" "missing" "expected 5 or 6"
bad_case "image is an integer" 'mount.image=5' -- "mount.image" "found integer 5" "expected a string"
bad_case "members is a string" 'array.members="@/m0.img"' -- "array.members" 'found "@/m0.img"' "expected an array"
bad_case "chunk_size is a float" 'array.chunk_size=65536.0' -- "array.chunk_size" "65536" "expected a size"
bad_case "drain_on_unmount is a string" 'journal.drain_on_unmount="yes"' -- "journal.drain_on_unmount" '"yes"' "expected"
bad_case "duplicate member" 'array.members=["@/m0.img", "@/m1.img", "@/m1.img", "@/m3.img", "@/m4.img"]' \
  -- "array.members" '"@/m1.img"' "twice"
bad_case "duplicate member through ./" 'array.members=["@/m0.img", "@/m1.img", "./@/m1.img", "@/m3.img", "@/m4.img"]' \
  -- "array.members" '"@/m1.img"' "twice"
ONLY_GOOD=1 bad_case "duplicate member through a symlink" 'array.members=["@/m0.img", "@/m1.img", "good/link1.img", "@/m3.img", "@/m4.img"]' \
  -- "array.members" "link1.img" "twice"
ONLY_GOOD=1 bad_case "duplicate member through an absolute path" \
  "array.members=[\"@/m0.img\", \"@/m1.img\", \"$WS/good/m1.img\", \"@/m3.img\", \"@/m4.img\"]" \
  -- "array.members" "m1.img" "twice"
bad_case "duplicate member through .." 'array.members=["@/m0.img", "@/m1.img", "@/../@/m1.img", "@/m3.img", "@/m4.img"]' \
  -- "array.members" "m1.img" "twice"
bad_case "journal path is a member" 'journal.path="@/m1.img"' -- "journal.path" '"@/m1.img"' "array.members[1]"
ONLY_GOOD=1 bad_case "journal path is a member through a symlink" 'journal.path="good/link1.img"' \
  -- "journal.path" "link1.img" "array.members[1]"
bad_case "journal path is the config file" 'journal.path="bad.toml"' -- "journal.path" "bad.toml"
bad_case "member is the config file" 'array.members=["@/m0.img", "@/m1.img", "bad.toml", "@/m3.img", "@/m4.img"]' \
  -- "array.members" "bad.toml"
bad_case "RAID5 with 2 members" 'array.members=["@/m0.img", "@/m1.img"]' -- "array.members" "found 2 members" "expected at least 3"
bad_case "RAID6 with 3 members" 'array.level=6' 'array.members=["@/m0.img", "@/m1.img", "@/m2.img"]' \
  -- "array.members" "found 3 members" "expected at least 4"
bad_case "chunk not a power of two" 'array.chunk_size="60KiB"' -- "array.chunk_size" 'found "60KiB"' "expected a power of two"
bad_case "chunk below 4KiB" 'array.chunk_size="2KiB"' -- "array.chunk_size" 'found "2KiB"' "expected a power of two >= 4KiB"
bad_case "chunk above 64MiB" 'array.chunk_size="128MiB"' -- "array.chunk_size" 'found "128MiB"' "expected at most 64MiB"
bad_case "size with a decimal unit" 'array.member_size="64MB"' -- "array.member_size" 'found "64MB"' "expected a size"
bad_case "size with a space" 'array.member_size="64 MiB"' -- "array.member_size" 'found "64 MiB"' "expected a size"
bad_case "size with a fraction" 'array.member_size="1.5GiB"' -- "array.member_size" 'found "1.5GiB"' "expected a size"
bad_case "negative size" 'array.member_size=-5' -- "array.member_size" "-5" "expected a size"
bad_case "member size too small" 'array.member_size="2MiB"' -- "array.member_size" 'found "2MiB"' "expected at least 4MiB"
bad_case "journal size not a size" 'journal.size="abc"' -- "journal.size" 'found "abc"' "expected a size"
bad_case "cache memory bad suffix" 'cache.memory="12XiB"' -- "cache.memory" 'found "12XiB"' "expected a size"
bad_case "duration without unit" 'cache.max_age=10' -- "cache.max_age" "10" "expected a duration"
bad_case "image with a slash" 'mount.image="a/b"' -- "mount.image" 'found "a/b"' "expected a plain file name"
bad_case "empty image name" 'mount.image=""' -- "mount.image" 'found ""' "expected a plain file name"
bad_case "image name .." 'mount.image=".."' -- "mount.image" 'found ".."' "expected a plain file name"
bad_case "image name ." 'mount.image="."' -- "mount.image" 'found "."' "expected a plain file name"
bad_case "unknown layout" 'array.layout="left-sym"' -- "array.layout" 'found "left-sym"' "expected"
bad_case "RAID6 right-symmetric" 'array.level=6' 'array.members=["@/m0.img", "@/m1.img", "@/m2.img", "@/m3.img"]' \
  'array.layout="right-symmetric"' -- "array.layout" 'found "right-symmetric"' "expected"
bad_case "bad array name" 'array.name="bad name"' -- "array.name" 'found "bad name"' "expected"
bad_case "unknown journal mode" 'journal.mode="fast"' -- "journal.mode" 'found "fast"' "expected"
bad_case "TOML syntax error" 'array.level=' 'array.name="bad"'$'\n''level =' -- "bad.toml:3:"
rm "$WS/bad.toml"
[[ "$(snapshot)" == "$config_before" ]] || fail "config error cases changed files: $(diff <(echo "$config_before") <(snapshot))"
log "$N_BAD config error cases passed"

log "==== other command line and path errors"
before=$(snapshot)
mkdir -p "$WS/good.mnt"
rc=0
"$MOUNT_R5CFS" "$GOOD" "$WS/good.mnt" -f -o ro,frobnicate >"$WS/out/mount.err" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "mount.r5cfs -o frobnicate exited $rc, expected 1"
assert_contains "$WS/out/mount.err" "frobnicate"
! mountpoint -q "$WS/good.mnt" || fail "mount.r5cfs -o frobnicate mounted"
rc=0
"$MOUNT_R5CFS" "$GOOD" "$WS/no-such-dir" -f >"$WS/out/mount.err" 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "mount.r5cfs on a missing mount point exited $rc, expected 1"
assert_contains "$WS/out/mount.err" "$WS/no-such-dir"
[[ ! -e $WS/no-such-dir ]] || fail "mount.r5cfs created the missing mount point"
# create without member_size for members that do not exist
gen_config "$WS/nosize.toml" new 'array.member_size='
rc=0
"$R5CFS" create "$WS/nosize.toml" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
[[ $rc == 1 ]] || fail "r5cfs create without member_size exited $rc, expected 1"
check_message "$WS/out/create.err" "create without member_size" "$WS/nosize.toml" "array.member_size" "missing"
rm "$WS/nosize.toml"
[[ ! -e $WS/new ]] || fail "r5cfs create without member_size made $WS/new"
# an existing member too small to hold the metadata and one chunk
gen_config "$WS/small.toml" small
mkdir "$WS/small"
truncate -s 1M "$WS/small/m2.img"
rc=0
"$R5CFS" create "$WS/small.toml" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
[[ $rc == 1 ]] || fail "r5cfs create with a 1MiB member exited $rc, expected 1"
assert_contains "$WS/out/create.err" "$WS/small/m2.img"
assert_contains "$WS/out/create.err" "1048576"
[[ $(ls "$WS/small") == m2.img ]] || fail "refused r5cfs create made other members: $(ls "$WS/small")"
rm -r "$WS/small.toml" "$WS/small"
[[ "$(snapshot)" == "$before" ]] || fail "command line errors changed files: $(diff <(echo "$before") <(snapshot))"
# a journal too small for the geometry, and a chunk the journal modes do not
# take: refused by create, naming the file and the minimum, before any change
gen_config "$WS/tinyj.toml" tinyj 'array.chunk_size="512KiB"' 'array.level=6' 'array.members=["@/m0.img", "@/m1.img", "@/m2.img", "@/m3.img", "@/m4.img"]' \
  'journal.mode="write-back"' 'journal.path="@/journal.img"' 'journal.size="4MiB"'
rc=0
"$R5CFS" create "$WS/tinyj.toml" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
[[ $rc == 1 ]] || fail "r5cfs create with a 4MiB journal for 512KiB RAID6 chunks exited $rc, expected 1"
assert_contains "$WS/out/create.err" "$WS/tinyj/journal.img"
assert_contains "$WS/out/create.err" "is too small for the journal of this array"
assert_contains "$WS/out/create.err" "at least"
gen_config "$WS/bigchunk.toml" bigchunk 'array.chunk_size="1MiB"' 'array.level=6' 'array.member_size="64MiB"' \
  'journal.mode="write-back"' 'journal.path="@/journal.img"' 'journal.size="64MiB"'
rc=0
"$R5CFS" create "$WS/bigchunk.toml" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
[[ $rc == 1 ]] || fail "r5cfs create with 1MiB RAID6 chunks in write-back exited $rc, expected 1"
assert_contains "$WS/out/create.err" "journal.mode: the journal modes support chunks of up to 512 KiB with RAID6"
[[ ! -e $WS/tinyj && ! -e $WS/bigchunk ]] || fail "a refused r5cfs create made files"
rm "$WS/tinyj.toml" "$WS/bigchunk.toml"
# relative paths resolve against the config file's folder, not the cwd
mkdir -p "$WS/rel/cwd"
write_config relcfg 5 5 4MiB >/dev/null
mv "$WS/relcfg.toml" "$WS/rel/relcfg.toml"
(cd "$WS/rel/cwd" && "$R5CFS" create ../relcfg.toml >/dev/null 2>&1) || fail "r5cfs create ../relcfg.toml failed"
[[ -f $WS/rel/relcfg/m4.img && -z $(ls "$WS/rel/cwd") && ! -e $WS/relcfg ]] \
  || fail "relative member paths did not resolve against the config's folder"
(cd / && "$R5CFS" info "${WS#/}/rel/relcfg.toml" >/dev/null) || fail "r5cfs info with a relative config path failed"
rm -r "$WS/rel"

# ---------------------------------------------------------------------------
# 2. create refuses members that hold something

log "==== create refuses an r5cfs member"
before=$(snapshot)
rc=0
"$R5CFS" create "$GOOD" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
[[ $rc == 1 ]] || fail "r5cfs create over an existing array exited $rc, expected 1"
assert_contains "$WS/out/create.err" "$(member_path "$GOOD" 0)"
assert_contains "$WS/out/create.err" "r5cfs"
assert_contains "$WS/out/create.err" "--force"
[[ "$(snapshot)" == "$before" ]] || fail "r5cfs create over an existing array changed files"

# refused_member NAME SLOT WHAT: config NAME with only member SLOT present
# (already prepared by the caller); create must refuse naming the member and
# WHAT, create no other member, change nothing; --force must then succeed.
refused_member() {
  local cfg=$1 slot=$2 what=$3 before rc i m
  m=$(member_path "$cfg" "$slot")
  before=$(snapshot)
  rc=0
  "$R5CFS" create "$cfg" >"$WS/out/stdout" 2>"$WS/out/create.err" || rc=$?
  [[ $rc == 1 ]] || fail "r5cfs create with $what in $m exited $rc, expected 1: $(cat "$WS/out/create.err")"
  assert_contains "$WS/out/create.err" "$m"
  assert_contains "$WS/out/create.err" "$what"
  assert_contains "$WS/out/create.err" "--force"
  [[ "$(snapshot)" == "$before" ]] || fail "refused r5cfs create ($what) changed files: $(diff <(echo "$before") <(snapshot))"
  for ((i = 0; i < 5; i++)); do
    [[ $i == "$slot" || ! -e $(member_path "$cfg" "$i") ]] || fail "refused r5cfs create ($what) made $(member_path "$cfg" "$i")"
  done
  "$R5CFS" create --force "$cfg" >"$WS/out/stdout" 2>"$WS/out/create.err" \
    || fail "r5cfs create --force with $what in $m failed: $(cat "$WS/out/create.err")"
  [[ $(info_get "$cfg" 'j["assembles"] and not j["degraded"] and len(j["members"])') == 5 ]] \
    || fail "array created with --force over $what does not assemble with 5 members"
  ! command -v blkid >/dev/null || [[ -z $(blkid -p -o value -s TYPE "$m" || true) ]] \
    || fail "$m still carries a $(blkid -p -o value -s TYPE "$m") signature after create --force"
}

log "==== create refuses an ext4 file system, and a member of another array"
FS=$(write_config fs 5 5 "$MSIZE")
mkdir -p "$WS/fs"
truncate -s "$MSIZE" "$(member_path "$FS" 2)"
mkfs.ext4 -q -F "$(member_path "$FS" 2)" || fail "mkfs.ext4 on a file failed"
refused_member "$FS" 2 ext4
MIX=$(write_config mix 5 5 "$MSIZE")
mkdir -p "$WS/mix"
cp "$(member_path "$GOOD" 1)" "$(member_path "$MIX" 3)"
refused_member "$MIX" 3 "r5cfs"

# ---------------------------------------------------------------------------
# 3. Assembly

# prep NAME [LEVEL N]: a created array with a pattern written and verified;
# sets CFG and MODEL.
prep() {
  local name=$1 level=${2:-5} n=${3:-5}
  CFG=$(write_config "$name" "$level" "$n" "$MSIZE")
  create_array "$CFG"
  start_daemon "$CFG"
  MODEL=$(new_model "$CFG")
  dd_direct_pattern "$IMG" "$MODEL" $((5 * 4096)) $((6 << 20))
  random_writes "$CFG" "$IMG" "$MODEL" $((SEED + ${#name})) 40
  verify_image "$IMG" "$MODEL"
  stop_daemon
}

# set_member CFG SLOT PATH: points members[SLOT] of CFG at PATH.
set_member() {
  "$PY" - "$@" <<'EOF'
import re, sys
cfg, slot, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(cfg).read()
m = re.search(r"^members = \[(.*)\]$", text, re.M)
members = [x.strip() for x in m.group(1).split(",")]
members[slot] = '"%s"' % path
text = text[:m.start(1)] + ", ".join(members) + text[m.end(1):]
open(cfg, "w").write(text)
EOF
}

# refuse_mount CFG RC EXPECT...: mount.r5cfs exits RC (1: the config does not
# match the members, 2: the array cannot be served) and r5cfs info exits 2
# ("the members do not assemble"), both naming EXPECT; the config and its
# members did not change.
refuse_mount() {
  local cfg=$1 want_rc=$2 before e rc name
  shift 2
  name=$(basename "${cfg%.toml}")
  before=$(snapshot "$name.toml" "$name")
  expect_mount_fails "$cfg"
  [[ $MOUNT_RC == "$want_rc" ]] || fail "mount.r5cfs exited $MOUNT_RC, expected $want_rc: $(cat "$MOUNT_LOG")"
  for e in "$@"; do assert_contains "$MOUNT_LOG" "$e"; done
  rc=0
  "$R5CFS" info "$cfg" >"$WS/out/info.out" 2>&1 || rc=$?
  [[ $rc == 2 ]] || fail "r5cfs info on a refused array exited $rc, expected 2: $(cat "$WS/out/info.out")"
  for e in "$@"; do assert_contains "$WS/out/info.out" "$e"; done
  [[ "$(snapshot "$name.toml" "$name")" == "$before" ]] \
    || fail "refused mount changed files: $(diff <(echo "$before") <(snapshot "$name.toml" "$name"))"
}

log "==== members listed in the wrong order"
prep order
m3=$(member_path "$CFG" 3)
set_member "$CFG" 0 "order/m3.img"
set_member "$CFG" 3 "order/m0.img"
start_daemon "$CFG"
assert_contains "$DAEMON_LOG" "$m3"
assert_contains "$DAEMON_LOG" "slot 3"
assert_not_contains "$DAEMON_LOG" "degraded"
verify_image "$IMG" "$MODEL"
random_writes "$CFG" "$IMG" "$MODEL" 77 40
verify_image "$IMG" "$MODEL"
stop_daemon
"$R5CFS" info "$CFG" >"$WS/out/info.out" || fail "r5cfs info with members out of order failed"
assert_contains "$WS/out/info.out" "$m3"
set_member "$CFG" 0 "order/m0.img"
set_member "$CFG" 3 "order/m3.img"
start_daemon "$CFG"
assert_not_contains "$DAEMON_LOG" "degraded"
verify_image "$IMG" "$MODEL"
stop_daemon
check_parity "$CFG" "$MODEL"

log "==== a member of another array"
OTHER=$(write_config other 5 5 "$MSIZE")
create_array "$OTHER"
prep foreign
foreign=$(member_path "$OTHER" 2)
foreign_sum=$(sha256sum <"$foreign")
set_member "$CFG" 2 "other/m2.img"
start_daemon "$CFG"
assert_contains "$DAEMON_LOG" "another r5cfs array"
assert_contains "$DAEMON_LOG" "$foreign"
assert_contains "$DAEMON_LOG" "degraded"
[[ $(info_get "$CFG" 'j["degraded"]') == True ]] || fail "r5cfs info: array with a foreign member is not degraded"
[[ $(info_get "$CFG" 'j["failed_slots"]') == "[2]" ]] || fail "r5cfs info: failed_slots $(info_get "$CFG" 'j["failed_slots"]'), expected [2]"
"$R5CFS" info "$CFG" >"$WS/out/info.out"
assert_contains "$WS/out/info.out" "another r5cfs array"
verify_image "$IMG" "$MODEL"
stop_daemon
[[ $(sha256sum <"$foreign") == "$foreign_sum" ]] || fail "the daemon wrote to $foreign, a member of another array"
[[ $(info_get "$OTHER" 'j["degraded"]') == False ]] || fail "array 'other' got degraded by the foreign use of its member"

log "==== a stale member"
prep stale
cp "$(member_path "$CFG" 0)" "$WS/stale-m0.copy"
start_daemon "$CFG"
random_writes "$CFG" "$IMG" "$MODEL" 78 40
stop_daemon
cp "$WS/stale-m0.copy" "$(member_path "$CFG" 0)"
rm "$WS/stale-m0.copy"
stale_sum=$(sha256sum <"$(member_path "$CFG" 0)")
"$R5CFS" info "$CFG" >"$WS/out/info.out" || fail "r5cfs info with a stale member failed"
assert_contains "$WS/out/info.out" "stale"
[[ $(info_get "$CFG" 'j["members"][0]["state"]') == stale ]] \
  || fail "r5cfs info: member 0 is '$(info_get "$CFG" 'j["members"][0]["state"]')', expected stale"
start_daemon "$CFG"
assert_contains "$DAEMON_LOG" "stale"
assert_contains "$DAEMON_LOG" "$(member_path "$CFG" 0)"
assert_contains "$DAEMON_LOG" "degraded"
verify_image "$IMG" "$MODEL"
stop_daemon
[[ $(sha256sum <"$(member_path "$CFG" 0)") == "$stale_sum" ]] || fail "the daemon wrote to the stale member"

log "==== a blank member"
prep blank
blank=$(member_path "$CFG" 4)
rm "$blank"
truncate -s "$MSIZE" "$blank"
start_daemon "$CFG"
assert_contains "$DAEMON_LOG" "$blank"
assert_contains "$DAEMON_LOG" "superblock"
assert_contains "$DAEMON_LOG" "degraded"
verify_image "$IMG" "$MODEL"
stop_daemon
[[ $(sha256sum <"$blank") == $(head -c "$MSIZE" /dev/zero | sha256sum) ]] 2>/dev/null \
  || [[ -z $(tr -d '\0' <"$blank" | head -c 1) ]] || fail "the daemon wrote to the blank member $blank"

log "==== two members claim the same slot"
CFG=$(write_config twins 5 5 "$MSIZE")
create_array "$CFG"
cp "$(member_path "$CFG" 1)" "$WS/twins/copy-of-m1.img"
set_member "$CFG" 2 "twins/copy-of-m1.img"
refuse_mount "$CFG" 1 "$(member_path "$CFG" 1)" "$WS/twins/copy-of-m1.img" "slot 1"

log "==== a truncated member"
prep trunc
short=$(member_path "$CFG" 3)
truncate -s 10M "$short"
short_sum=$(sha256sum <"$short")
before=$(snapshot trunc.toml trunc)
# Either refused or left out; both must name the member and its size.
mounted=1
ALLOW_REFUSAL=1 start_daemon "$CFG" || mounted=0
assert_contains "$DAEMON_LOG" "$short"
assert_contains "$DAEMON_LOG" "10485760"
if [[ $mounted == 1 ]]; then
  log "truncated member left out"
  assert_contains "$DAEMON_LOG" "degraded"
  verify_image "$IMG" "$MODEL"
  stop_daemon
else
  log "truncated member refused"
  [[ $MOUNT_RC != 0 ]] || fail "mount.r5cfs with a truncated member exited 0 without mounting"
  [[ "$(snapshot trunc.toml trunc)" == "$before" ]] || fail "refused mount changed files"
fi
[[ $(sha256sum <"$short") == "$short_sum" && $(stat -c %s "$short") == 10485760 ]] \
  || fail "the daemon changed the truncated member"

log "==== geometry mismatches"
CFG=$(write_config geo 5 5 "$MSIZE")
create_array "$CFG"
sed -i 's/^chunk_size = "64KiB"/chunk_size = "128KiB"/' "$CFG"
refuse_mount "$CFG" 1 "$CFG" "array.chunk_size" "128KiB" "64KiB"
sed -i 's/^chunk_size = "128KiB"/chunk_size = "64KiB"/' "$CFG"
sed -i 's/^layout = "left-symmetric"/layout = "right-asymmetric"/' "$CFG"
refuse_mount "$CFG" 1 "$CFG" "array.layout" "right-asymmetric" "left-symmetric"
sed -i 's/^layout = "right-asymmetric"/layout = "left-symmetric"/' "$CFG"
sed -i 's/^level = 5/level = 6/' "$CFG"
refuse_mount "$CFG" 1 "$CFG" "array.level" "6" "5"
sed -i 's/^level = 6/level = 5/' "$CFG"
sed -i 's|^members = \[\(.*\)\]|members = [\1, "geo/m5.img"]|' "$CFG"
refuse_mount "$CFG" 1 "$CFG" "array.members" "6" "5"
[[ ! -e $WS/geo/m5.img ]] || fail "mount.r5cfs created geo/m5.img"

log "==== too many members missing"
prep gone
rm "$(member_path "$CFG" 1)" "$(member_path "$CFG" 3)"
refuse_mount "$CFG" 2 "cannot start" "$(member_path "$CFG" 1)" "$(member_path "$CFG" 3)"
CFG=$(write_config gone6 6 6 "$MSIZE")
create_array "$CFG"
rm "$(member_path "$CFG" 0)" "$(member_path "$CFG" 2)" "$(member_path "$CFG" 5)"
refuse_mount "$CFG" 2 "cannot start" "$(member_path "$CFG" 0)" "$(member_path "$CFG" 5)"
