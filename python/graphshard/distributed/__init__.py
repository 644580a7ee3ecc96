"""The mirror of ``anemoi.models.distributed``: ``graph``, ``halo``, ``khop_edges``, ``shapes``, ``utils``."""

from graphshard.distributed import graph  # noqa: F401
from graphshard.distributed import halo  # noqa: F401
from graphshard.distributed import khop_edges  # noqa: F401
from graphshard.distributed import shapes  # noqa: F401
from graphshard.distributed import utils  # noqa: F401
