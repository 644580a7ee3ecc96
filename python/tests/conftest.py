"""Harness of graphshard's Python tests: W processes over Gloo, and shared references.

``run_ranks(world_size, fn, *args)`` spawns ``world_size`` processes (multiprocessing's 'spawn'
context, so each starts a fresh interpreter), each of which initialises a Gloo process group over
TCP on 127.0.0.1, runs ``fn(rank, world_size, *args)`` and sends back its (picklable) result.
``fn`` must be defined at module level in a module of this directory, a test module or a helper
such as graph_runs (spawned processes import it by name; the directory is on their sys.path).

A spawn costs seconds (every process imports torch), so tests run many cases per spawn: cases are
drawn from ``random.Random(seed)`` identically on every rank, or drawn in the parent and passed in.

Failure modes, none of which may block the suite:

- a rank raises: the test fails with that rank's traceback text (``RankError``);
- a rank exits without a result: the test fails naming it and its exit code (unless the test
  said it expects that rank to die, ``expect_exit``);
- the ranks do not all finish within ``timeout`` seconds: every process is killed and the test
  fails naming the ranks still running.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue as queue_mod
import random
import sys
import time
import traceback
from datetime import timedelta

# One ATen thread per process (set before torch is imported, inherited by the spawned ranks):
# W ranks share 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from hypothesis import HealthCheck, settings  # noqa: E402

# The machine runs the suite on 2 cores, next to builds: no deadline, few examples per property.
settings.register_profile(
    "graphshard",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "graphshard"))

# The helper modules the test modules import hold assertions too: pytest rewrites them as it does
# the test modules' (a failure shows the values), which it must be told before they are imported.
pytest.register_assert_rewrite("graph_cases", "graph_runs", "anemoi_cases", "anemoi_checks")

_CTX = mp.get_context("spawn")


class RankError(AssertionError):
    """A rank of a run_ranks call raised; the message carries its traceback."""


def host_store(world_size, timeout_s):
    """The ranks' TCP store, hosted by the parent as torchrun's agent hosts it: bound at once on
    a port the OS picks (a port found free and bound later by rank 0 could be taken in between by
    another test's connection: EADDRINUSE, seen under load) and alive until every rank is done."""
    import torch.distributed as dist

    return dist.TCPStore("127.0.0.1", 0, world_size, is_master=True, wait_for_workers=False,
                         timeout=timedelta(seconds=timeout_s))


def _worker(rank, world_size, port, group_timeout, backend, fn, args, results, release):
    # One thread per process for ATen: W ranks share 2 cores, and sums are order-fixed anyway.
    torch.set_num_threads(1)
    payload = None
    try:
        import torch.distributed as dist

        if "nccl" in backend:
            torch.cuda.set_device(rank % torch.cuda.device_count())
        store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False,
                              timeout=timedelta(seconds=group_timeout))
        dist.init_process_group(
            backend,
            store=store,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=group_timeout),
        )
        out = fn(rank, world_size, *args)
        payload = (rank, "ok", pickle.dumps(out))
    except BaseException:  # noqa: BLE001 - the parent re-raises it with its traceback
        payload = (rank, "err", traceback.format_exc())
    results.put(payload)
    results.close()
    results.join_thread()  # the result is in the pipe before this process goes
    sys.stdout.flush()
    sys.stderr.flush()
    # Stay until every rank has reported: a slower rank may still be exchanging with this one
    # (the parent hosts the store, which graphshard reads the blames of a failure from).
    release.wait(timeout=group_timeout + 30)
    # No teardown of the group: a test may leave a peer dead, and Gloo's destructors could then
    # wait on it. The parent only needs the result.
    os._exit(0)


def run_ranks(world_size, fn, *args, timeout=60, group_timeout=30, expect_exit=(), backend="gloo"):
    """Runs ``fn(rank, world_size, *args)`` on ``world_size`` ranks of a ``backend`` group (Gloo;
    "nccl" or "cpu:gloo,cuda:nccl" put rank r on GPU r); returns the results in rank order (None
    for a rank in ``expect_exit`` that exited without one)."""
    store = host_store(world_size, group_timeout + timeout)
    port = store.port
    results = _CTX.Queue()
    release = _CTX.Event()
    procs = [
        _CTX.Process(
            target=_worker,
            args=(r, world_size, port, group_timeout, backend, fn, args, results, release),
            name=f"graphshard-rank{r}",
            daemon=True,
        )
        for r in range(world_size)
    ]
    for p in procs:
        p.start()
    got = {}
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while len(got) < world_size:
            try:
                rank, status, data = results.get(timeout=0.2)
                got[rank] = (status, data)
                if status == "err":
                    # Peers of a failed rank may wait on it until their group timeout: give them
                    # a moment to report, then fail with the error rather than wait.
                    deadline = min(deadline, time.monotonic() + 3)
                continue
            except queue_mod.Empty:
                pass
            # A process that ended without reporting: fail at once (after draining the queue
            # one last time: its result may still be in the pipe).
            for r, p in enumerate(procs):
                if r in got or p.is_alive():
                    continue
                try:
                    while r not in got:
                        rank, status, data = results.get(timeout=0.5)
                        got[rank] = (status, data)
                except queue_mod.Empty:
                    pass
                if r not in got:
                    if r in expect_exit:
                        got[r] = ("exited", p.exitcode)
                    else:
                        pytest.fail(f"rank {r} of {world_size} exited (code {p.exitcode}) without a result")
            if time.monotonic() > deadline:
                timed_out = True
                break
    finally:
        release.set()
        if not timed_out and len(got) == world_size:  # all reported: let them exit on their own, briefly
            until = time.monotonic() + 2
            for p in procs:
                p.join(timeout=max(0.0, until - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=5)
        results.close()
    running = [r for r in range(world_size) if r not in got]
    errors = [(r, got[r][1]) for r in sorted(got) if got[r][0] == "err"]
    if errors:
        r, tb = errors[0]
        others = [q for q, _ in errors[1:]]
        raise RankError(
            f"rank {r} of {world_size} raised"
            + (f" (ranks {others} too)" if others else "")
            + (f" (ranks {running} still running, killed)" if running else "")
            + f":\n{tb}"
        )
    if timed_out:
        pytest.fail(
            f"timeout after {timeout} s: ranks {running} of {world_size} still running, killed "
            f"({fn.__module__}.{fn.__qualname__})"
        )
    return [pickle.loads(got[r][1]) if got[r][0] == "ok" else None for r in range(world_size)]


# ---- shared helpers for the rank functions -------------------------------------------------------


def balanced(n: int, p: int) -> list[int]:
    """SPEC §0: p parts differing by at most one, larger first."""
    return [n // p + (1 if i < n % p else 0) for i in range(p)]


def random_sizes(rng: random.Random, w: int, lo: int = 0, hi: int = 4) -> list[int]:
    """Uneven sizes, zeros included (sometimes all zero but one)."""
    mode = rng.random()
    if mode < 0.15:
        s = [0] * w
        s[rng.randrange(w)] = rng.randint(1, hi)
        return s
    if mode < 0.3:
        return balanced(rng.randint(0, 2 * w), w)
    return [rng.randint(lo, hi) for _ in range(w)]


def tensor(rng_seed: int, shape, dtype) -> torch.Tensor:
    """A deterministic tensor from a seed (any process rebuilds the same bits)."""
    g = torch.Generator().manual_seed(rng_seed)
    if dtype in (torch.int64, torch.int32):
        return torch.randint(-50, 50, tuple(shape), generator=g, dtype=dtype)
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64).to(dtype)


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bits (NaN-safe; -0.0 differs from 0.0)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    if a.dtype.is_floating_point:
        itype = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        return torch.equal(a.contiguous().view(itype), b.contiguous().view(itype))
    return torch.equal(a, b)

