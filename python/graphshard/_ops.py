"""The operator library and the conventions of calling it (internal).

graphshard's functions are PyTorch operators (``torch.ops.graphshard.*``) registered by the C++
library ``libgraphshard_ops.so``; this module loads it once, names groups as the operators take
them, and turns communication failures back into :class:`CommError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch.distributed import ProcessGroup

_LIBRARY = "libgraphshard_ops.so"


def _library_path() -> Path:
    """Where the operator library is: GRAPHSHARD_OPS_LIBRARY, the installed package's lib/, or
    the build folder of the checkout this package sits in (GRAPHSHARD_BUILD_DIR, default build)."""
    explicit = os.environ.get("GRAPHSHARD_OPS_LIBRARY")
    if explicit:
        return Path(explicit)
    here = Path(__file__).resolve().parent
    installed = here / "lib" / _LIBRARY
    if installed.exists():
        return installed
    repo = here.parents[1]
    built = repo / os.environ.get("GRAPHSHARD_BUILD_DIR", "build") / _LIBRARY
    if built.exists():
        return built
    raise ImportError(
        f"graphshard: the operator library {_LIBRARY} was found neither in {installed} nor in "
        f"{built}: build it (./setup.sh) or set GRAPHSHARD_OPS_LIBRARY"
    )


torch.ops.load_library(str(_library_path()))
ops = torch.ops.graphshard


class CommError(torch.distributed.DistBackendError):
    """A collective failed because of a peer (error, death, timeout) or the transport.

    ``op`` is the collective, ``rank`` the rank that raised (in the group), ``peers`` the ranks
    blamed: the root cause of the failure where it can be known, empty when unknown.

    Raised by the forward calls of graphshard's functions in eager mode. A failure inside a
    backward pass, or inside a ``torch.compile``'d region, reaches Python through PyTorch's own
    error handling as ``torch.distributed.DistBackendError`` with the same message; rebuild this
    error from it with :meth:`CommError.from_exception`.
    """

    def __init__(self, message: str, op: str, rank: int, peers: list[int]):
        super().__init__(message)
        self.op = op
        self.rank = rank
        self.peers = peers

    _TAG = re.compile(r"graphshard\.(CommError|CommTimeout)\(op=([^,]*), rank=(-?\d+), peers=\[([^\]]*)\]\): ")

    @classmethod
    def from_exception(cls, exc: BaseException) -> "CommError | None":
        """The CommError (or CommTimeout) an exception from graphshard carries, else None."""
        if isinstance(exc, CommError):
            return exc
        m = cls._TAG.search(str(exc))
        if m is None:
            return None
        kind = CommTimeout if m.group(1) == "CommTimeout" else CommError
        peers = [int(p) for p in m.group(4).split(",") if p.strip()]
        return kind(str(exc)[m.end():], m.group(2), int(m.group(3)), peers)


class CommTimeout(CommError):
    """A collective did not complete within the group's timeout."""


def call(op, *args):
    """Calls an operator, raising CommError for a communication failure (eager mode)."""
    if torch.compiler.is_compiling():
        return op(*args)
    try:
        return op(*args)
    except torch.distributed.DistBackendError as e:
        err = CommError.from_exception(e)
        if err is None:
            raise
        raise err from None


def distributed(group: ProcessGroup | None) -> bool:
    """The group spans more than one rank (SPEC §4, model_is_distributed)."""
    return group is not None and group.size() > 1


def name_of(group: ProcessGroup | None) -> str | None:
    """The name under which the operators resolve a group (as c10d's functional collectives)."""
    return None if group is None else group.group_name
