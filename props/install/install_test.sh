#!/usr/bin/env bash
# `cmake --install` of this build into a fresh prefix, then a consumer project outside the tree
# configured with find_package(graphshard), built and run (ctest install.consumer).
#   install_test.sh BUILD_DIR SOURCE_DIR PYTHON
set -euo pipefail
build=$1 src=$2 py=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
test -f "$work/prefix/include/graphshard/primitives.h"
torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
cmake -S "$src/props/install/consumer" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix;$torch_prefix" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j2 >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"
