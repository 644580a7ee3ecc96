#!/usr/bin/env bash
# The whole test suite N times in a row, each run as `ctest -j4` on this 2-core machine while
# the cores are kept busy with outside work of the script's own (one busy loop per core): the
# races that a quiet machine hides (a fault test once blamed the wrong rank only under load)
# show up here. Stops at the first red run and keeps its log.
#   props/stress.sh N [BUILD_DIR [CTEST_ARGS...]]   (default build; logs in out/stress/)
# CI does not run it (one run there); figures go into the closing notes of the work it checks.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:?usage: props/stress.sh N [BUILD_DIR [CTEST_ARGS...]]}
build=${2:-build}
shift $(($# < 2 ? $# : 2))
[ -f "$build/CTestTestfile.cmake" ] || { echo "stress: no tests in $build (run ./setup.sh)"; exit 2; }
out=out/stress
mkdir -p "$out"

load=()
stop_load() { [ ${#load[@]} -eq 0 ] || kill "${load[@]}" 2>/dev/null || true; }
trap stop_load EXIT
for _ in $(seq "$(nproc)"); do
  bash -c 'while :; do :; done' &
  load+=($!)
done

summary=$out/summary.txt
: >"$summary"
for i in $(seq "$n"); do
  log=$out/run-$i.log
  t0=$(date +%s)
  rc=0
  ctest --test-dir "$build" -j4 --output-on-failure "$@" >"$log" 2>&1 || rc=$?
  secs=$(($(date +%s) - t0))
  line=$(grep -E '^[0-9]+% tests passed' "$log" || echo "no summary line")
  echo "run $i/$n: rc=$rc ${secs}s $line" | tee -a "$summary"
  if [ "$rc" -ne 0 ]; then
    grep -E '^\s+[0-9]+ - .*\((Failed|Timeout|Not Run|SEGFAULT|Subprocess aborted)' "$log" || true
    echo "stress: run $i failed; its log: $log"
    exit 1
  fi
  rm -f "$log"
done
echo "stress: $n consecutive green runs"
