"""The parent's side of the anemoi-layer tests: one spawned run of the cases of one world size
(anemoi_cases.rank_all), and the checks of its results, which every test module runs on its own:
test_anemoi.py (W = 2, both layers), test_anemoi_w4_mapper.py and test_anemoi_w4_processor.py
(W = 4, one layer each: a spawn of four ranks costs seconds, so each file has one and its own
time limit).

Per rank, anemoi's and graphshard's outputs and gradients of every input and weight must agree
(float32: rtol 1e-5, atol 1e-6; reduction orders may differ, so not bitwise); both must agree with
the unsharded layer (weights' gradients summed over ranks); in float64 graphshard matches the
unsharded layer at 1e-10 (anemoi is looser there: its reduces run in float32, SPEC [differs]).
The swap must have happened (identities inside and after the block, graphshard operators seen
only in the swapped run), and each side's shard_graph_to_local must take the other's dataclasses.
"""

from __future__ import annotations

import time

import torch

from anemoi_cases import rank_all
from conftest import run_ranks

RTOL32, ATOL32 = 1e-5, 1e-6  # anemoi vs graphshard, float32
RTOL_REF32, ATOL_REF32 = 1e-4, 1e-5  # sharded vs unsharded layer, float32 (other summation order)
TOL64 = 1e-10
RUN_TIMEOUT = 150  # seconds for one spawned run (all its cases): a hang fails


def spawn_layers(w, layers=("mapper", "processor")):
    """The cases of `layers` on w spawned ranks, once: (w, the ranks' results)."""
    t0 = time.monotonic()
    results = run_ranks(w, rank_all, tuple(layers), timeout=RUN_TIMEOUT, group_timeout=60)
    wall = time.monotonic() - t0
    print(f"\n[test_anemoi] W={w} {'+'.join(layers)}: spawned run {wall:.1f} s "
          f"(cases {max(r['seconds'] for r in results):.1f} s)")
    return w, results


def _maxdiff(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def _compare(a: dict, b: dict, rtol, atol, what):
    assert a.keys() == b.keys(), f"{what}: different tensors: {sorted(a.keys() ^ b.keys())}"
    worst, bad = 0.0, []
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, (
            f"{what}: {k}: {a[k].dtype}{tuple(a[k].shape)} vs {b[k].dtype}{tuple(b[k].shape)}"
        )
        d = _maxdiff(a[k], b[k])
        worst = max(worst, d)
        if not torch.allclose(a[k], b[k], rtol=rtol, atol=atol):
            bad.append(f"{k} (max |diff| {d:.3g})")
    assert not bad, f"{what}: not allclose (rtol {rtol}, atol {atol}): {', '.join(bad)}"
    return worst


MAPPER_CASES = ["mapper_sorted", "mapper_chunks3_src_sharded_keep_sharded", "mapper_unsorted_chunks2"]
PROCESSOR_CASES = ["processor_sorted", "processor_unsorted"]
FLOAT32_CASES = MAPPER_CASES + PROCESSOR_CASES


def check_layer_same_with_and_without_graphshard(ranks, case):
    w, results = ranks
    worst = 0.0
    for rank, r in enumerate(results):
        c = r["cases"][case]
        assert c["anemoi"], case
        n_weights = sum(k.startswith("w_") for k in c["anemoi"])
        assert n_weights >= 10, f"{case}: only {n_weights} weight gradients"
        worst = max(worst, _compare(c["anemoi"], c["graphshard"], RTOL32, ATOL32, f"{case} W={w} rank {rank}"))
    print(f"[test_anemoi] W={w} {case}: anemoi vs graphshard max |diff| {worst:.3g}")


def check_sharded_layer_equals_unsharded(ranks, case):
    """Both implementations: outputs and input gradients per rank, weight gradients summed."""
    w, results = ranks
    worst = {"anemoi": 0.0, "graphshard": 0.0}
    for rank, r in enumerate(results):
        c = r["cases"][case]
        ref_inputs = {k: v for k, v in c["ref"].items() if not k.startswith("w_")}
        ref_weights = {k: v for k, v in c["ref"].items() if k.startswith("w_")}
        for impl in worst:
            got_inputs = {k: v for k, v in c[impl].items() if not k.startswith("w_")}
            what = f"{case} W={w} rank {rank} {impl} vs unsharded"
            worst[impl] = max(worst[impl], _compare(got_inputs, ref_inputs, RTOL_REF32, ATOL_REF32, what))
            worst[impl] = max(worst[impl], _compare(c[f"{impl}_wsum"], ref_weights, RTOL_REF32, ATOL_REF32, what))
    print(f"[test_anemoi] W={w} {case}: vs unsharded max |diff| anemoi {worst['anemoi']:.3g}, "
          f"graphshard {worst['graphshard']:.3g}")


def check_float64_graphshard_matches_unsharded_tightly(ranks):
    w, results = ranks
    worst_gs, worst_an = 0.0, 0.0
    for rank, r in enumerate(results):
        c = r["cases"]["mapper_float64"]
        assert c["graphshard"]["out"].dtype == torch.float64
        ref_inputs = {k: v for k, v in c["ref"].items() if not k.startswith("w_")}
        ref_weights = {k: v for k, v in c["ref"].items() if k.startswith("w_")}
        gs_inputs = {k: v for k, v in c["graphshard"].items() if not k.startswith("w_")}
        what = f"float64 W={w} rank {rank} graphshard vs unsharded"
        worst_gs = max(worst_gs, _compare(gs_inputs, ref_inputs, TOL64, TOL64, what))
        worst_gs = max(worst_gs, _compare(c["graphshard_wsum"], ref_weights, TOL64, TOL64, what))
        # anemoi's reduces cast to float32 (SPEC [differs]): agreement only to float32 precision
        worst_an = max(worst_an, _compare(c["anemoi"], c["graphshard"], RTOL32, ATOL32, f"float64 W={w} anemoi vs gs"))
    print(f"[test_anemoi] W={w} float64 mapper: graphshard vs unsharded max |diff| {worst_gs:.3g}; "
          f"anemoi vs graphshard {worst_an:.3g}")


def check_swap_really_happened(ranks):
    w, results = ranks
    for rank, r in enumerate(results):
        assert r["cases"], f"rank {rank}: no case ran"
        for case, c in r["cases"].items():
            assert all(c["inside"].values()), f"{case} rank {rank}: not swapped inside the block: {c['inside']}"
            assert all(c["after"].values()), f"{case} rank {rank}: not restored after the block: {c['after']}"
            assert c["graphshard_ops"] > 0, f"{case} rank {rank}: no graphshard operator ran inside the block"
            assert c["graphshard_ops_in_anemoi_run"] == 0, (
                f"{case} rank {rank}: {c['graphshard_ops_in_anemoi_run']} graphshard operators ran outside the block"
            )


def check_dataclass_mixing_both_ways(ranks):
    """graphshard's shard_graph_to_local on anemoi's GraphPartition/BipartiteGraphShardInfo, and
    anemoi's on graphshard's (it calls partition._relabel_dst_nodes), give the same, bitwise."""
    w, results = ranks
    for rank, r in enumerate(results):
        assert r["mixing"], f"rank {rank}: the mixing case did not run"
        for name, res in r["mixing"].items():
            assert res["partition_fields_equal"], f"{name} rank {rank}"
            a, g = res["anemoi"], res["graphshard"]
            for i, (x, y) in enumerate(zip(a[:4], g[:4])):
                assert x.shape == y.shape and torch.equal(x, y), f"{name} rank {rank}: output {i} differs"
            assert list(a[4:]) == [list(v) if v is not None else None for v in g[4:]], f"{name} rank {rank}"
