"""Run anemoi-models' own layers on graphshard: :func:`use_graphshard` swaps the functions.

``use_graphshard()`` replaces, in ``anemoi.models.distributed.graph``, ``.halo``, ``.khop_edges``,
``.shapes`` and ``.utils``, every public function and class that graphshard defines under the same
name in :mod:`graphshard.distributed` (``shard_tensor``, ``sync_tensor``, ...,
``shard_graph_to_local``, ``GraphPartition``, ``BipartiteGraphShardInfo``, ``GraphShardInfo``,
...), and the same objects wherever other ``anemoi.*`` modules imported them by name
(``from anemoi.models.distributed.khop_edges import shard_graph_to_local`` in
``anemoi.models.layers.mapper``, for instance). An unmodified anemoi layer then shards its graph
with graphshard's C++::

    import graphshard.anemoi

    with graphshard.anemoi.use_graphshard():       # restores on exit, also on an exception
        out = mapper(x, batch_size, shard_info, edge_attr, edge_index, model_comm_group=group)

    handle = graphshard.anemoi.use_graphshard()    # or: swapped until restored
    ...
    handle.restore()                               # or graphshard.anemoi.restore()

What is swapped
    A pair (anemoi object, graphshard object) for each name of the five modules for which
    graphshard's module defines a public (no leading underscore) function or class and
    anemoi's module has that name bound to a different object that anemoi defines. Then every
    attribute of every module in ``sys.modules`` named ``anemoi`` or ``anemoi.*`` that *is* (by
    identity) one of those anemoi objects is set to its graphshard counterpart, whatever the
    attribute's name (an alias ``from ... import shard_tensor as st`` is swapped too). Only module
    attributes are swapped: a function an anemoi object stored elsewhere (an instance attribute,
    a default argument, a ``functools.partial``) keeps anemoi's.

What is left untouched
    Every name graphshard lacks: the private helpers of the five modules
    (``_SyncParallelSection`` ..., ``_sort_edges_1hop_*``, ``_drop_unconnected_src_nodes``,
    ``_get_k_hop_edges``, ``_node_id_to_partition_id``), constants (``ANEMOI_DEBUG_SHARDING``)
    and type aliases (``ShardSizes``, ``DatasetShardSizes``, ``Adj``, ``PairTensor``); and the
    module ``anemoi.models.distributed.primitives`` as a whole (anemoi's collectives, which only
    anemoi's own functions call). :func:`left_untouched` lists the untouched public names of the
    five modules. The halo exchange is swapped too: anemoi's processor blocks (shard strategy
    "edges") then build their halo with graphshard, whose send lists are right for directed graphs
    as well (SPEC §3b [differs]).

Modules imported later
    Only modules already in ``sys.modules`` at the call are patched; so each call first imports
    the five modules and ``preload`` (by default ``anemoi.models.layers.mapper`` and
    ``anemoi.models.layers.processor``, which import ``block``, ``attention``, ``conv``,
    ``anemoi.models.triton.utils``, ...). Pass more in ``preload`` (``anemoi.models.models``, for
    instance) or import them first. A module imported *while* swapped that imports by name from
    the five modules binds graphshard's objects (the five modules' attributes are swapped), and is
    reverted too on restore: restoring also puts anemoi's object back in any ``anemoi.*`` module
    attribute that holds a swapped-in graphshard object. A nested call re-scans ``sys.modules``
    and patches the modules imported since the outer call.

Classes: mixing works both ways
    ``GraphPartition``, ``BipartiteGraphShardInfo``, ``GraphShardInfo`` and ``HaloInfo`` are
    swapped as well,
    so the instances anemoi code builds while swapped are graphshard's, the same as the ones
    graphshard's functions return. Instances of anemoi's classes made before the swap work with
    graphshard's functions too: these read partitions and shard
    infos by attribute only (duck typing), and graphshard's ``GraphPartition`` has the private
    helpers anemoi's layers call (``_get_dst_range``, ``_get_edge_range``,
    ``_relabel_dst_nodes``). The classes differ in identity: an anemoi and a graphshard shard info
    with the same fields are not ``==`` (dataclass equality requires the same class), and
    ``isinstance(x, <anemoi class>)`` is false for a graphshard instance. Code that kept a
    reference to anemoi's class object itself (not through a module attribute) still makes
    anemoi instances, which the duck typing accepts.

Backward passes
    A function is looked up when it is called: run the backward pass inside the block too. With
    gradient checkpointing (anemoi's default), the backward pass re-runs parts of the forward,
    and after a restore those would run on anemoi's functions.

Restoring, nesting
    Restoring sets every patched attribute back to exactly the object it held before (identity).
    Calls nest: each call returns its own handle and the swap stays until the last active handle
    is restored (out of order is fine); restoring a handle twice, or after
    :func:`restore`, does nothing. :func:`restore` undoes everything at once and deactivates all
    handles. An attribute that someone else rebound while swapped (so it no longer holds the
    graphshard object this module put there) is left as they set it. Thread-safe (one lock).
    :func:`is_active` says whether the swap is in force.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
import types
import typing
import warnings
from typing import Iterable

__all__ = ["use_graphshard", "restore", "is_active", "left_untouched", "swapped_pairs", "GraphshardPatch"]

#: The anemoi modules mirrored by graphshard, and graphshard's namesakes.
MODULES = ("graph", "halo", "khop_edges", "shapes", "utils")
_ANEMOI = "anemoi.models.distributed."
_GRAPHSHARD = "graphshard.distributed."
#: Modules never patched: anemoi's collectives, which graphshard's functions do not use.
EXCLUDED_MODULES = ("anemoi.models.distributed.primitives",)
#: Imported by default before patching, so that their by-name imports get swapped.
DEFAULT_PRELOAD = ("anemoi.models.layers.mapper", "anemoi.models.layers.processor")

_lock = threading.RLock()
_handles: list["GraphshardPatch"] = []  # active handles, in call order
_pairs: dict[int, tuple[object, object]] = {}  # id(anemoi object) -> (anemoi object, graphshard object)
_reverse: dict[int, tuple[object, object]] = {}  # id(graphshard object) -> (graphshard object, anemoi object)
_record: list[tuple[types.ModuleType, str, object, object]] = []  # (module, name, original, replacement)


def _is_candidate(obj, prefix: str) -> bool:
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and str(getattr(obj, "__module__", "")).startswith(
        prefix
    )


def _build_pairs() -> dict[int, tuple[object, object]]:
    """(anemoi object, graphshard object) for each public name both modules define."""
    pairs: dict[int, tuple[object, object]] = {}
    for short in MODULES:
        an = importlib.import_module(_ANEMOI + short)
        gs = importlib.import_module(_GRAPHSHARD + short)
        for name, g in vars(gs).items():
            if name.startswith("_") or not _is_candidate(g, "graphshard"):
                continue
            a = vars(an).get(name)
            if a is None or a is g or not _is_candidate(a, "anemoi."):
                continue
            prev = pairs.get(id(a))
            if prev is not None and prev[1] is not g:
                raise RuntimeError(
                    f"graphshard.anemoi: {_ANEMOI}{short}.{name} would map to two graphshard objects "
                    f"({prev[1]!r} and {g!r})"
                )
            pairs[id(a)] = (a, g)
    return pairs


def left_untouched() -> dict[str, list[str]]:
    """The public names of anemoi's five modules that :func:`use_graphshard` does not swap (those
    graphshard lacks, constants, type aliases, anemoi helpers imported from other modules), by
    module; plus the excluded modules. Imports from outside anemoi (``Tensor``, ``Optional``...)
    are not listed. The same whether the swap is active or not."""
    with _lock:
        pairs = _pairs if _handles else _build_pairs()
        swapped = set(pairs) | {id(g) for _, g in pairs.values()}
        out: dict[str, list[str]] = {}
        for short in MODULES:
            an = importlib.import_module(_ANEMOI + short)
            out[_ANEMOI + short] = sorted(
                name
                for name, val in vars(an).items()
                if not name.startswith("_")
                and id(val) not in swapped
                and not isinstance(val, types.ModuleType)
                and not (_is_candidate(val, "") and not _is_candidate(val, "anemoi."))  # torch's, ...
                and getattr(typing, name, None) is not val  # Optional, Union, ...
            )
        for m in EXCLUDED_MODULES:
            out[m] = ["<whole module>"]
        return out


def _anemoi_modules() -> list[tuple[str, types.ModuleType]]:
    return [
        (name, mod)
        for name, mod in list(sys.modules.items())
        if isinstance(mod, types.ModuleType)
        and (name == "anemoi" or name.startswith("anemoi."))
        and name not in EXCLUDED_MODULES
    ]


def _patch_scan() -> int:
    """Swaps every anemoi object still bound in an anemoi module; returns how many."""
    n = 0
    for _, mod in _anemoi_modules():
        d = vars(mod)
        for name, val in list(d.items()):
            hit = _pairs.get(id(val))
            if hit is not None and hit[0] is val:
                _record.append((mod, name, val, hit[1]))
                setattr(mod, name, hit[1])
                n += 1
    return n


def _undo() -> None:
    global _pairs, _reverse
    recorded = set()
    for mod, name, original, replacement in reversed(_record):
        recorded.add((id(mod), name))
        if vars(mod).get(name, _MISSING) is replacement:  # else someone rebound it: leave theirs
            setattr(mod, name, original)
    # modules imported while swapped bound graphshard's objects by name: put anemoi's back
    for _, mod in _anemoi_modules():
        for name, val in list(vars(mod).items()):
            hit = _reverse.get(id(val))
            if hit is not None and hit[0] is val and (id(mod), name) not in recorded:
                setattr(mod, name, hit[1])
    _record.clear()
    _pairs, _reverse = {}, {}


_MISSING = object()


class GraphshardPatch:
    """The handle :func:`use_graphshard` returns: a context manager, and ``restore()``.

    ``patched``: ``(module name, attribute)`` swapped by this call (a nested call lists only the
    attributes it newly swapped); ``preload_failed``: ``(module, error)`` for each preload module
    that could not be imported (skipped, with a warning).
    """

    def __init__(self, patched: list[tuple[str, str]], preload_failed: list[tuple[str, str]]):
        self.patched = patched
        self.preload_failed = preload_failed
        self._active = True

    @property
    def active(self) -> bool:
        return self._active

    def restore(self) -> None:
        """Ends this handle's swap; the objects come back when no other handle is active.
        Idempotent."""
        with _lock:
            if not self._active:
                return
            self._active = False
            _handles.remove(self)
            if not _handles:
                _undo()

    def __enter__(self) -> "GraphshardPatch":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.restore()
        return False

    def __repr__(self) -> str:
        state = "active" if self._active else "restored"
        return f"<graphshard.anemoi.GraphshardPatch {state}, {len(self.patched)} attributes>"


def use_graphshard(preload: Iterable[str] = DEFAULT_PRELOAD) -> GraphshardPatch:
    """Swap anemoi-models' distributed functions and classes for graphshard's (module docstring).

    Parameters
    ----------
    preload : iterable of str
        Modules imported before patching, so that the names they import from
        ``anemoi.models.distributed`` are swapped too (default: anemoi's mapper and processor
        layers). One that fails to import is skipped with a warning; the five
        ``anemoi.models.distributed`` modules themselves must import (else ImportError).

    Returns
    -------
    GraphshardPatch
        Use it as a context manager (restores on exit, also on an exception), or call its
        ``restore()``.
    """
    with _lock:
        global _pairs, _reverse
        for short in MODULES:
            importlib.import_module(_ANEMOI + short)
        failed = []
        for name in preload:
            try:
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001 - reported, the swap still applies elsewhere
                failed.append((name, f"{type(e).__name__}: {e}"))
                warnings.warn(f"graphshard.anemoi.use_graphshard: could not import {name}: {e}", stacklevel=2)
        if not _handles:
            _pairs = _build_pairs()
            _reverse = {id(g): (g, a) for a, g in _pairs.values()}
        start = len(_record)
        _patch_scan()
        patched = [(mod.__name__, name) for mod, name, _, _ in _record[start:]]
        handle = GraphshardPatch(patched, failed)
        _handles.append(handle)
        return handle


def restore() -> None:
    """Undo the swap completely, whatever the nesting; every handle becomes inactive."""
    with _lock:
        for h in list(_handles):
            h._active = False
        _handles.clear()
        _undo()


def is_active() -> bool:
    """Whether anemoi's functions are swapped for graphshard's now."""
    with _lock:
        return bool(_handles)


def swapped_pairs() -> list[tuple[str, str]]:
    """While active: ``(anemoi qualified name, graphshard qualified name)`` of each swapped
    object (empty when not active)."""
    with _lock:
        return sorted(
            (f"{a.__module__}.{a.__qualname__}", f"{g.__module__}.{g.__qualname__}") for a, g in _pairs.values()
        )
