// Shard sizes, partition ranges and graph shard metadata (SPEC §0, §4).
//
// Everything here is pure metadata: no communication, no tensor data is touched.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace graphshard {

class Communicator;
using CommPtr = std::shared_ptr<Communicator>;

// Per-rank lengths of the pieces of a tensor along ONE dimension; nullopt = replicated.
using ShardSizes = std::optional<std::vector<int64_t>>;

// `parts` sizes summing to n that differ by at most one, larger first:
// balanced_sizes(10, 4) = [3, 3, 2, 2], balanced_sizes(2, 4) = [1, 1, 0, 0].
// Errors: n < 0, parts < 1.
std::vector<int64_t> balanced_sizes(int64_t n, int64_t parts);

// [offset + sum(sizes[:i]), that + sizes[i]). Error if i is outside [0, len(sizes)).
std::pair<int64_t, int64_t> partition_range(const std::vector<int64_t>& sizes, int64_t i,
                                            int64_t offset = 0);

// Sum of the entries (int64, no overflow check beyond int64).
int64_t total(const std::vector<int64_t>& sizes);

// Shard metadata of a plain graph. Immutable value.
class GraphShardInfo {
 public:
  explicit GraphShardInfo(ShardSizes nodes = std::nullopt, ShardSizes edges = std::nullopt)
      : nodes_(std::move(nodes)), edges_(std::move(edges)) {}
  const ShardSizes& nodes() const { return nodes_; }
  const ShardSizes& edges() const { return edges_; }
  bool nodes_are_sharded() const { return nodes_.has_value(); }
  bool edges_are_sharded() const { return edges_.has_value(); }
  bool operator==(const GraphShardInfo& o) const {
    return nodes_ == o.nodes_ && edges_ == o.edges_;
  }
  bool operator!=(const GraphShardInfo& o) const { return !(*this == o); }
  std::string to_string() const;

 private:
  ShardSizes nodes_, edges_;
};

// Shard metadata of a bipartite graph (src nodes, dst nodes, edges). Immutable value.
class BipartiteGraphShardInfo {
 public:
  explicit BipartiteGraphShardInfo(ShardSizes src_nodes = std::nullopt,
                                   ShardSizes dst_nodes = std::nullopt,
                                   ShardSizes edges = std::nullopt)
      : src_nodes_(std::move(src_nodes)), dst_nodes_(std::move(dst_nodes)),
        edges_(std::move(edges)) {}
  const ShardSizes& src_nodes() const { return src_nodes_; }
  const ShardSizes& dst_nodes() const { return dst_nodes_; }
  const ShardSizes& edges() const { return edges_; }
  bool src_is_sharded() const { return src_nodes_.has_value(); }
  bool dst_is_sharded() const { return dst_nodes_.has_value(); }
  bool edges_are_sharded() const { return edges_.has_value(); }
  bool operator==(const BipartiteGraphShardInfo& o) const {
    return src_nodes_ == o.src_nodes_ && dst_nodes_ == o.dst_nodes_ && edges_ == o.edges_;
  }
  bool operator!=(const BipartiteGraphShardInfo& o) const { return !(*this == o); }
  std::string to_string() const;

 private:
  ShardSizes src_nodes_, dst_nodes_, edges_;
};

std::ostream& operator<<(std::ostream& os, const GraphShardInfo& info);
std::ostream& operator<<(std::ostream& os, const BipartiteGraphShardInfo& info);
std::string to_string(const ShardSizes& sizes);  // "[3, 3, 2]" or "None"

// balanced_sizes(tensor.size(dim), W), W = 1 for a null group; never nullopt.
// Error (naming dim, ndim and rank) if dim is outside [-ndim, ndim).
std::vector<int64_t> get_shard_sizes(const at::Tensor& tensor, int64_t dim,
                                     const CommPtr& group = nullptr);

// One full shape per entry of `sizes`: tensor's shape with `dim` replaced by that entry.
std::vector<std::vector<int64_t>> expand_shard_sizes_to_shapes(const at::Tensor& tensor,
                                                               int64_t dim,
                                                               const std::vector<int64_t>& sizes);

// Non-null group with more than one rank.
bool model_is_distributed(const CommPtr& group);

// ChannelsLast if the tensor is contiguous in channels-last (tested first), else Contiguous.
at::MemoryFormat get_memory_format(const at::Tensor& tensor);

}  // namespace graphshard
