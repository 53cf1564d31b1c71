#!/bin/bash
# Every man page renders without groff warnings.
set -euo pipefail
status=0
for page in "$SRCDIR"/man/*.[0-9]; do
  out=$(groff -man -ww -z "$page" 2>&1) || true
  if [[ -n "$out" || ! -s "$page" ]]; then
    echo "FAIL: $page: ${out:-empty page}" >&2
    status=1
  fi
done
exit $status
