"""The cases of the graph-primitive tests (test_graph, test_graph_subgroups, test_cuda): drawing,
the single-process reference, the Python and C++ calls, one rank's run of the cases, the bypass
checks of a None or one-rank group, and the parent's assertions over the ranks' records.

Not a test module: the rank functions (graph_runs, test_cuda) call into it on spawned ranks too
(it is importable there, as conftest is: the test directory is on their sys.path).

Each run of ``run_cases`` draws random cases (shapes of 1-4 dims, dims negative too, uneven and
zero-size pieces, float32/float64/bfloat16/int64, contiguous, strided and channels-last inputs)
from ``random.Random(seed)`` identically on every rank. Per case a rank checks, and records in
its result:

- ``cxx``: forward and backward through the Python API (the operators' autograd kernels) equal
  BITWISE the C++ library's own autograd functions (``graphshard::_cxx_primitive``);
- ``reference``: the forward equals a single-process reference built from the whole-world view
  (every rank rebuilds every rank's input from the case seed), bitwise: reduces add in rank
  order, ((x0 + x1) + x2) + ..., 16-bit floats in float32 rounded once, as the default Gloo path
  does;
- ``unmodified``: neither the input nor the upstream gradient changed (SPEC §5: a reduce returns
  a new tensor);
- ``format``: the output keeps the input's memory format (SPEC §0);
- ``view``: shard_tensor returns a view of its input exactly where the piece is already contiguous
  in the input's memory format, else a copy (SPEC §2);
- ``expand``: shard_tensor(gather_in_backward=False)'s gradient is the upstream gradient on piece
  r and zero elsewhere;

and for float64 cases records its local inner products, which the parent combines over ranks under
SPEC §1's placement inner products (``assert_adjoint``) to check that each backward is the adjoint
of its forward.
"""

from __future__ import annotations

import random
from collections import defaultdict

import torch

from conftest import balanced, bitwise_equal, random_sizes, tensor

# fn -> (input placement, output placement, how the output's upstream gradient is drawn).
# A gradient drawn "R" is identical on every rank; "S"/"P" independent per rank.
PLACEMENTS = {
    "shard": ("R", "S", "S"),
    "shard_expand": ("R", "S", "S"),  # not an adjoint: checked on piece r only
    "ensure_sharded": ("R", "S", "S"),
    "gather": ("S", "R", "R"),
    "reduce": ("P", "R", "R"),
    "sync": ("S", "R", "P"),
    "sync_none": ("R", "R", "P"),  # sizes None: no forward gather
    "sync_nofwd": ("R", "R", "P"),  # gather_in_fwd=False
    "reduce_shard": ("P", "S", "S"),
    "all_to_all": ("S", "S", "S"),
}
FNS = list(PLACEMENTS)
# The C++ autograd function each Python call must match (core/ops/cxx_path.cpp).
CXX_NAME = {
    "shard": "shard_tensor",
    "shard_expand": "shard_tensor_expand",
    "ensure_sharded": "shard_tensor",
    "gather": "gather_tensor",
    "reduce": "reduce_tensor",
    "sync": "sync_tensor",
    "sync_none": "sync_tensor",
    "sync_nofwd": "sync_tensor_no_gather",
    "reduce_shard": "reduce_shard_tensor",
    "all_to_all": "all_to_all_transpose",
}
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.int64]
DTYPE_WEIGHTS = [3, 4, 2, 2]
SEED = 20240601  # the base seed of the runs (graph_runs)


# ---- cases ---------------------------------------------------------------------------------------


def draw_case(rng: random.Random, w: int, index: int) -> dict:
    # The first cases cover every function, the very first ones in float64 (the adjoint check).
    fn = FNS[index % len(FNS)] if index < 2 * len(FNS) else rng.choice(FNS)
    dtype = torch.float64 if index < len(FNS) else rng.choices(DTYPES, DTYPE_WEIGHTS)[0]
    ndim = rng.randint(2 if fn == "all_to_all" else 1, 4)
    full = [0 if rng.random() < 0.08 else rng.randint(1, 3) for _ in range(ndim)]
    layouts = ["contiguous", "contiguous", "strided"] + (["channels_last"] * 2 if ndim == 4 else [])
    c = dict(fn=fn, dtype=dtype, ndim=ndim, layout=rng.choice(layouts), seed=rng.randrange(2**31))

    def arg(d):  # a dim as the caller may spell it
        return d - ndim if rng.random() < 0.5 else d

    if fn == "all_to_all":
        ds, dc = rng.sample(range(ndim), 2)
        c.update(ds=ds, dc=dc, ds_arg=arg(ds), dc_arg=arg(dc))
        c["ssizes"], c["csizes"] = random_sizes(rng, w), random_sizes(rng, w)
        full[ds] = sum(c["ssizes"])
    else:
        d = rng.randrange(ndim)
        c.update(d=d, dim_arg=arg(d))
        c["sizes"] = balanced(rng.randint(0, 2 * w + 1), w) if fn == "ensure_sharded" else random_sizes(rng, w)
        full[d] = sum(c["sizes"])
    c["full"] = full
    return c


def describe(c: dict) -> str:
    keys = ["fn", "dtype", "full", "layout", "seed", "dim_arg", "sizes", "ds_arg", "ssizes", "dc_arg", "csizes"]
    return "{" + ", ".join(f"{k}={c[k]}" for k in keys if k in c) + "}"


def with_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another layout (strides), for the memory-format rules."""
    if layout == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "strided":
        if t.dim() >= 2:
            return t.transpose(0, -1).contiguous().transpose(0, -1)
        buf = torch.empty(2 * t.numel(), dtype=t.dtype)[::2]
        buf.copy_(t)
        return buf
    return t


def input_of(c: dict, q: int) -> torch.Tensor:
    """Rank q's input of case c (any rank can rebuild any rank's input)."""
    placement = PLACEMENTS[c["fn"]][0]
    shape = list(c["full"])
    if placement == "R":
        return with_layout(tensor(c["seed"], shape, c["dtype"]), c["layout"])
    if c["fn"] == "all_to_all":
        shape[c["dc"]] = c["csizes"][q]
    elif placement == "S":
        shape[c["d"]] = c["sizes"][q]
    return with_layout(tensor(c["seed"] + 7919 * (q + 1), shape, c["dtype"]), c["layout"])


def ordered_sum(xs: list[torch.Tensor]) -> torch.Tensor:
    """((x0 + x1) + x2) + ...; 16-bit floats summed in float32 and rounded once."""
    dtype = xs[0].dtype
    acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    s = xs[0].to(acc)
    for x in xs[1:]:
        s = s + x.to(acc)
    return s.to(dtype)


def reference(c: dict, q: int, w: int) -> torch.Tensor:
    """Rank q's forward output, computed in one process from the whole-world view."""
    fn = c["fn"]
    xs = [input_of(c, p) for p in range(w)]
    if fn in ("shard", "shard_expand", "ensure_sharded"):
        return torch.split(xs[0], c["sizes"], c["d"])[q]
    if fn in ("gather", "sync"):
        return torch.cat(xs, c["d"])
    if fn == "reduce":
        return ordered_sum(xs)
    if fn in ("sync_none", "sync_nofwd"):
        return xs[0]
    if fn == "reduce_shard":
        return torch.split(ordered_sum(xs), c["sizes"], c["d"])[q]
    if fn == "all_to_all":
        return torch.cat([torch.split(x, c["ssizes"], c["ds"])[q] for x in xs], c["dc"])
    raise AssertionError(fn)


def grad_of(c: dict, q: int, shape) -> torch.Tensor:
    seed = c["seed"] + 104729
    if PLACEMENTS[c["fn"]][2] != "R":
        seed += 7919 * (q + 1)
    return tensor(seed, shape, c["dtype"])


def call_python(c: dict, x: torch.Tensor, group):
    from graphshard.distributed import graph as G

    fn = c["fn"]
    if fn == "shard":
        return G.shard_tensor(x, c["dim_arg"], c["sizes"], group)
    if fn == "shard_expand":
        return G.shard_tensor(x, c["dim_arg"], c["sizes"], group, gather_in_backward=False)
    if fn == "ensure_sharded":
        y, sizes = G.ensure_sharded(x, c["dim_arg"], None, group)
        assert sizes == c["sizes"], f"ensure_sharded sizes {sizes} != balanced {c['sizes']}"
        return y
    if fn == "gather":
        return G.gather_tensor(x, c["dim_arg"], c["sizes"], group)
    if fn == "reduce":
        return G.reduce_tensor(x, group)
    if fn == "sync":
        return G.sync_tensor(x, c["dim_arg"], c["sizes"], group)
    if fn == "sync_none":
        return G.sync_tensor(x, c["dim_arg"], None, group)
    if fn == "sync_nofwd":
        return G.sync_tensor(x, c["dim_arg"], c["sizes"], group, gather_in_fwd=False)
    if fn == "reduce_shard":
        return G.reduce_shard_tensor(x, c["dim_arg"], c["sizes"], group)
    if fn == "all_to_all":
        return G.all_to_all_transpose(x, c["ds_arg"], c["ssizes"], c["dc_arg"], c["csizes"], group)
    raise AssertionError(fn)


def call_cxx(c: dict, x: torch.Tensor, grad_y: torch.Tensor, group):
    fn = c["fn"]
    if fn == "all_to_all":
        args = (c["ds_arg"], c["ssizes"], c["dc_arg"], c["csizes"])
    elif fn == "sync_none":
        args = (c["dim_arg"], None, 0, None)
    else:
        args = (c.get("dim_arg", 0), c.get("sizes"), 0, None)
    return torch.ops.graphshard._cxx_primitive(CXX_NAME[fn], x, grad_y, *args, group.group_name)


# ---- one rank's run ------------------------------------------------------------------------------


class Record:
    """Per check: how many cases it covered and the failures (messages), returned to the parent."""

    def __init__(self):
        self.checks = defaultdict(lambda: {"n": 0, "fail": []})
        self.adjoint = []  # (case index, fn, <F(x), y> local, <x, B(y)> local)

    def check(self, name: str, ok: bool, msg: str):
        self.checks[name]["n"] += 1
        if not ok:
            self.checks[name]["fail"].append(msg)

    def result(self) -> dict:
        return {"checks": dict(self.checks), "adjoint": self.adjoint}


def run_cases(group, seed: int, n_cases: int, rec: Record, tag: str = "", device: str = "cpu"):
    """n_cases random cases on `group` (every member draws the same cases). The inputs live on
    `device` (CUDA for an NCCL group); references are computed on the CPU."""
    r, w = group.rank(), group.size()
    rng = random.Random(seed)
    for i in range(n_cases):
        c = draw_case(rng, w, i)
        what = f"{tag}case {i} {describe(c)} rank {r}"
        fn, dtype = c["fn"], c["dtype"]
        floating = dtype.is_floating_point
        x = input_of(c, r).to(device)
        if floating:
            x.requires_grad_(True)
        x_before = x.detach().clone()
        ref = reference(c, r, w)
        gy = grad_of(c, r, ref.shape).to(device)
        gy_before = gy.clone()

        y = call_python(c, x, group)
        rec.check("reference", bitwise_equal(y.detach().cpu(), ref), f"{what}: forward != reference:\n{y}\nvs\n{ref}")
        # (At W = 1 everything bypasses: the input itself comes back, whatever its layout.)
        if w > 1 and fn not in ("sync_none", "sync_nofwd"):  # those return the input as a view
            fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            rec.check("format", y.is_contiguous(memory_format=fmt), f"{what}: output strides {y.stride()}, expected {fmt}")
        if w > 1 and fn in ("shard", "shard_expand"):
            # SPEC §2: a view of the input exactly where piece r already is contiguous in the
            # input's memory format (torch.split(x, sizes, d)[r].contiguous(format)), else a copy.
            fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
            piece = torch.split(x.detach(), c["sizes"], c["d"])[r]
            view = piece.is_contiguous(memory_format=fmt) and piece.numel() > 0
            shares = y.numel() > 0 and y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
            rec.check("view", shares == view, f"{what}: output shares the input's storage: {shares}, expected {view}")
        if floating:
            y.backward(gy)
            gx = x.grad
        rec.check("unmodified", bitwise_equal(x.detach(), x_before), f"{what}: the input was modified")
        rec.check("unmodified", bitwise_equal(gy, gy_before), f"{what}: the upstream gradient was modified")

        cy, cgx = call_cxx(c, x.detach(), gy if floating else torch.empty(0, device=device), group)
        rec.check("cxx", bitwise_equal(y.detach(), cy), f"{what}: forward != C++ path:\n{y}\nvs\n{cy}")
        if floating:
            rec.check("cxx", cgx is not None and bitwise_equal(gx, cgx), f"{what}: backward != C++ path:\n{gx}\nvs\n{cgx}")
        else:
            rec.check("cxx", cgx is None and not y.requires_grad, f"{what}: an integer tensor got a gradient")

        if fn == "shard_expand" and floating:
            d, sizes = c["d"], c["sizes"]
            off = sum(sizes[:r])
            own = gx.narrow(d, off, sizes[r])
            rest = gx.clone()
            rest.narrow(d, off, sizes[r]).zero_()
            rec.check(
                "expand",
                bitwise_equal(own, gy) and not rest.any() and gx.shape == x.shape,
                f"{what}: expand gradient: piece {r} != upstream or other pieces non-zero: {gx}",
            )
        if dtype == torch.float64 and fn != "shard_expand":
            rec.adjoint.append((f"{tag}{i}", fn, float((y.detach() * gy).sum()), float((x.detach() * gx).sum())))


def bypass_checks(group, rec: Record, what: str):
    """(f) a None group or a group of one rank: every function returns its input itself."""
    from graphshard.distributed import graph as G

    for dtype in (torch.float32, torch.int64):
        x = tensor(5, (3, 2), dtype)
        if dtype.is_floating_point:
            x.requires_grad_(True)
        outs = {
            "shard_tensor": G.shard_tensor(x, 0, [3], group),
            "shard_tensor(gather_in_backward=False)": G.shard_tensor(x, -2, [3], group, gather_in_backward=False),
            "gather_tensor": G.gather_tensor(x, 1, [2], group),
            "reduce_tensor": G.reduce_tensor(x, group),
            "sync_tensor": G.sync_tensor(x, 0, [3], group),
            "sync_tensor(sizes=None)": G.sync_tensor(x, 0, None, group),
            "sync_tensor(gather_in_fwd=False)": G.sync_tensor(x, 0, [3], group, gather_in_fwd=False),
            "reduce_shard_tensor": G.reduce_shard_tensor(x, 0, [3], group),
            "all_to_all_transpose": G.all_to_all_transpose(x, 0, [3], 1, [2], group),
        }
        for name, out in outs.items():
            rec.check("bypass", out is x, f"{what}: {name} did not return its input itself ({dtype})")
        y, sizes = G.ensure_sharded(x, 0, None, group)
        rec.check("bypass", y is x and sizes == [3], f"{what}: ensure_sharded(None sizes) -> {sizes}")
        y, sizes = G.ensure_sharded(x, 1, [2], group)
        rec.check("bypass", y is x and sizes == [2], f"{what}: ensure_sharded([2]) -> {sizes}")
        if group is None:  # sizes are not even looked at
            rec.check("bypass", G.gather_tensor(x, 0, None, None) is x, f"{what}: gather(sizes=None)")
    if group is not None:
        # The raw operators may not return their input (an operator's output never aliases it):
        # with a group of one they return an equal copy (core/ops/primitive_ops.cpp).
        x = tensor(6, (3, 2), torch.float32)
        out = torch.ops.graphshard.gather_tensor(x, 0, [3], group.group_name)
        rec.check(
            "bypass",
            bitwise_equal(out, x) and out.data_ptr() != x.data_ptr(),
            f"{what}: the operator for a group of one is not an equal copy",
        )


# ---- the parent's side ---------------------------------------------------------------------------


def assert_check(results, name: str, min_cases: int = 1):
    n = sum(res["checks"].get(name, {"n": 0})["n"] for res in results)
    fails = [m for res in results for m in res["checks"].get(name, {"fail": []})["fail"]]
    assert not fails, f"{len(fails)} failures of {name!r}, first:\n" + "\n".join(fails[:3])
    assert n >= min_cases, f"check {name!r} covered {n} cases, expected at least {min_cases}"


def assert_adjoint(results, w: int):
    by_case = defaultdict(list)
    for res in results:
        for case, fn, out_ip, in_ip in res["adjoint"]:
            by_case[case].append((fn, out_ip, in_ip))
    assert by_case, "no float64 case"
    fns = set()
    for case, rows in by_case.items():
        assert len(rows) == w, f"case {case}: {len(rows)} ranks recorded"
        fn = rows[0][0]
        fns.add(fn)
        placement_in, _, grad_out = PLACEMENTS[fn]

        def combine(values, once):
            if once:  # a replicated inner product: every rank must hold the same value
                assert len(set(values)) == 1, f"case {case} ({fn}): ranks disagree on a replicated product {values}"
                return values[0]
            return sum(values)

        lhs = combine([r[1] for r in rows], once=grad_out == "R")
        rhs = combine([r[2] for r in rows], once=placement_in == "R")
        assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs), abs(rhs)), f"case {case} ({fn}): <F(x), y> = {lhs} != <x, B(y)> = {rhs}"
    assert fns == set(FNS) - {"shard_expand"}, f"functions covered in float64: {sorted(fns)}"

