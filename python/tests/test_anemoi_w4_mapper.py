"""Unmodified anemoi-models mappers, sharded over Gloo on W = 4 ranks, with and without
``use_graphshard()``: test_anemoi.py's tests (anemoi_checks) of the GraphTransformerForwardMapper
(three float32 cases, the float64 one, and the dataclass mixing), on one spawn of four ranks.
The processor at W = 4: test_anemoi_w4_processor.py.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "anemoi.models.layers.mapper",
    reason="anemoi-models (with anemoi-utils, hydra-core, omegaconf, antlr4, PyYAML) is not importable",
)
pytest.importorskip("anemoi.models.layers.processor", reason="anemoi.models.layers.processor is not importable")

from anemoi_checks import (  # noqa: E402
    MAPPER_CASES,
    check_dataclass_mixing_both_ways,
    check_float64_graphshard_matches_unsharded_tightly,
    check_layer_same_with_and_without_graphshard,
    check_sharded_layer_equals_unsharded,
    check_swap_really_happened,
    spawn_layers,
)


@pytest.fixture(scope="module", params=[4], ids=lambda w: f"W{w}")
def ranks(request):
    return spawn_layers(request.param, ("mapper",))


@pytest.mark.parametrize("case", MAPPER_CASES)
def test_layer_same_with_and_without_graphshard(ranks, case):
    """Outputs and every gradient per rank: anemoi's and graphshard's agree (float32)."""
    check_layer_same_with_and_without_graphshard(ranks, case)


@pytest.mark.parametrize("case", MAPPER_CASES)
def test_sharded_layer_equals_unsharded(ranks, case):
    """Both implementations: outputs and input gradients per rank, weight gradients summed."""
    check_sharded_layer_equals_unsharded(ranks, case)


def test_float64_graphshard_matches_unsharded_tightly(ranks):
    check_float64_graphshard_matches_unsharded_tightly(ranks)


def test_swap_really_happened(ranks):
    check_swap_really_happened(ranks)


def test_dataclass_mixing_both_ways(ranks):
    """graphshard's shard_graph_to_local on anemoi's GraphPartition/BipartiteGraphShardInfo, and
    anemoi's on graphshard's (it calls partition._relabel_dst_nodes), give the same, bitwise."""
    check_dataclass_mixing_both_ways(ranks)
