// Checked mode (SPEC §5): ranks agree on each collective before running it; a disagreement
// fails every rank with one message that shows each rank's view.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "graphshard/comm.h"
#include "sim.h"

namespace graphshard {
namespace {

struct CheckedModeOn {
  CheckedModeOn() { set_checked_mode(true); }
  ~CheckedModeOn() { set_checked_mode(false); }
};

TEST(CheckedMode, DisagreeingDtypesFailEveryRankWithEachRanksView) {
  CheckedModeOn on;
  auto world = sim::SimWorld::create(3, std::chrono::seconds(30));
  const auto out = sim::run_ranks_collect(world, [](const CommPtr& comm) {
    at::Tensor t = at::ones({4}, comm->rank() == 1 ? at::kDouble : at::kFloat);
    comm->all_reduce_sum(t);
  });
  for (const auto& o : out) {
    ASSERT_FALSE(o.ok);
    EXPECT_NE(o.error.find("ranks disagree on the next collective"), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("rank 0: all_reduce_sum dtype=Float"), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("rank 1: all_reduce_sum dtype=Double"), std::string::npos) << o.error;
  }
}

TEST(CheckedMode, DifferentOperationsFailEveryRank) {
  CheckedModeOn on;
  auto world = sim::SimWorld::create(2, std::chrono::seconds(30));
  const auto out = sim::run_ranks_collect(world, [](const CommPtr& comm) {
    if (comm->rank() == 0) {
      comm->barrier();
    } else {
      at::Tensor t = at::ones({2});
      comm->all_reduce_sum(t);
    }
  });
  for (const auto& o : out) {
    ASSERT_FALSE(o.ok);
    EXPECT_NE(o.error.find("rank 0: barrier"), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("rank 1: all_reduce_sum"), std::string::npos) << o.error;
  }
}

TEST(CheckedMode, MismatchedAllToAllPairsFailEveryRank) {
  CheckedModeOn on;
  auto world = sim::SimWorld::create(2, std::chrono::seconds(30));
  const auto out = sim::run_ranks_collect(world, [](const CommPtr& comm) {
    // Rank 0 sends 2 elements to rank 1, which expects 3.
    const std::vector<int64_t> send{1, 2};
    std::vector<int64_t> recv_counts =
        comm->rank() == 0 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{3, 2};
    at::Tensor r = at::empty({recv_counts[0] + recv_counts[1]});
    comm->all_to_all_v(at::ones({3}), send, r, recv_counts);
  });
  for (const auto& o : out) {
    ASSERT_FALSE(o.ok);
    EXPECT_NE(o.error.find("checked mode"), std::string::npos) << o.error;
  }
}

TEST(CheckedMode, AgreeingRanksRunNormallyAndOffByDefault) {
  EXPECT_FALSE(checked_mode());
  CheckedModeOn on;
  sim::run_ranks(4, [](const CommPtr& comm) {
    at::Tensor t = at::ones({3});
    comm->all_reduce_sum(t);
    ASSERT_EQ(t[0].item<float>(), 4.0f);
    comm->barrier();
  });
}

}  // namespace
}  // namespace graphshard
