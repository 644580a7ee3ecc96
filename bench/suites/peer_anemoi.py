"""graphshard's Python API against anemoi-models' ``anemoi.models.distributed``, same Gloo group,
same inputs, same process: every primitive of ``graph`` (forward and backward timed apart) and
the graph functions of ``khop_edges``. Run as W ranks:

    build/graphshard launch -n 2 -- .venv/bin/python bench/suites/peer_anemoi.py --out peer.json
        [--quick] [--repetitions 3] [--sizes 4096,65536,1048576,16777216]
        [--edges 100000,1000000,10000000] [--calls N] [--only REGEX]

(`graphshard bench --peer anemoi` runs it at W = 2 and 4 and summarises it with the other suites.)

Rows (peer_cases.py): the primitives on float32 full tensors of each --sizes bytes, dims 0 and 1,
balanced and uneven pieces (" uneven" in the function name), forward and " backward"; the graph
functions at each --edges count; where a row is held to half of anemoi's time, and for
reduce_tensor, a ``floor`` role too (the least its contract leaves to do, by torch.distributed's
own collective: peer_cases.py), timed in turn with the others. Roles ``graphshard`` and ``anemoi``, engine ``py-gloo`` (both
called through Python on a torch.distributed Gloo group: a distinct engine, so these rows never
pair with the C++ suites' ``gloo`` rows of the same function and payload).

Method: before timing, each row runs once on both sides and compares (bitwise, or allclose rtol
1e-5/atol 1e-6 where a sum is taken); a mismatch on any rank writes the row with
``error_occurred`` (``graphshard bench`` then fails naming it) and exits 1 after the run. Timing:
warm-up calls, then the roles call by call in turn, each role first in turn, a barrier
before each; every rank times every call, a call's time is the slowest rank's (all-reduce MAX
after the repetition), a repetition's value the median over its calls (calls per role:
max(16, min(100, 256 MiB / bytes)) as bench_primitives.cpp; graph rows max(4, min(20, 8e6 / E))).
Inputs are fresh clones per call, outside the timed region (anemoi's reduces overwrite theirs).
torch.set_num_threads(1) per process. Rank 0 writes Google Benchmark-shaped JSON (label
``function=F;role=R;engine=py-gloo``, counters world_size, bytes, dim, edges; real_time in ns
per call) after every row, and prints progress to stderr. Exit 77 (a skip) when anemoi-models
cannot be imported.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import re
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch loads the OpenMP runtime

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

SKIP = 77
ENGINE = "py-gloo"
ROLES = ("graphshard", "anemoi")
FLOOR = "floor"  # a timing reference of some rows (peer_cases.py), never compared


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="JSON file written by rank 0")
    p.add_argument("--quick", action="store_true",
                   help="smoke pass: sizes 4 KiB and 64 KiB, E = 1e5, few calls, 1 repetition")
    p.add_argument("--repetitions", type=int, default=None, help="default 3 (quick: 1)")
    p.add_argument("--sizes", help="bytes of the full tensors, comma-separated (0: none)")
    p.add_argument("--edges", help="edge counts of the graph rows, comma-separated (0: none)")
    p.add_argument("--calls", type=int, help="timed calls per role and repetition (default: by size)")
    p.add_argument("--only", help="only rows whose function name matches this regular expression")
    a = p.parse_args(argv)
    ints = lambda s: [int(float(v)) for v in s.split(",") if v.strip()]  # noqa: E731
    a.sizes = [b for b in ints(a.sizes) if b > 0] if a.sizes else (
        [4096, 65536] if a.quick else [4096, 65536, 1 << 20, 16 << 20])
    a.edges = [e for e in ints(a.edges) if e > 0] if a.edges else ([100000] if a.quick else
                                                                     [100000, 1000000, 10000000])
    if a.repetitions is None:
        a.repetitions = 1 if a.quick else 3
    if a.calls is None and a.quick:
        a.calls = 5
    return a


def timed_roles(case, mods):
    """{role: (prepare(), run(state))}: both sides through their module, and the floor if any."""
    out = {role: (functools.partial(case.prepare, mods[role]), functools.partial(case.run, mods[role]))
           for role in ROLES}
    if case.floor:
        out[FLOOR] = case.floor
    return out


def measure(case, mods, warmup):
    """{role: [seconds per call, the slowest rank's]} over case.calls calls per role."""
    calls = timed_roles(case, mods)
    order = list(calls)
    times = {role: [] for role in order}
    for i in range(warmup + case.calls):
        for role in order[i % len(order):] + order[:i % len(order)]:  # each role first in turn
            prepare, run = calls[role]
            state = prepare()
            dist.barrier()
            t0 = time.perf_counter()
            out = run(state)
            dt = time.perf_counter() - t0
            del out, state
            if i >= warmup:
                times[role].append(dt)
    t = torch.tensor([times[role] for role in order], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return {role: t[k].tolist() for k, role in enumerate(order)}


def check(case, mods):
    """None when both sides agree on every rank, else the first rank's difference."""
    from peer_cases import difference
    from peer_cases import normalise

    try:
        got = {role: normalise(case.run(mods[role], case.prepare(mods[role]))) for role in ROLES}
        diff = difference(got["graphshard"], got["anemoi"], case.exact)
    except Exception as e:  # noqa: BLE001  (reported as the row's error, on every rank)
        diff = f"{type(e).__name__}: {e}"
    diffs = [None] * dist.get_world_size()
    dist.all_gather_object(diffs, diff)
    bad = [(r, d) for r, d in enumerate(diffs) if d]
    return None if not bad else f"graphshard and anemoi differ on rank {bad[0][0]}: {bad[0][1]}"


def entry(case, role, w, rep, reps, seconds, error=None):
    c = case.counters
    key = "/".join([f"W:{w}"] + [f"{k}:{c[k]}" for k in ("bytes", "dim", "edges") if k in c])
    name = f"peer_anemoi/{case.function}/{role}/engine:{ENGINE}/{key}"
    e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": reps,
         "repetition_index": rep, "threads": 1, "iterations": case.calls,
         "real_time": seconds * 1e9, "cpu_time": seconds * 1e9, "time_unit": "ns",
         "label": f"function={case.function};role={role};engine={ENGINE}", "world_size": w, **c}
    if error:
        e.update({"error_occurred": True, "error_message": error})
    return e


def work(case):
    """A rough cost of a row, for the estimate of the time left."""
    c = case.counters
    size = c["bytes"] if "bytes" in c else 64 * c["edges"]  # a graph call: ~0.1 us per edge
    return case.calls * (2 if "backward" in case.function else 1) * (size + (256 << 10))


def context(w, args):
    import anemoi.models

    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host_name": platform.node(),
            "executable": os.path.abspath(__file__), "num_cpus": os.cpu_count(), "world_size": w,
            "torch": torch.__version__, "anemoi_models": getattr(anemoi.models, "__version__", "?"),
            "repetitions": args.repetitions}


def main(argv=None):
    args = parse_args(argv)
    try:
        import anemoi.models.distributed.khop_edges  # noqa: F401
    except ImportError as e:
        print(f"peer_anemoi: skipped: anemoi-models is not importable ({e})", file=sys.stderr)
        return SKIP
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import peer_cases as pc

    torch.set_num_threads(1)
    # A rank that fails alone (its check raised) leaves the others in a collective: bounded.
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=900))
    group, rank, w = dist.group.WORLD, dist.get_rank(), dist.get_world_size()
    mods = pc.sides()
    only = re.compile(args.only) if args.only else None
    # Every row listed up front (for the progress line); each payload is built when its first row
    # runs and freed with its last (a 1e7-edge graph is half a gigabyte per process).
    cases = pc.all_primitive_cases(args.sizes, w, rank, group, args.calls)
    for e in args.edges:
        cases += pc.graph_cases(e, w, rank, group, args.calls)
    cases = [c for c in cases if only is None or only.search(c.function)]
    cases.reverse()  # popped from the end
    total, total_work = len(cases), sum(map(work, cases))

    out = {"context": context(w, args), "benchmarks": []}
    errors, done, done_work, start = [], 0, 0, time.monotonic()
    while cases:
        case = cases.pop()
        error = check(case, mods)
        medians = {role: [] for role in timed_roles(case, mods)}
        for rep in range(1 if error else args.repetitions):
            seconds = None if error else measure(case, mods, warmup=1 if args.quick or "edges" in case.counters else 2)
            for role in medians:
                medians[role].append(0.0 if error else statistics.median(seconds[role]))
                out["benchmarks"].append(entry(case, role, w, rep, args.repetitions, medians[role][-1], error))
        done, done_work = done + 1, done_work + work(case)
        if error:
            errors.append(f"{case.function} {case.counters}: {error}")
        if rank == 0:
            elapsed = time.monotonic() - start
            left = elapsed * max(total_work - done_work, 0) / max(done_work, 1)
            gs, an = (statistics.median(medians[role]) for role in ROLES)
            what = f"ERROR {error}" if error else f"graphshard {gs * 1e3:.3f} ms, anemoi {an * 1e3:.3f} ms"
            if case.floor and not error:
                what += f", floor {statistics.median(medians[FLOOR]) * 1e3:.3f} ms"
            print(f"[peer_anemoi W={w}] {done}/{total} {case.function} {case.counters}: {what}  "
                  f"({elapsed:.0f} s elapsed, ~{left:.0f} s left)", file=sys.stderr, flush=True)
            if args.out:
                with open(args.out, "w") as f:
                    json.dump(out, f, indent=1)
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        for e in errors:
            print(f"peer_anemoi: MISMATCH {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
