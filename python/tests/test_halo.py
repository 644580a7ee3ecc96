"""graphshard.distributed.halo and graph.halo_exchange (SPEC §3b) over Gloo, W = 2 and 3.

Per rank, on random plain graphs, symmetric and directed, balanced and uneven node ranges:
- build_halo_info equals a brute-force computation from the whole graph (send lists from what the
  peers' edges need, so directed graphs are right), and on symmetric graphs every field equals
  anemoi-models' build_halo_info; verify_halo_info accepts it;
- halo_exchange's forward equals the rows picked from the whole-world features, its backward the
  rank-ordered sum of the halo gradients at their owners (float64, bitwise), and on symmetric
  graphs both equal anemoi's halo_exchange;
- bad arguments raise ValueError.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.distributed as dist

from conftest import bitwise_equal, run_ranks

CASES = 12


def _graph(rng: random.Random, symmetric: bool):
    n = rng.randint(0, 40)
    e = 0 if n == 0 else rng.randint(0, 160)
    src = [rng.randrange(n) for _ in range(e)]
    dst = [rng.randrange(n) for _ in range(e)]
    if symmetric:
        src, dst = src + dst, dst + src
    order = sorted(range(len(dst)), key=lambda i: dst[i])
    ei = torch.tensor([[src[i] for i in order], [dst[i] for i in order]], dtype=torch.int64).reshape(2, -1)
    return n, ei


def _splits(rng: random.Random, n: int, w: int) -> list[int]:
    cuts = sorted([0, n] + [rng.randint(0, n) for _ in range(w - 1)])
    return [cuts[i + 1] - cuts[i] for i in range(w)]


def _brute_force(ei: torch.Tensor, splits: list[int], r: int):
    """(halo global ids ascending, send lists [q] of local ids) of rank r, from the whole graph."""
    starts = [sum(splits[:q]) for q in range(len(splits))]

    def owner(v):
        return max(q for q in range(len(splits)) if starts[q] <= v and (v < starts[q] + splits[q]))

    lo, hi = starts[r], starts[r] + splits[r]
    halo, send = set(), [set() for _ in splits]
    for s, d in ei.t().tolist():
        q = owner(d)
        if q == r and not lo <= s < hi:
            halo.add(s)
        if q != r and lo <= s < hi:
            send[q].add(s - lo)
    return sorted(halo), [sorted(x) for x in send]


def halo_rank(rank: int, w: int, seed: int) -> dict:
    from anemoi.models.distributed import graph as AG
    from anemoi.models.distributed import halo as AH
    from anemoi.models.distributed.khop_edges import GraphPartition as AnemoiPartition

    from graphshard.distributed import graph as G
    from graphshard.distributed import halo as H
    from graphshard.distributed.khop_edges import GraphPartition

    group = dist.group.WORLD
    rng = random.Random(seed)
    fails, counted = [], {"info": 0, "anemoi": 0, "exchange": 0}
    for i in range(CASES):
        symmetric = i % 2 == 0
        n, ei = _graph(rng, symmetric)
        splits = [n // w + (1 if q < n % w else 0) for q in range(w)] if i % 3 else _splits(rng, n, w)
        starts = [sum(splits[:q]) for q in range(w)]
        edge_splits = [int(((ei[1] >= starts[q]) & (ei[1] < starts[q] + splits[q])).sum()) for q in range(w)]
        p = GraphPartition((n, n), ei.size(1), w, splits, edge_splits)
        what = f"case {i} (n={n}, E={ei.size(1)}, symmetric={symmetric}, splits={splits}) rank {rank}"

        h = H.build_halo_info(p, ei, group, debug=True)
        halo, send = _brute_force(ei, splits, rank)
        ok = (
            h.num_local_nodes == splits[rank]
            and h.num_halo_nodes == len(halo)
            and [t.tolist() for t in h.send_indices] == send
            and torch.cat(h.recv_global_ids).tolist() == halo
            and sum(h.recv_counts) == len(halo)
        )
        if not ok:
            fails.append(f"{what}: build_halo_info differs from the brute force: {h}")
        H.verify_halo_info(h, p, group)
        counted["info"] += 1

        lo = starts[rank]
        x_full = torch.arange(n * 3, dtype=torch.float64).reshape(n, 3) * 0.5
        x = x_full[lo : lo + splits[rank]].clone().requires_grad_(True)
        y = G.halo_exchange(x, h, group)
        expected = torch.cat([x_full[lo : lo + splits[rank]], x_full[halo]]) if n else x_full
        if not bitwise_equal(y.detach(), expected):
            fails.append(f"{what}: halo_exchange forward != picked rows")
        gy = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + i + 1000 * rank))
        y.backward(gy)
        counted["exchange"] += 1

        if symmetric:  # anemoi's assumption holds: the two must agree field by field
            ap = AnemoiPartition((n, n), ei.size(1), w, splits, edge_splits)
            a = AH.build_halo_info(ap, ei, group, debug=True)
            same = (
                a.num_local_nodes == h.num_local_nodes
                and a.num_halo_nodes == h.num_halo_nodes
                and [t.tolist() for t in a.send_indices] == [t.tolist() for t in h.send_indices]
                and tuple(a.recv_counts) == tuple(h.recv_counts)
                and torch.equal(a.edge_index_local, h.edge_index_local)
            )
            if not same:
                fails.append(f"{what}: differs from anemoi's build_halo_info")
            xa = x.detach().clone().requires_grad_(True)
            ya = AG.halo_exchange(xa, a, group)
            ya.backward(gy)
            if not (bitwise_equal(ya.detach(), y.detach()) and torch.allclose(xa.grad, x.grad, rtol=1e-12, atol=1e-12)):
                fails.append(f"{what}: halo_exchange differs from anemoi's")
            counted["anemoi"] += 1
        # The gradient: per node, the sum in rank order of every holder's (own rows at their place).
        grads = [None] * w
        dist.all_gather_object(grads, (gy, h.num_local_nodes, torch.cat(h.recv_global_ids).tolist()))
        want = torch.zeros_like(gy[: splits[rank]])
        for q in range(w):
            if q == rank:
                want += gy[: splits[rank]]
                continue
            gq, local_q, ids_q = grads[q]
            for j, gid in enumerate(ids_q):
                if lo <= gid < lo + splits[rank]:
                    want[gid - lo] += gq[local_q + j]
        if not bitwise_equal(x.grad, want):
            fails.append(f"{what}: halo_exchange backward != rank-ordered sum")

    errors = []
    h = H.build_halo_info(p, ei, group)
    bad_x = torch.zeros(h.num_local_nodes + 1, 3)
    for name, fn in [
        ("rows", lambda: G.halo_exchange(bad_x, h, group)),
        ("num_parts", lambda: H.build_halo_info(GraphPartition((n, n), ei.size(1), w + 1, splits + [0], edge_splits + [0]), ei, group)),
        ("debug", lambda: H.verify_halo_info(h, p, group)),
    ]:
        try:
            fn()
            errors.append(f"{name}: no error")
        except ValueError as e:
            if "graphshard::" not in str(e):
                errors.append(f"{name}: {e}")
    return {"fails": fails, "errors": errors, "counted": counted}


@pytest.mark.parametrize("w", [2, 3])
def test_halo(w):
    results = run_ranks(w, halo_rank, 4242 + w, timeout=120)
    for res in results:
        assert not res["fails"], "\n".join(res["fails"][:3])
        assert not res["errors"], res["errors"]
        assert res["counted"]["info"] == CASES and res["counted"]["anemoi"] == CASES // 2
