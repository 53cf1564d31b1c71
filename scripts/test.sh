#!/bin/bash
# Quick start, command 2: install dependencies, build, and run every test
# (unit tests, man page lint, end-to-end tests with real FUSE mounts, loop
# devices and ext4; the end-to-end tests need root and /dev/fuse).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
status=0
meson test -C build --print-errorlogs "$@" || status=$?
# One summary line any CI can read.
python3 - <<'PY'
import json
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open("build/meson-logs/testlog.json"):
    r = json.loads(line)["result"]
    key = "OK" if r in ("OK", "EXPECTEDFAIL") else "SKIP" if r == "SKIP" else "FAIL"
    counts[key] += 1
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
exit $status
