// Examples of the shapes and utils API (SPEC §0, §4).
#include <sstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "graphshard/shapes.h"
#include "sim.h"

namespace graphshard {
namespace {

TEST(BalancedSizes, MatchesTheSpecExamples) {
  EXPECT_EQ(balanced_sizes(10, 4), (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_EQ(balanced_sizes(2, 4), (std::vector<int64_t>{1, 1, 0, 0}));
  EXPECT_EQ(balanced_sizes(0, 3), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_THROW(balanced_sizes(5, 0), c10::ValueError);
  EXPECT_THROW(balanced_sizes(-1, 2), c10::ValueError);
}

TEST(PartitionRange, AddsTheOffset) {
  EXPECT_EQ(partition_range({3, 3, 2, 2}, 2, 10), (std::pair<int64_t, int64_t>{16, 18}));
  EXPECT_EQ(partition_range({0, 5}, 0), (std::pair<int64_t, int64_t>{0, 0}));
}

TEST(GraphShardInfo, IsAComparablePrintableValue) {
  const GraphShardInfo a(std::vector<int64_t>{2, 2}, std::nullopt);
  EXPECT_TRUE(a.nodes_are_sharded());
  EXPECT_FALSE(a.edges_are_sharded());
  EXPECT_EQ(a, GraphShardInfo(std::vector<int64_t>{2, 2}));
  EXPECT_NE(a, GraphShardInfo());
  std::ostringstream os;
  os << a;
  EXPECT_EQ(os.str(), "GraphShardInfo(nodes=[2, 2], edges=None)");
}

TEST(BipartiteGraphShardInfo, IsAComparablePrintableValue) {
  const BipartiteGraphShardInfo b(std::nullopt, std::vector<int64_t>{1, 0}, std::vector<int64_t>{4, 3});
  EXPECT_FALSE(b.src_is_sharded());
  EXPECT_TRUE(b.dst_is_sharded());
  EXPECT_TRUE(b.edges_are_sharded());
  EXPECT_EQ(b, b);
  EXPECT_NE(b, BipartiteGraphShardInfo());
  EXPECT_EQ(b.to_string(), "BipartiteGraphShardInfo(src_nodes=None, dst_nodes=[1, 0], edges=[4, 3])");
}

TEST(GetShardSizes, UsesTheGroupSizeAndNegativeDims) {
  const at::Tensor t = at::empty({3, 10});
  EXPECT_EQ(get_shard_sizes(t, -1), (std::vector<int64_t>{10}));
  auto world = sim::SimWorld::create(4);
  EXPECT_EQ(get_shard_sizes(t, 1, world->communicator(2)), (std::vector<int64_t>{3, 3, 2, 2}));
  try {
    get_shard_sizes(t, 2, world->communicator(2));
    FAIL() << "no error for dim 2 of a 2-D tensor";
  } catch (const c10::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("graphshard::get_shard_sizes: dim"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(rank 2)"), std::string::npos) << msg;
  }
}

TEST(ExpandShardSizesToShapes, ReplacesTheDim) {
  const at::Tensor t = at::empty({5, 6, 7});
  EXPECT_EQ(expand_shard_sizes_to_shapes(t, -2, {4, 2}),
            (std::vector<std::vector<int64_t>>{{5, 4, 7}, {5, 2, 7}}));
}

TEST(ModelIsDistributed, NeedsAGroupOfMoreThanOneRank) {
  EXPECT_FALSE(model_is_distributed(nullptr));
  EXPECT_FALSE(model_is_distributed(sim::SimWorld::create(1)->communicator(0)));
  EXPECT_TRUE(model_is_distributed(sim::SimWorld::create(2)->communicator(1)));
}

TEST(GetMemoryFormat, ChannelsLastIsTestedFirst) {
  EXPECT_EQ(get_memory_format(at::empty({2, 3, 4, 5})), at::MemoryFormat::Contiguous);
  EXPECT_EQ(get_memory_format(at::empty({2, 3, 4, 5}, at::MemoryFormat::ChannelsLast)),
            at::MemoryFormat::ChannelsLast);
  // Contiguous in both formats (C = 1): counts as channels-last.
  EXPECT_EQ(get_memory_format(at::empty({2, 1, 4, 5})), at::MemoryFormat::ChannelsLast);
  EXPECT_EQ(get_memory_format(at::empty({2, 3})), at::MemoryFormat::Contiguous);
  EXPECT_EQ(get_memory_format(at::empty({4, 6}).t()), at::MemoryFormat::Contiguous);
}

}  // namespace
}  // namespace graphshard
