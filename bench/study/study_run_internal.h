// What the study runner (study_run.cpp) and one rank's work (study_rank.cpp) share: the
// study's inputs, the unsharded reference, one rank's timed passes and its check against the
// reference. Internal to bench/study.
#pragma once

#include <chrono>
#include <string>

#include <ATen/ATen.h>

#include "counting_comm.h"
#include "graphshard/graph.h"
#include "study_layer.h"
#include "study_run.h"

namespace graphshard::study::detail {

using Clock = std::chrono::steady_clock;

// Whole-world inputs of one study, built once per world size (same values for every W).
struct Inputs {
  at::Tensor x_src, x_dst, edge_attr, edge_index, upstream;
  LayerWeights weights;
};

Inputs make_inputs(const Graph& g, const StudyConfig& c, at::ScalarType dtype);

// The unsharded layer in float64 with its gradients: what every sharded run must reproduce.
struct Reference {
  Inputs in;  // float64
  at::Tensor out, grad_x_src, grad_x_dst, grad_edge_attr, grad_w_src, grad_w_edge, grad_w_dst;
};

Reference make_reference(const Graph& g, const StudyConfig& c);

// One rank's check of the sharded layer against the unsharded one (float64): output (gathered),
// gradients of the node features (this rank's piece), of the edge attributes and of the weights
// (summed over ranks: replicated weights receive partial gradients). Returns "" or what differs.
// Every rank runs the same collectives whatever it finds, so none is left waiting.
std::string verify_rank(const StudyConfig& c, const GraphPartition& partition, const Reference& ref,
                        int world, const CommPtr& comm);

// One rank's timed passes: warm-up and repeats of (shard_graph_to_local, layer forward,
// backward), each stage started together (barrier) and timed on this rank (wall and thread CPU).
RankMetrics measure_rank(const StudyConfig& c, const GraphPartition& partition, const Inputs& in,
                         int world, CountingCommunicator& comm_ref, const CommPtr& comm);

}  // namespace graphshard::study::detail
