#!/usr/bin/env bash
# One-step, idempotent set-up on a fresh Debian bookworm machine of this project's kind:
#   1. Debian packages (compilers are already there): RapidCheck, GoogleTest, Google Benchmark,
#      nlohmann/json, Gloo headers (the torch wheel ships Gloo compiled in but not its headers), METIS,
#      ccache.
#   2. A project-local virtual environment .venv with torch==2.11.0 from PyPI; its LibTorch is what
#      the build links (torch.utils.cmake_prefix_path).
#   3. The Python test dependencies and anemoi-models 0.19.0 (the peer of the tests and benchmarks).
#   4. Configure and build into build/ (ccache'd), and point .venv at the package in python/.
#      Nothing is downloaded after this step.
# Environment: GRAPHSHARD_BUILD_DIR (default build), GRAPHSHARD_CUDA (ON/OFF, default: ON when nvcc
# is found), GRAPHSHARD_SANITIZE (address,undefined | thread), GRAPHSHARD_BUILD_TYPE (Release),
# GRAPHSHARD_BENCH (ON/OFF, default ON), GRAPHSHARD_TEST_TIMEOUT_SCALE (multiplier of every test's
# timeout, default 1). clang and its runtime serve the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)

packages=(build-essential cmake ccache python3-venv librapidcheck-dev libgtest-dev libgmock-dev
          googletest libbenchmark-dev nlohmann-json3-dev libgloo-dev libmetis-dev clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
if ! .venv/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.11.0")' 2>/dev/null; then
  echo "setup: installing torch==2.11.0 into .venv (large download, once)"
  .venv/bin/pip install -q --progress-bar off torch==2.11.0
fi
if ! .venv/bin/python -c 'import matplotlib' 2>/dev/null; then
  .venv/bin/pip install -q --progress-bar off matplotlib
fi
# Python tests and the benchmark peer: pytest, Hypothesis, and anemoi-models 0.19.0 with what its
# distributed and layers modules import. anemoi-models pins torch<2.11 (and anemoi-utils and
# hydra-core pull more than these modules need), so they come without their dependencies, and
# hydra's own pins (omegaconf<2.4, antlr4 4.9) are named here.
peers=(anemoi-models==0.19.0 anemoi-utils==0.5.14 hydra-core==1.3.8 omegaconf==2.3.0
       antlr4-python3-runtime==4.9.3 PyYAML==6.0.4)
if ! .venv/bin/python -c 'import pytest, hypothesis, torch_geometric, einops
import anemoi.models.layers.mapper, anemoi.models.layers.processor' 2>/dev/null; then
  echo "setup: installing the Python test dependencies and anemoi-models into .venv"
  .venv/bin/pip install -q --progress-bar off pytest==9.2.0 hypothesis==6.170.17 \
    torch_geometric==2.8.1 einops==0.8.2
  .venv/bin/pip install -q --progress-bar off --no-deps "${peers[@]}"
fi

build=${GRAPHSHARD_BUILD_DIR:-build}
prefix=$(.venv/bin/python -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
cuda_flag=()
[ -n "${GRAPHSHARD_CUDA:-}" ] && cuda_flag=(-DGRAPHSHARD_CUDA="$GRAPHSHARD_CUDA")
bench_flag=()
[ -n "${GRAPHSHARD_BENCH:-}" ] && bench_flag=(-DGRAPHSHARD_BENCH="$GRAPHSHARD_BENCH")
sanitize_flag=()
[ -n "${GRAPHSHARD_SANITIZE:-}" ] && sanitize_flag=(-DGRAPHSHARD_SANITIZE="$GRAPHSHARD_SANITIZE")
[ -n "${GRAPHSHARD_PYTHON:-}" ] && sanitize_flag+=(-DGRAPHSHARD_PYTHON="$GRAPHSHARD_PYTHON")
[ -n "${GRAPHSHARD_TEST_TIMEOUT_SCALE:-}" ] &&
  sanitize_flag+=(-DGRAPHSHARD_TEST_TIMEOUT_SCALE="$GRAPHSHARD_TEST_TIMEOUT_SCALE")
mkdir -p "$build"
if [ ! -f "$build/CMakeCache.txt" ] || [ -n "${cuda_flag[*]}${bench_flag[*]}${sanitize_flag[*]}" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE="${GRAPHSHARD_BUILD_TYPE:-Release}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DPython3_EXECUTABLE="$root/.venv/bin/python" \
    "${cuda_flag[@]}" "${bench_flag[@]}" "${sanitize_flag[@]}" >"$build/configure.log" 2>&1 \
    || { cat "$build/configure.log"; exit 1; }
fi
# Compiler caches hit across clones: paths under the repository are hashed relative to it.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
jobs=${GRAPHSHARD_JOBS:-$(nproc)}
cmake --build "$build" -j "$jobs"
# The Python package from this checkout: python/ on .venv's path; its operators are this
# build's libgraphshard_ops.so (graphshard/_ops.py finds build/, or GRAPHSHARD_BUILD_DIR).
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$root/python" >"$site/graphshard.pth"
