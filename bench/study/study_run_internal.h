// What the study runner (study_run.cpp) and one rank's work (study_rank.cpp) share: the
// study's inputs, the unsharded reference, one rank's timed passes and its check against the
// reference. Internal to bench/study.
#pragma once

#include <chrono>
#include <string>

#include <ATen/ATen.h>

#include "counting_comm.h"
#include "graphshard/graph.h"
#include "graphshard/partitioners.h"
#include "study_layer.h"
#include "study_run.h"

namespace graphshard::study::detail {

using Clock = std::chrono::steady_clock;

// One variant of a study at one world size: the graph renumbered by the partitioning scheme
// (graphshard/partitioners.h; contiguous leaves the ids as they are), its partition, the
// sources' part sizes and the exchange shard_graph_to_local uses.
struct WorldPlan {
  int world = 1;
  std::string scheme = "contiguous", src_exchange = "all_gather";
  GraphPartition partition;
  std::vector<int64_t> src_splits;
  at::Tensor edge_index;                   // renumbered, dst-sorted
  at::Tensor src_perm, dst_perm, edge_perm;  // renumbered i is the graph's perm[i]
  SrcExchange exchange() const {
    return src_exchange == "halo" ? SrcExchange::kHalo : SrcExchange::kAllGather;
  }
};

WorldPlan plan_partition(const Graph& g, const StudyConfig& c, int world, const std::string& scheme,
                         const std::string& src_exchange);

// Whole-world inputs of one study, built once (same values for every W and variant), in the
// graph's numbering or, permuted, in a plan's.
struct Inputs {
  at::Tensor x_src, x_dst, edge_attr, edge_index, upstream;
  LayerWeights weights;
};

Inputs make_inputs(const Graph& g, const StudyConfig& c, at::ScalarType dtype);
Inputs permute_inputs(const Inputs& in, const WorldPlan& plan);

// The unsharded layer in float64 with its gradients: what every sharded run must reproduce.
struct Reference {
  Inputs in;  // float64
  at::Tensor out, grad_x_src, grad_x_dst, grad_edge_attr, grad_w_src, grad_w_edge, grad_w_dst;
};

Reference make_reference(const Graph& g, const StudyConfig& c);
// The reference in a plan's numbering: the same values, rows permuted as the plan's inputs are.
Reference permute_reference(const Reference& ref, const WorldPlan& plan);

// One rank's check of the sharded layer against the unsharded one (float64): output (gathered),
// gradients of the node features (this rank's piece), of the edge attributes and of the weights
// (summed over ranks: replicated weights receive partial gradients). Returns "" or what differs.
// Every rank runs the same collectives whatever it finds, so none is left waiting.
std::string verify_rank(const StudyConfig& c, const WorldPlan& plan, const Reference& ref,
                        const CommPtr& comm);

// One rank's timed passes: warm-up and repeats of (shard_graph_to_local, layer forward,
// backward), each stage started together (barrier) and timed on this rank (wall and thread CPU).
RankMetrics measure_rank(const StudyConfig& c, const WorldPlan& plan, const Inputs& in,
                         CountingCommunicator& comm_ref, const CommPtr& comm);

}  // namespace graphshard::study::detail
