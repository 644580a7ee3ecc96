// Scaling-study configuration: a JSON file, validated on load. Every error names the key path
// (e.g. `graph.mesh.refinement`), what was expected and what was found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/ScalarType.h>

namespace graphshard::study {

struct GraphSpec {
  std::string kind;                  // encoder | decoder | processor | random | file
  int64_t grid_n = 0;                // O_N grid (encoder, decoder)
  int mesh_refinement = 0;           // icosahedral mesh (encoder, decoder, processor)
  int knn = 0;                       // encoder/decoder: k nearest (0: use radius_factor)
  double radius_factor = 0;          // encoder: radius = factor * mesh spacing
  int64_t num_src = 0, num_dst = 0;  // random
  double avg_degree = 0;             // random
  uint64_t seed = 0;                 // random
  std::string path;                  // file
};

struct StudyConfig {
  std::string name;
  GraphSpec graph;
  int64_t channels = 32;      // node feature width
  int64_t edge_channels = 4;  // edge attribute width (generated graphs: 4 geometric features)
  at::ScalarType dtype = at::kFloat;
  bool src_sharded = true;  // inputs as a model holds them: node features sharded
  bool dst_sharded = true;
  std::vector<int> world_sizes;
  std::string engine = "sim";  // sim | gloo
  bool plan_only = false;      // partition metrics only, no features
  int repeats = 3;
  int warmup = 1;
  std::optional<bool> verify;  // nullopt: verify when the graph is small enough
  // `partition: {scheme: NAME | [NAMES], seed: N}` and `src_exchange: NAME | [NAMES]`: the study
  // runs every (scheme, exchange) pair, each over every world size (graphshard/partitioners.h,
  // SrcExchange in graphshard/graph.h). Defaults: what a model does today.
  std::vector<std::string> schemes{"contiguous"};
  uint64_t partition_seed = 0;
  std::vector<std::string> src_exchanges{"all_gather"};
  size_t num_variants() const { return schemes.size() * src_exchanges.size(); }
};

StudyConfig load_study_config(const std::string& path);
StudyConfig parse_study_config(const std::string& json_text, const std::string& origin);

}  // namespace graphshard::study
