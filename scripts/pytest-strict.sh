#!/usr/bin/env bash
# Runs pytest and treats "no tests collected" (exit code 5) as the failure it is.
set -uo pipefail
pytest_bin=$1; shift
"$pytest_bin" "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: failing, an empty suite proves nothing" >&2
  exit 1
fi
exit $rc
