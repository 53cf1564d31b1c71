#!/bin/bash
# Builds r5cfs with sanitizers and runs the whole test suite under them (unit
# tests, man page lint, end-to-end tests: those start the sanitized
# mount.r5cfs and r5cfs from the build directory, so the daemon is checked
# too). Any sanitizer report fails the run.
#
# Usage: scripts/sanitize.sh [asan|tsan|all] [MESON TEST ARGS...]
#   asan  build-asan: AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer
#   tsan  build-tsan: ThreadSanitizer
#   all   both, one after the other (default)
# Extra arguments go to `meson test`, e.g. `--suite unit` or test names.
# Environment:
#   SAN_TIMEOUT_MULTIPLIER  overrides the meson --timeout-multiplier
#                           (default 4 for asan, 15 for tsan)
#   SAN_CC / SAN_CXX        compilers for a fresh configure (default: gcc/g++)
#   SAN_ASAN_OPTIONS / SAN_TSAN_OPTIONS  appended to ASAN_OPTIONS / TSAN_OPTIONS,
#                           e.g. SAN_ASAN_OPTIONS=fast_unwind_on_malloc=0 for
#                           complete allocation stacks through libfuse (built
#                           without frame pointers; slow)
#   SAN_EXCLUDE             space-separated test names left out of a run
#                           without explicit test arguments (default: none for
#                           asan; "crash_enum" for tsan, which takes hours
#                           under TSan on a small machine: run it alone with
#                           SAN_EXCLUDE= scripts/sanitize.sh tsan crash_enum)
#
# Reports: every sanitized process writes its reports to
# build-X/sanitizer-reports/<kind>.<pid> (log_path), not to stderr, because
# the daemon detaches from its terminal and e2e tests discard the logs of
# passing runs. After the tests the script prints every report file and fails
# if there is any, even when all tests passed. Suppressions (false positives
# only, each explained) are in scripts/tsan.supp and scripts/lsan.supp.
# The braces make bash read the whole script before running it, so editing
# it during a (long) run does not change the run.
{
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

variants=(asan tsan)
if [[ $# -gt 0 && $1 != -* ]]; then
  case $1 in
    asan | tsan) variants=("$1") ;;
    all) ;;
    *) echo "usage: $0 [asan|tsan|all] [meson test args...]" >&2; exit 2 ;;
  esac
  shift
fi

scripts/deps.sh
# Sanitizer runtimes of gcc 12 (normally pulled in by g++ already).
missing=()
for p in libasan8 libubsan1 libtsan2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "sanitize: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# summary BUILDDIR: one line per test from meson's testlog.json.
summary() {
  python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    r = json.loads(line)
    res = r["result"]
    key = "OK" if res in ("OK", "EXPECTEDFAIL") else "SKIP" if res == "SKIP" else "FAIL"
    counts[key] += 1
    print(f"  {r['name']:<28} {res:<8} {r['duration']:8.1f}s")
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
}

overall=0
results=()
for v in "${variants[@]}"; do
  dir=build-$v
  case $v in
    asan)
      sanitize=address,undefined
      mult=${SAN_TIMEOUT_MULTIPLIER:-4}
      ;;
    tsan)
      sanitize=thread
      mult=${SAN_TIMEOUT_MULTIPLIER:-15}
      ;;
  esac
  exclude=${SAN_EXCLUDE-}
  [[ $v == tsan ]] && exclude=${SAN_EXCLUDE-crash_enum}
  echo "=== $v: configure and build $dir (b_sanitize=$sanitize)"
  t0=$SECONDS
  # -fno-omit-frame-pointer: complete stacks in the reports.
  # -Wno-maybe-uninitialized: gcc 12 with -fsanitize=address or =thread warns
  # "may be used uninitialized" inside std::vector's move constructor when a
  # std::variant<DataEntry, ParityEntry, ...> is moved (tests/journal_log_test.cc,
  # src/engine/flusher.cc); the instrumentation defeats the flow analysis and
  # the warning does not appear without sanitizers, so with werror=true it
  # would only break the build.
  opts=(-Dbuildtype=debugoptimized -Db_sanitize="$sanitize" -Db_lundef=false
        "-Dcpp_args=-fno-omit-frame-pointer -Wno-maybe-uninitialized")
  if [[ ! -f $dir/build.ninja ]]; then
    CC=${SAN_CC:-gcc} CXX=${SAN_CXX:-g++} meson setup "$dir" "${opts[@]}" >/dev/null
  else
    meson configure "$dir" "${opts[@]}" >/dev/null
  fi
  ninja -C "$dir"
  build_time=$((SECONDS - t0))

  reports=$ROOT/$dir/sanitizer-reports
  rm -rf "$reports"
  mkdir -p "$reports"
  # Every report is fatal (the process exits non-zero, the test fails) and
  # lands in $reports. Suppression files are applied when present.
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$reports/asan${SAN_ASAN_OPTIONS:+:$SAN_ASAN_OPTIONS}"
  export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
  # detect_deadlocks=0: TSan's lock-order checker tracks at most 64 mutexes
  # held by one thread and dies with "CHECK failed:
  # sanitizer_deadlock_detector.h:67 n_all_locks_ < 64" beyond that;
  # RaidArray::run() holds one row lock per row of a request (up to 1024,
  # taken in ascending index order, so without inversions), which a whole-array
  # read in journaled_cache_test does. Data races are still reported.
  # SAN_TSAN_DEADLOCKS=1 turns the checker back on.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:detect_deadlocks=${SAN_TSAN_DEADLOCKS:-0}:history_size=4:suppressions=$ROOT/scripts/tsan.supp:print_suppressions=0:log_path=$reports/tsan${SAN_TSAN_OPTIONS:+:$SAN_TSAN_OPTIONS}"

  # Leave out the SAN_EXCLUDE tests, only when no meson test arguments were
  # given (suites and test names on the command line are used as they are).
  args=("$@")
  if [[ -n $exclude && $# -eq 0 ]]; then
    mapfile -t args < <(meson test -C "$dir" --list 2>/dev/null | sed -n 's|^r5cfs:[^ ]* / ||p' | grep -vxF -f <(tr ' ' '\n' <<<"$exclude"))
    echo "=== $v: left out (SAN_EXCLUDE): $exclude"
  fi
  echo "=== $v: meson test -C $dir --timeout-multiplier $mult ${args[*]}"
  t0=$SECONDS
  status=0
  meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult" "${args[@]}" || status=$?
  test_time=$((SECONDS - t0))
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS

  nreports=0
  for f in "$reports"/*; do
    [[ -e $f ]] || continue
    nreports=$((nreports + 1))
    echo "################ sanitizer report $f"
    cat "$f"
  done
  echo "=== $v: build ${build_time}s, tests ${test_time}s, meson test status $status, $nreports sanitizer report file(s)"
  summary "$dir"
  if ((status != 0 || nreports != 0)); then
    overall=1
    results+=("$v: FAILED (meson test status $status, $nreports report(s) in $reports)")
  else
    results+=("$v: passed, zero sanitizer reports")
  fi
done
printf '%s\n' "${results[@]}"
exit $overall
}
