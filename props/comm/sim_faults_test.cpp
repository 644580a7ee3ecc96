// The simulated communicator's failure model, ledger and scale (SPEC §5).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "graphshard/shapes.h"
#include "sim.h"

namespace graphshard::sim {
namespace {

using std::chrono::milliseconds;

void all_gather_once(const CommPtr& comm) {
  std::vector<int64_t> counts(comm->size(), 3);
  at::Tensor recv = at::empty({3 * comm->size()});
  comm->all_gather_v(at::ones({3}), recv, counts);
}

// Every survivor must raise CommError naming `blamed` within `limit`.
void expect_survivors_blame(const std::vector<RankOutcome>& out, int victim, milliseconds limit) {
  for (size_t r = 0; r < out.size(); ++r) {
    if (static_cast<int>(r) == victim) continue;
    ASSERT_FALSE(out[r].ok) << "rank " << r << " did not notice";
    ASSERT_TRUE(out[r].exception) << out[r].error;
    try {
      std::rethrow_exception(out[r].exception);
    } catch (const CommError& e) {
      EXPECT_EQ(e.op(), "all_gather_v") << e.what();
      EXPECT_EQ(e.rank(), static_cast<int>(r));
      EXPECT_NE(std::find(e.peers().begin(), e.peers().end(), victim), e.peers().end())
          << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(victim)), std::string::npos);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank " << r << " raised the wrong type: " << e.what();
    }
    EXPECT_LE(out[r].elapsed, limit) << "rank " << r;
  }
}

TEST(SimWorld, DelayWithinTheTimeoutStillCompletes) {
  auto world = SimWorld::create(3, milliseconds(5000));
  world->delay(1, 0, milliseconds(100));
  for (const auto& o : run_ranks_collect(world, all_gather_once)) EXPECT_TRUE(o.ok) << o.error;
}

TEST(SimWorld, StalledRankMakesTheOthersTimeOutNamingIt) {
  auto world = SimWorld::create(4, milliseconds(200));
  world->delay(2, 0, milliseconds(1500));
  const auto out = run_ranks_collect(world, all_gather_once);
  expect_survivors_blame(out, 2, milliseconds(200 + 500));
  bool someone_timed_out = false;
  for (const auto& o : out) {
    try {
      if (o.exception) std::rethrow_exception(o.exception);
    } catch (const CommTimeout&) {
      someone_timed_out = true;
    } catch (...) {
    }
  }
  EXPECT_TRUE(someone_timed_out);
}

TEST(SimWorld, KilledRankMakesSurvivorsRaiseWithoutWaitingForTheTimeout) {
  auto world = SimWorld::create(4, milliseconds(30000));
  world->kill_at(3, 1);  // dies before its second collective
  const auto out = run_ranks_collect(world, [](const CommPtr& comm) {
    all_gather_once(comm);
    all_gather_once(comm);
  });
  EXPECT_TRUE(out[3].killed);
  expect_survivors_blame(out, 3, milliseconds(2000));
}

TEST(SimWorld, RankThatThrowsBeforeACollectiveMakesSurvivorsRaise) {
  auto world = SimWorld::create(3, milliseconds(30000));
  world->fail_at(0, 0);
  const auto out = run_ranks_collect(world, all_gather_once);
  EXPECT_NE(out[0].error.find("injected failure"), std::string::npos) << out[0].error;
  expect_survivors_blame(out, 0, milliseconds(2000));
}

TEST(SimWorld, UserExceptionOnOneRankDoesNotHangTheOthers) {
  auto world = SimWorld::create(3, milliseconds(30000));
  const auto out = run_ranks_collect(world, [](const CommPtr& comm) {
    if (comm->rank() == 1) throw std::runtime_error("bad input on rank 1 only");
    all_gather_once(comm);
  });
  expect_survivors_blame(out, 1, milliseconds(2000));
}

TEST(SimWorld, RanksInDifferentCollectivesAllRaise) {
  auto world = SimWorld::create(2, milliseconds(5000));
  const auto out = run_ranks_collect(world, [](const CommPtr& comm) {
    if (comm->rank() == 0) {
      comm->barrier();
    } else {
      at::Tensor t = at::ones({2});
      comm->all_reduce_sum(t);
    }
  });
  for (const auto& o : out) {
    EXPECT_FALSE(o.ok);
    EXPECT_NE(o.error.find("disagree"), std::string::npos) << o.error;
  }
}

TEST(SimWorld, DisagreeingCountsRaiseOnEveryRank) {
  auto world = SimWorld::create(3, milliseconds(5000));
  const auto out = run_ranks_collect(world, [](const CommPtr& comm) {
    std::vector<int64_t> counts{1, 1, 1};
    if (comm->rank() == 2) counts = {1, 2, 0};
    at::Tensor recv = at::empty({3});
    comm->all_gather_v(at::ones({counts[comm->rank()]}), recv, counts);
  });
  for (const auto& o : out) {
    EXPECT_FALSE(o.ok);
    EXPECT_NE(o.error.find("disagree on counts"), std::string::npos) << o.error;
  }
}

TEST(SimWorld, BadBuffersAreRejectedBeforeCommunicating) {
  auto world = SimWorld::create(2);
  const auto out = run_ranks_collect(world, [](const CommPtr& comm) {
    at::Tensor recv = at::empty({5});
    comm->all_gather_v(at::ones({2}), recv, {2, 2});
  });
  for (const auto& o : out) {
    EXPECT_NE(o.error.find("graphshard::Communicator::all_gather_v: recv numel: expected 4, got 5"),
              std::string::npos)
        << o.error;
  }
  EXPECT_EQ(world->op_counts(), (std::vector<int64_t>{0, 0}));
}

TEST(TrafficLedger, RecordsThePointToPointBytesOfEachCollective) {
  auto world = SimWorld::create(3);
  const std::vector<int64_t> counts{4, 0, 2};
  const auto out = run_ranks_collect(world, [&](const CommPtr& comm) {
    at::Tensor recv = at::empty({6});
    comm->all_gather_v(at::ones({counts[comm->rank()]}), recv, counts);
    at::Tensor buf = at::ones({6}, at::kDouble);
    comm->all_reduce_sum(buf);
  });
  for (const auto& o : out) ASSERT_TRUE(o.ok) << o.error;
  const auto ledger = world->ledger();
  EXPECT_EQ(ledger.bytes_sent(0, "all_gather_v"), 2 * 4 * 4);  // to ranks 1 and 2
  EXPECT_EQ(ledger.bytes_sent(1, "all_gather_v"), 0);
  EXPECT_EQ(ledger.bytes_received(1, "all_gather_v"), (4 + 2) * 4);
  EXPECT_EQ(ledger.bytes_sent(0, "all_reduce_sum"), 2 * 2 * 6 * 8 / 3);  // ring: 2(W-1)/W
  EXPECT_EQ(ledger.total_bytes(), ledger.total_bytes("all_gather_v") +
                                      ledger.total_bytes("all_reduce_sum"));
}

TEST(RunRanks, RethrowsTheRootCauseNotThePeersReactions) {
  try {
    run_ranks(4, [](const CommPtr& comm) {
      if (comm->rank() == 2) throw std::invalid_argument("root cause on rank 2");
      all_gather_once(comm);
    });
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "root cause on rank 2");
  }
}

TEST(SimWorld, EveryCollectiveWorksAtSixtyFourRanks) {
  const int w = 64;
  run_ranks(w, [&](const CommPtr& comm) {
    const int r = comm->rank();
    std::vector<int64_t> counts(w);
    for (int q = 0; q < w; ++q) counts[q] = q % 3;
    at::Tensor recv = at::empty({total(counts)}, at::kLong);
    comm->all_gather_v(at::full({counts[r]}, r, at::kLong), recv, counts);
    ASSERT_EQ(recv.sum().item<int64_t>(), [&] {
      int64_t s = 0;
      for (int q = 0; q < w; ++q) s += q * counts[q];
      return s;
    }());
    at::Tensor buf = at::full({5}, r, at::kLong);
    comm->all_reduce_sum(buf);
    ASSERT_EQ(buf[0].item<int64_t>(), w * (w - 1) / 2);
    at::Tensor piece = at::empty({counts[r]}, at::kLong);
    comm->reduce_scatter_v(at::ones({total(counts)}, at::kLong), piece, counts);
    if (counts[r] > 0) ASSERT_EQ(piece[0].item<int64_t>(), w);
    std::vector<int64_t> ones(w, 1);
    at::Tensor got = at::empty({w}, at::kLong);
    comm->all_to_all_v(at::full({w}, r, at::kLong), ones, got, ones);
    ASSERT_TRUE(at::equal(got, at::arange(w, at::kLong)));
    comm->barrier();
  });
}

}  // namespace
}  // namespace graphshard::sim
