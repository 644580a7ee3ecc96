"""A message-passing layer sharded over the ranks of a torch.distributed group with graphshard.

    torchrun --nproc-per-node 2 python/examples/sharded_layer.py
    build/graphshard launch -n 2 -- .venv/bin/python python/examples/sharded_layer.py

Every rank builds the same random bipartite graph (seeded), keeps its destinations, their edges
and the sources they use (shard_graph_to_local), runs the layer on its piece, and gathers the
output. Rank 0 checks the output and the gradients (the weights' summed over the ranks) against the unsharded layer and prints the
time of one forward + backward.
"""

import time

import torch
import torch.distributed as dist

from graphshard.distributed.graph import gather_tensor
from graphshard.distributed.khop_edges import build_graph_partition
from graphshard.distributed.khop_edges import shard_graph_to_local
from graphshard.distributed.khop_edges import sort_edge_index_by_dst
from graphshard.distributed.shapes import BipartiteGraphShardInfo


def layer(x_src, x_dst, edge_attr, edge_index, w_src, w_edge, w_dst):
    """Messages x_src[src] @ w_src + edge_attr @ w_edge summed per destination, plus x_dst @ w_dst."""
    messages = x_src.index_select(0, edge_index[0]) @ w_src + edge_attr @ w_edge
    out = x_dst @ w_dst
    return out.index_add(0, edge_index[1], messages)


def main():
    dist.init_process_group("gloo")  # RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the launcher
    group, rank = dist.group.WORLD, dist.get_rank()
    g = torch.Generator().manual_seed(0)
    n_src, n_dst, n_edges, channels = 4000, 3000, 40000, 32
    edge_index, perm = sort_edge_index_by_dst(
        torch.stack([torch.randint(n_src, (n_edges,), generator=g), torch.randint(n_dst, (n_edges,), generator=g)])
    )
    x_src = torch.randn(n_src, channels, generator=g, requires_grad=True)
    x_dst = torch.randn(n_dst, channels, generator=g, requires_grad=True)
    edge_attr = torch.randn(n_edges, 4, generator=g, requires_grad=True)
    weights = [torch.randn(channels, channels, generator=g), torch.randn(4, channels, generator=g)]
    weights = [w.requires_grad_() for w in weights + [torch.randn(channels, channels, generator=g)]]

    partition = build_graph_partition(edge_index, group.size(), (n_src, n_dst))

    def sharded_step():
        (xs, xd), ea, ei, info, _ = shard_graph_to_local(
            partition, (x_src, x_dst), edge_attr, edge_index, BipartiteGraphShardInfo(), group
        )
        out = gather_tensor(layer(xs, xd, ea, ei, *weights), 0, info.dst_nodes, group)
        out.square().sum().backward()
        return out

    for t in (x_src, x_dst, edge_attr, *weights):
        t.grad = None
    out = sharded_step()
    # The weights are replicated and each rank's gradient of them is a summand (its edges' part):
    # sum them, as data parallelism sums its replicas'. The features' gradients are complete.
    for w in weights:
        dist.all_reduce(w.grad, group=group)
    grads = [t.grad.clone() for t in (x_src, x_dst, edge_attr, *weights)]
    steps, t0 = 10, time.perf_counter()
    for _ in range(steps):
        sharded_step()
    step_ms = (time.perf_counter() - t0) / steps * 1e3

    if rank == 0:  # the unsharded layer, in one process
        for t in (x_src, x_dst, edge_attr, *weights):
            t.grad = None
        ref = layer(x_src, x_dst, edge_attr, edge_index, *weights)
        ref.square().sum().backward()
        worst = max(
            (a - t.grad).abs().max().item() / max(t.grad.abs().max().item(), 1e-30)
            for a, t in zip(grads, (x_src, x_dst, edge_attr, *weights))
        )
        print(f"graphshard example: W={group.size()}, {n_edges} edges")
        print(f"  output max |sharded - unsharded| = {(out - ref).abs().max().item():.2e}")
        print(f"  gradients: worst relative difference = {worst:.2e}")
        print(f"  one forward + backward: {step_ms:.2f} ms (mean of {steps})")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
