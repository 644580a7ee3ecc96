"""Mirror of ``anemoi.models.distributed.utils`` (SPEC §4)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributed.distributed_c10d import ProcessGroup

from graphshard._ops import distributed


def model_is_distributed(
    model_comm_group: ProcessGroup | None = None,
) -> bool:
    """Return whether a model communication group spans multiple ranks."""
    return distributed(model_comm_group)


def get_memory_format(tensor: Tensor):
    """Helper routine to get the memory format.

    ``torch.channels_last`` if the tensor is contiguous in channels-last (tested first, so a
    tensor contiguous in both counts as channels-last), else ``torch.contiguous_format``.
    """
    if tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
