"""graphshard: model-parallel sharding primitives for graph neural networks, in C++.

A drop-in for ``anemoi.models.distributed``: the modules of :mod:`graphshard.distributed` mirror
``graph``, ``khop_edges``, ``shapes`` and ``utils`` name by name, on any ``torch.distributed``
process group (Gloo for CPU tensors, NCCL for CUDA tensors, subgroups, or ``None``). Every
function runs graphshard's C++ library through PyTorch operators (``torch.ops.graphshard``),
under autograd and ``torch.compile``.

Errors: bad arguments raise ``ValueError`` with graphshard's message (function, argument,
expected, actual, rank); communication failures raise :class:`CommError`.
"""

from graphshard._ops import CommError
from graphshard._ops import CommTimeout
from graphshard._ops import ops

__all__ = ["CommError", "CommTimeout", "ops", "distributed"]
__version__ = "0.1.0"

from graphshard import distributed  # noqa: E402
