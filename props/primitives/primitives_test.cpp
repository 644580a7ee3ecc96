// Example tests of the tensor primitives: accumulation precision of reductions (SPEC §2
// [differs]), bypass with a null group, refusal of double backward, the collectives each
// primitive issues, what the other ranks see when only one rank has a bad argument, and
// checked mode at the primitive level.
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "graphshard/primitives.h"
#include "sim.h"

namespace graphshard {
namespace {

// Rank q holds values[q] in every element; returns what reduce_tensor gives every rank.
std::vector<at::Tensor> reduce_everywhere(const std::vector<double>& values, at::ScalarType type,
                                          bool shard) {
  const int w = static_cast<int>(values.size());
  std::vector<at::Tensor> out(w);
  sim::run_ranks(w, [&](const CommPtr& comm) {
    const int r = comm->rank();
    at::Tensor x = at::full({2 * w, 3}, values[r], at::TensorOptions().dtype(type));
    out[r] = shard ? reduce_shard_tensor(x, 0, std::vector<int64_t>(w, 2), comm)
                   : reduce_tensor(x, comm);
  });
  return out;
}

// float16 spacing at 2048 is 2: summing 2048 + 1 + 1 + 1 in float16 stays at 2048, in float32 it
// is 2051, which rounds to 2052.
// Staging memory is reused: a second request of a slot no larger than the first gets the same
// memory (no fresh pages), a larger one grows it, and slots are distinct.
TEST(CommunicatorScratch, ReusesEachSlotAndGrowsOnDemand) {
  sim::run_ranks(2, [](const CommPtr& comm) {
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    const at::Tensor a = comm->scratch(Communicator::kStaging, 1000, f32);
    EXPECT_EQ(a.numel(), 1000);
    EXPECT_EQ(a.scalar_type(), at::kFloat);
    const void* first = a.data_ptr();
    EXPECT_EQ(comm->scratch(Communicator::kStaging, 10, at::TensorOptions().dtype(at::kDouble))
                  .data_ptr(),
              first);
    EXPECT_NE(comm->scratch(Communicator::kPack, 1000, f32).data_ptr(), first);
    EXPECT_EQ(comm->scratch(Communicator::kStaging, 5000, f32).numel(), 5000);
    comm->release_scratch();
    EXPECT_EQ(comm->scratch(Communicator::kStaging, 0, f32).numel(), 0);
    try {
      comm->scratch(Communicator::kStaging, -1, f32);
      ADD_FAILURE() << "no error for a negative numel";
    } catch (const c10::ValueError& e) {
      const std::string msg = e.what_without_backtrace();
      EXPECT_NE(msg.find("Communicator::scratch: numel"), std::string::npos) << msg;
      EXPECT_NE(msg.find("rank " + std::to_string(comm->rank())), std::string::npos) << msg;
    }
  });
}

TEST(CommunicatorReduceScatter, RejectsAnOwnPieceOfTheWrongSizeOrDtype) {
  sim::run_ranks(2, [](const CommPtr& comm) {
    const at::Tensor send = at::ones({6}), recv = at::empty({3});
    for (const at::Tensor& own : {at::ones({2, 2}), at::ones({3}, at::kDouble)}) {
      try {
        comm->reduce_scatter_v(send, recv, {3, 3}, own);
        ADD_FAILURE() << "no error for own " << own.sizes() << " " << own.scalar_type();
      } catch (const c10::ValueError& e) {
        const std::string msg = e.what_without_backtrace();
        EXPECT_NE(msg.find("Communicator::reduce_scatter_v: own"), std::string::npos) << msg;
        EXPECT_NE(msg.find("rank " + std::to_string(comm->rank())), std::string::npos) << msg;
      }
    }
  });
}

TEST(ReduceTensor, Float16AccumulatesInFloat32) {
  for (const at::Tensor& t : reduce_everywhere({2048, 1, 1, 1}, at::kHalf, false)) {
    EXPECT_EQ(t.scalar_type(), at::kHalf);
    EXPECT_TRUE(at::equal(t, at::full_like(t, 2052))) << t;
  }
}

// bfloat16 spacing at 256 is 2: 256 + 1 + 1 + 1 is 256 in bfloat16, 259 -> 260 via float32.
TEST(ReduceTensor, BFloat16AccumulatesInFloat32) {
  for (const at::Tensor& t : reduce_everywhere({256, 1, 1, 1}, at::kBFloat16, false)) {
    EXPECT_EQ(t.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::equal(t, at::full_like(t, 260))) << t;
  }
}

TEST(ReduceShardTensor, Float16AccumulatesInFloat32) {
  for (const at::Tensor& t : reduce_everywhere({2048, 1, 1, 1}, at::kHalf, true)) {
    EXPECT_EQ(t.scalar_type(), at::kHalf);
    EXPECT_EQ(t.size(0), 2);
    EXPECT_TRUE(at::equal(t, at::full_like(t, 2052))) << t;
  }
}

// 1 + 1e-12 is 1 in float32; float64 keeps it.
TEST(ReduceTensor, Float64IsNotDowncast) {
  for (const at::Tensor& t : reduce_everywhere({1.0, 1e-12}, at::kDouble, false)) {
    EXPECT_EQ(t.scalar_type(), at::kDouble);
    EXPECT_EQ(t[0][0].item<double>(), 1.0 + 1e-12);
  }
  for (const at::Tensor& t : reduce_everywhere({1.0, 1e-12}, at::kDouble, true)) {
    EXPECT_EQ(t[0][0].item<double>(), 1.0 + 1e-12);
  }
}

// 2^53 + 1 is not representable in float64; int64 sums exactly.
TEST(ReduceTensor, Int64SumsExactly) {
  const int w = 2;
  std::vector<at::Tensor> out(w);
  sim::run_ranks(w, [&](const CommPtr& comm) {
    at::Tensor x = at::full({3}, comm->rank() == 0 ? (int64_t{1} << 53) : int64_t{1}, at::kLong);
    out[comm->rank()] = reduce_tensor(x, comm);
  });
  for (const at::Tensor& t : out) EXPECT_EQ(t[0].item<int64_t>(), (int64_t{1} << 53) + 1);
}

// SPEC §0: a null group returns the input itself (same TensorImpl), for every function.
TEST(EnsureSharded, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3});
  const auto [y, sizes] = ensure_sharded(x, 0, std::nullopt, nullptr);
  EXPECT_TRUE(y.is_same(x));
  EXPECT_EQ(sizes, ShardSizes(std::vector<int64_t>{4}));
  const auto [z, given] = ensure_sharded(x, -2, std::vector<int64_t>{4}, nullptr);
  EXPECT_TRUE(z.is_same(x));
  EXPECT_THROW(ensure_sharded(x, 0, std::vector<int64_t>{3}, nullptr), c10::ValueError);
}

TEST(ShardTensor, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3}).requires_grad_();
  EXPECT_TRUE(shard_tensor(x, 0, std::vector<int64_t>{4}, nullptr).is_same(x));
  EXPECT_TRUE(shard_tensor(x, 1, std::nullopt, nullptr, false).is_same(x));
}
TEST(GatherTensor, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3}).requires_grad_();
  EXPECT_TRUE(gather_tensor(x, 0, std::nullopt, nullptr).is_same(x));
}
TEST(ReduceTensor, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3}).requires_grad_();
  EXPECT_TRUE(reduce_tensor(x, nullptr).is_same(x));
}
TEST(SyncTensor, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3}).requires_grad_();
  EXPECT_TRUE(sync_tensor(x, 0, std::vector<int64_t>{4}, nullptr).is_same(x));
}
TEST(ReduceShardTensor, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3}).requires_grad_();
  EXPECT_TRUE(reduce_shard_tensor(x, 0, std::vector<int64_t>{4}, nullptr).is_same(x));
}
TEST(AllToAllTranspose, NullGroupReturnsInputItself) {
  const at::Tensor x = at::randn({4, 3}).requires_grad_();
  EXPECT_TRUE(all_to_all_transpose(x, 0, std::nullopt, 1, std::nullopt, nullptr).is_same(x));
}

// Backward through a communication is not itself differentiable here: create_graph is refused
// on every rank with a message naming the function.
TEST(GatherTensor, DoubleBackwardIsRefusedOnEveryRank) {
  auto world = sim::SimWorld::create(2, std::chrono::seconds(30));
  const auto outcomes = sim::run_ranks_collect(world, [](const CommPtr& comm) {
    at::Tensor x = at::randn({2, 3}).requires_grad_();
    at::Tensor y = gather_tensor(x, 0, std::vector<int64_t>{2, 2}, comm);
    torch::autograd::grad({y.sum()}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  });
  for (const auto& o : outcomes) {
    ASSERT_FALSE(o.ok);
    EXPECT_NE(o.error.find("graphshard::gather_tensor: backward"), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("double backward"), std::string::npos) << o.error;
  }
}

TEST(ShardTensor, PlainBackwardIsAccepted) {
  sim::run_ranks(3, [](const CommPtr& comm) {
    at::Tensor x = at::arange(12, at::kDouble).view({6, 2}).requires_grad_();
    at::Tensor y = shard_tensor(x, 0, std::vector<int64_t>{1, 2, 3}, comm);
    const at::Tensor g = torch::autograd::grad({y.sum()}, {x})[0];
    EXPECT_TRUE(at::equal(g, at::ones_like(x)));
  });
}

// Integer tensors pass through without autograd, in their own dtype.
TEST(GatherTensor, IntegerTensorsPassWithoutAutograd) {
  sim::run_ranks(2, [](const CommPtr& comm) {
    at::Tensor ei = at::full({2, 3}, comm->rank(), at::kLong);
    at::Tensor out = gather_tensor(ei, 1, std::vector<int64_t>{3, 3}, comm);
    EXPECT_EQ(out.scalar_type(), at::kLong);
    EXPECT_FALSE(out.requires_grad());
    EXPECT_FALSE(out.grad_fn());
    EXPECT_EQ(out.sum().item<int64_t>(), 6);
  });
}

// "No hidden copies" at the level of collectives: one collective per primitive, of the
// expected kind (reduce_shard_tensor is one reduce-scatter, never all-reduce + split).
std::vector<std::string> ops_of(int w, const std::function<void(const CommPtr&)>& fn,
                                int collectives = 1) {
  auto world = sim::SimWorld::create(w, std::chrono::seconds(30));
  const auto outcomes = sim::run_ranks_collect(world, fn);
  for (const auto& o : outcomes) EXPECT_TRUE(o.ok) << o.error;
  for (int64_t n : world->op_counts()) EXPECT_EQ(n, collectives);
  std::vector<std::string> ops;
  const sim::TrafficLedger ledger = world->ledger();  // a copy: keep it alive while iterating
  for (const auto& [key, bytes] : ledger.entries()) {
    if (ops.empty() || ops.back() != key.op) ops.push_back(key.op);
  }
  return ops;
}

TEST(ReduceShardTensor, IsOneReduceScatter) {
  const auto ops = ops_of(3, [](const CommPtr& comm) {
    reduce_shard_tensor(at::ones({4, 6}), 1, std::vector<int64_t>{1, 2, 3}, comm);
  });
  EXPECT_EQ(ops, std::vector<std::string>{"reduce_scatter_v"});
}

// SPEC §2: reduce, then keep piece r, is one reduce-scatter (half the bytes of an all-reduce).
TEST(SyncTensor, BackwardIsOneReduceScatter) {
  const auto ops = ops_of(3, [](const CommPtr& comm) {
    const at::Tensor x = at::ones({comm->rank() + 1, 4}).requires_grad_(true);
    sync_tensor(x, 0, std::vector<int64_t>{1, 2, 3}, comm).sum().backward();
  }, /*collectives=*/2);  // the forward's all-gather, the backward's reduce-scatter
  EXPECT_EQ(ops, (std::vector<std::string>{"all_gather_v", "reduce_scatter_v"}));
}

// The engine's out-of-place all-reduce: one collective, no reduce-scatter + all-gather pair.
TEST(ReduceTensor, IsOneAllReduce) {
  const auto ops = ops_of(3, [](const CommPtr& comm) { reduce_tensor(at::ones({4, 6}), comm); });
  EXPECT_EQ(ops, std::vector<std::string>{"all_reduce_sum"});
}

TEST(GatherTensor, IsOneAllGather) {
  const auto ops = ops_of(3, [](const CommPtr& comm) {
    gather_tensor(at::ones({4, comm->rank() + 1}), -1, std::vector<int64_t>{1, 2, 3}, comm);
  });
  EXPECT_EQ(ops, std::vector<std::string>{"all_gather_v"});
}

TEST(AllToAllTranspose, IsOneAllToAll) {
  const auto ops = ops_of(3, [](const CommPtr& comm) {
    all_to_all_transpose(at::ones({6, 2, comm->rank() + 1}), 0, std::vector<int64_t>{1, 2, 3}, 2,
                         std::vector<int64_t>{1, 2, 3}, comm);
  });
  EXPECT_EQ(ops, std::vector<std::string>{"all_to_all_v"});
}

// A bad argument only one rank can see: that rank raises ValueError, the others do not hang
// but raise CommError naming it, well within the timeout.
TEST(GatherTensor, OneRankWithBadSizeFailsTheOthersPromptly) {
  auto world = sim::SimWorld::create(3, std::chrono::seconds(30));
  const auto outcomes = sim::run_ranks_collect(world, [](const CommPtr& comm) {
    const int64_t rows = comm->rank() == 1 ? 5 : 2;
    gather_tensor(at::ones({rows, 3}), 0, std::vector<int64_t>{2, 2, 2}, comm);
  });
  ASSERT_FALSE(outcomes[1].ok);
  EXPECT_NE(outcomes[1].error.find("graphshard::gather_tensor: sizes[1]"), std::string::npos)
      << outcomes[1].error;
  for (int r : {0, 2}) {
    ASSERT_FALSE(outcomes[r].ok);
    EXPECT_LT(outcomes[r].elapsed, std::chrono::seconds(10));
    try {
      std::rethrow_exception(outcomes[r].exception);
    } catch (const CommError& e) {
      // Rank 1 is blamed (a survivor that failed first may be named too).
      const auto& peers = e.peers();
      EXPECT_NE(std::find(peers.begin(), peers.end(), 1), peers.end()) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "rank " << r << ": expected CommError, got " << e.what();
    }
  }
}

// Regression: a contiguous [1, 3, 1, 2] piece and a [1, 1, 1, 2] piece (contiguous in both
// formats, so get_memory_format calls it channels-last) must still gather correctly: ranks never
// assume each other's memory format on the wire.
TEST(GatherTensor, PiecesThatLookChannelsLastOnSomeRanksGatherCorrectly) {
  const at::Tensor full = at::arange(8, at::kFloat).view({1, 4, 1, 2});
  sim::run_ranks(2, [&](const CommPtr& comm) {
    const std::vector<int64_t> sizes{3, 1};
    const at::Tensor piece = full.narrow(1, comm->rank() == 0 ? 0 : 3, sizes[comm->rank()]).clone();
    const at::Tensor out = gather_tensor(piece, 1, sizes, comm);
    EXPECT_TRUE(at::equal(out, full)) << out;
    EXPECT_TRUE(out.is_contiguous(get_memory_format(piece)));
  });
}

// Ranks holding the same shape in different memory formats still add matching elements.
TEST(ReduceTensor, RanksWithDifferentMemoryFormatsAddMatchingElements) {
  const at::Tensor base = at::arange(2 * 3 * 2 * 2, at::kDouble).view({2, 3, 2, 2});
  sim::run_ranks(2, [&](const CommPtr& comm) {
    const at::Tensor x =
        comm->rank() == 0 ? base.contiguous(at::MemoryFormat::ChannelsLast) : base.clone();
    const at::Tensor out = reduce_tensor(x, comm);
    EXPECT_TRUE(at::equal(out, 2 * base));
    EXPECT_TRUE(out.is_contiguous(get_memory_format(x)));
  });
}

// Checked mode: ranks that disagree on a primitive's dims fail together with each rank's view.
TEST(GatherTensor, CheckedModeCatchesDisagreeingDims) {
  set_checked_mode(true);
  auto world = sim::SimWorld::create(2, std::chrono::seconds(30));
  const auto outcomes = sim::run_ranks_collect(world, [](const CommPtr& comm) {
    // Both calls are locally valid: a [2, 2] tensor with sizes [2, 2] along dim 0 or dim 1.
    gather_tensor(at::ones({2, 2}), comm->rank(), std::vector<int64_t>{2, 2}, comm);
  });
  set_checked_mode(false);
  for (const auto& o : outcomes) {
    ASSERT_FALSE(o.ok);
    EXPECT_NE(o.error.find("ranks disagree"), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("gather dim=0"), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("gather dim=1"), std::string::npos) << o.error;
  }
}

}  // namespace
}  // namespace graphshard
