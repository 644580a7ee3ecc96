"""The Python binding's overhead: one primitive's forward + backward through the Python API
(operators and their autograd kernels) against the same through the C++ library's own autograd
(the test hook torch.ops.graphshard._cxx_primitive, which also clones its input), same process,
same group, calls alternating, median of 200 each on rank 0.

    build/graphshard launch -n 2 -- .venv/bin/python bench/suites/binding_overhead.py
"""

import statistics
import time

import torch
import torch.distributed as dist

from graphshard.distributed.graph import gather_tensor
from graphshard.distributed.graph import reduce_shard_tensor


def main():
    dist.init_process_group("gloo")
    group, rank, w = dist.group.WORLD, dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    for name, fn, rows in (
        ("gather_tensor", gather_tensor, 256),
        ("gather_tensor", gather_tensor, 262144),
        ("reduce_shard_tensor", reduce_shard_tensor, 256),
        ("reduce_shard_tensor", reduce_shard_tensor, 262144),
    ):
        sizes = [rows] * w
        gathers = name == "gather_tensor"
        x = torch.randn(rows if gathers else rows * w, 16, requires_grad=True)
        grad_y = torch.randn(rows * w if gathers else rows, 16)

        def python_path():
            fn(x, 0, sizes, group).backward(grad_y)
            x.grad = None

        def cxx_path():
            torch.ops.graphshard._cxx_primitive(name, x, grad_y, 0, sizes, 0, None, group.group_name)

        times = {"python": [], "c++": []}
        for _ in range(5):
            python_path(), cxx_path()
        for i in range(200):
            order = (("python", python_path), ("c++", cxx_path))
            for role, f in order if i % 2 == 0 else order[::-1]:
                dist.barrier()
                t0 = time.perf_counter()
                f()
                times[role].append(time.perf_counter() - t0)
        if rank == 0:
            p, c = (statistics.median(times[k]) * 1e6 for k in ("python", "c++"))
            print(f"{name} forward+backward, {rows}x16 float32 per rank, W={w}: "
                  f"python {p:.0f} us, c++ {c:.0f} us, python/c++ {p / c:.3f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
