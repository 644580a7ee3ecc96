"""Unmodified anemoi-models processors, sharded over Gloo on W = 4 ranks, with and without
``use_graphshard()``: test_anemoi.py's tests (anemoi_checks) of the GraphTransformerProcessor (two
float32 cases), on one spawn of four ranks. The mapper at W = 4: test_anemoi_w4_mapper.py.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "anemoi.models.layers.mapper",
    reason="anemoi-models (with anemoi-utils, hydra-core, omegaconf, antlr4, PyYAML) is not importable",
)
pytest.importorskip("anemoi.models.layers.processor", reason="anemoi.models.layers.processor is not importable")

from anemoi_checks import (  # noqa: E402
    PROCESSOR_CASES,
    check_layer_same_with_and_without_graphshard,
    check_sharded_layer_equals_unsharded,
    check_swap_really_happened,
    spawn_layers,
)


@pytest.fixture(scope="module", params=[4], ids=lambda w: f"W{w}")
def ranks(request):
    return spawn_layers(request.param, ("processor",))


@pytest.mark.parametrize("case", PROCESSOR_CASES)
def test_layer_same_with_and_without_graphshard(ranks, case):
    """Outputs and every gradient per rank: anemoi's and graphshard's agree (float32)."""
    check_layer_same_with_and_without_graphshard(ranks, case)


@pytest.mark.parametrize("case", PROCESSOR_CASES)
def test_sharded_layer_equals_unsharded(ranks, case):
    """Both implementations: outputs and input gradients per rank, weight gradients summed."""
    check_sharded_layer_equals_unsharded(ranks, case)


def test_swap_really_happened(ranks):
    check_swap_really_happened(ranks)
