#!/bin/bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan into
# build-fuzz/ and runs each for FUZZ_SECONDS (default 600), one after the other:
#   scripts/fuzz.sh [target...]      targets: config member_superblock
#                                    journal_superblock meta_block journal_scan
# Each target's working corpus is build-fuzz/corpus/<target> (seeded from
# tests/fuzz/corpus/<target>); crashing inputs land in build-fuzz/crashes/<target>/.
# Copy them to tests/fuzz/crashes/<target>/ once fixed: the unit suite replays them.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(config member_superblock journal_superblock meta_block journal_scan)
targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
seconds=${FUZZ_SECONDS:-600}

# clang and its runtimes (libclang_rt.fuzzer comes with libclang-rt-NN-dev on Debian 12).
scripts/deps.sh
if ! command -v clang++ >/dev/null || [[ ! -f $(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a) ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "fuzz: clang or libclang_rt.fuzzer missing; run this script as root to install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null
fi

[[ -f build-fuzz/build.ninja ]] ||
  CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-fuzz $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}")

# UBSan findings are crashes too, not just messages.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t crashes=build-fuzz/crashes/$t log=build-fuzz/fuzz-$t.log
  mkdir -p "$corpus" "$crashes"
  if [[ -d tests/fuzz/corpus/$t ]]; then cp tests/fuzz/corpus/$t/* "$corpus"/; fi
  echo "fuzz: $t for ${seconds}s (log $log)"
  rc=0
  build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if ((rc == 0)); then
    echo "fuzz: $t: ${execs:-?} executions, no crash"
  else
    status=1
    echo "fuzz: $t: ${execs:-?} executions, CRASHED (exit $rc); inputs in $crashes/:"
    ls "$crashes"
    grep -m 3 -E 'ERROR|invariant violated|runtime error' "$log" || true
  fi
done
exit $status
