#!/usr/bin/env bash
# Configures a clang build with the libFuzzer targets, builds only them, and fuzzes each for
# SECONDS on a copy of its seed corpus (ctest -L fuzz). Crash inputs are left in
# BUILD_DIR/props/robust/fuzz/artifacts/; a crash fails the run.
#
#   props/robust/fuzz/run_fuzz.sh BUILD_DIR SECONDS
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$1
seconds=$2
repo=$(cd "$(dirname "$0")/../../.." && pwd)
python=${GRAPHSHARD_PYTHON:-$repo/.venv/bin/python}
torch_prefix=$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')

CC=clang CXX=clang++ cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRAPHSHARD_FUZZ=ON -DGRAPHSHARD_FUZZ_SECONDS="$seconds" -DGRAPHSHARD_CUDA=OFF \
  -DGRAPHSHARD_BENCH=OFF -DCMAKE_PREFIX_PATH="$torch_prefix" -DPython3_EXECUTABLE="$python"
cmake --build "$build_dir" --target fuzz_study_config fuzz_graph_file -j "$(nproc)"
rc=0
ctest --test-dir "$build_dir" -L fuzz --output-on-failure || rc=$?
# libFuzzer's final statistics of each target (executions, executions per second, corpus).
grep -E 'Testing: fuzz|^stat::' "$build_dir/Testing/Temporary/LastTest.log" || true
exit "$rc"
