#!/usr/bin/env bash
# End-to-end checks of `graphshard study` as a user runs it.
#   study_cli_test.sh MODE GRAPHSHARD SOURCE_DIR PYTHON
# MODE quickstart: the README's main job (sim), with plots; every world size verified.
# MODE gloo-file:  a graph exported by bench/study/export_graph.py, run over Gloo processes, verified.
# MODE schemes:    two partitioning schemes x both source exchanges over Gloo, verified, compared.
# MODE bad-config: a wrong config fails with exit code 2 and a message naming the key path.
set -euo pipefail
mode=$1 gs=$2 src=$3 py=$4
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# results.json: every world size present and verified true.
expect_verified() {
  "$py" - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/results.json"))
ws = [w["world_size"] for w in r["world_sizes"]]
assert ws == json.loads(sys.argv[2]), f"world sizes {ws}"
bad = [w["world_size"] for w in r["world_sizes"] if w["verified"] is not True]
assert not bad, f"not verified at W={bad}"
print(f"verified at W={ws}")
PY
}

case $mode in
  quickstart)
    "$gs" study "$src/configs/quickstart.json" --out "$out/qs"
    expect_verified "$out/qs" "[1, 2, 4, 8]"
    for png in time bytes imbalance; do test -s "$out/qs/$png.png"; done
    test -s "$out/qs/results.csv"
    ;;
  gloo-file)
    "$py" "$src/bench/study/export_graph.py" "$out/g.safetensors" --random 500 300 2400
    cat > "$out/study.json" <<'JSON'
{"name": "file-gloo", "graph": {"kind": "file", "path": "g.safetensors"},
 "features": {"channels": 8, "edge_channels": 3, "dtype": "float64"},
 "engine": "gloo", "world_sizes": [1, 2, 3], "repeats": 1, "warmup": 0, "verify": true}
JSON
    "$gs" study "$out/study.json" --out "$out/r" --no-plots
    expect_verified "$out/r" "[1, 2, 3]"
    ;;
  schemes)
    cat > "$out/study.json" <<'JSON'
{"name": "schemes", "graph": {"kind": "processor", "mesh_refinement": 2},
 "features": {"channels": 8, "edge_channels": 3, "dtype": "float64"},
 "partition": {"scheme": ["contiguous", "metis"]}, "src_exchange": ["all_gather", "halo"],
 "engine": "gloo", "world_sizes": [1, 2, 3], "repeats": 1, "warmup": 0, "verify": true}
JSON
    "$gs" study "$out/study.json" --out "$out/r" > "$out/table"
    cat "$out/table"
    expect_verified "$out/r" "[1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]"
    grep -Eq "^metis +halo +3 " "$out/table"
    for png in bytes halo edge_imbalance node_imbalance time; do test -s "$out/r/compare_$png.png"; done
    ;;
  bad-config)
    echo '{"name": "x", "world_sizes": [0], "graph": {"kind": "processor", "mesh_refinement": 2}}' \
      > "$out/bad.json"
    set +e
    "$gs" study "$out/bad.json" --out "$out/r" 2> "$out/err"
    rc=$?
    set -e
    cat "$out/err"
    test $rc -eq 2
    grep -q "world_sizes" "$out/err"
    ! grep -q "Exception raised from" "$out/err"  # a message, not a stack trace
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
