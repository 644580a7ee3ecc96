// The native NCCL engine on this machine's GPU (label `gpu`): W = 1 through an in-process
// store (one GPU cannot hold two NCCL ranks), every collective against its definition, buffer
// errors, and a rank that never arrives (initialisation times out instead of hanging).
// Without a CUDA device, or in a build without the engine, every test is skipped.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>

#include "generators.h"
#include "graphshard/nccl.h"

namespace graphshard::props {
namespace {

#define GRAPHSHARD_REQUIRE_NCCL()                                       \
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine"; \
  if (!nccl_engine_built()) GTEST_SKIP() << "this build has no NCCL engine"

CommPtr nccl_alone(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return make_nccl_communicator(c10::make_intrusive<c10d::HashStore>(), 0, 1, 0, timeout);
}

at::Tensor on_gpu(const std::vector<int64_t>& shape, at::ScalarType t, uint64_t seed) {
  return make_data(shape, t, seed).view({-1}).to(at::kCUDA);
}

// At W = 1 the two moves return their input.
void expect_moves_return(const CommPtr& comm, const at::Tensor& x, const std::string& what) {
  const int64_t n = x.numel();
  at::Tensor recv = at::empty_like(x);
  comm->all_gather_v(x, recv, {n});
  expect_equal(recv.cpu(), x.cpu(), "all_gather_v" + what);
  at::Tensor moved = at::empty_like(x);
  comm->all_to_all_v(x, {n}, moved, {n});
  expect_equal(moved.cpu(), x.cpu(), "all_to_all_v" + what);
}

TEST(NcclEngine, CollectivesOfOneRankMatchTheirDefinitions) {
  GRAPHSHARD_REQUIRE_NCCL();
  const CommPtr comm = nccl_alone();
  EXPECT_EQ(comm->engine(), "nccl");
  EXPECT_EQ(comm->size(), 1);
  for (at::ScalarType t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kLong}) {
    const at::Tensor x = on_gpu({37}, t, 1);
    expect_moves_return(comm, x, "");
    at::Tensor sum = x.clone();
    comm->all_reduce_sum(sum);
    expect_equal(sum.cpu(), x.cpu(), "all_reduce_sum");
    at::Tensor piece = at::empty_like(x);
    comm->reduce_scatter_v(x, piece, {37});
    expect_equal(piece.cpu(), x.cpu(), "reduce_scatter_v");
  }
  // Moves carry any dtype as bytes, even one NCCL cannot sum.
  for (at::ScalarType t : {at::kComplexFloat, at::kShort}) {
    const at::Tensor x = at::arange(10, at::TensorOptions().dtype(at::kFloat)).to(t).to(at::kCUDA);
    expect_moves_return(comm, x, " of a dtype NCCL cannot sum");
  }
  comm->check_completed();
  comm->barrier();
}

TEST(NcclEngine, ZeroLengthBuffersAndOwnPieceOptions) {
  GRAPHSHARD_REQUIRE_NCCL();
  const CommPtr comm = nccl_alone();
  const at::Tensor none = on_gpu({0}, at::kFloat, 2);
  at::Tensor recv = at::empty({0}, none.options());
  comm->all_gather_v(none, recv, {0});
  comm->all_to_all_v(none, {0}, recv, {0});
  comm->reduce_scatter_v(none, recv, {0});
  // In place (send is recv's own piece) with kSkip; a separate own piece for reduce_scatter.
  at::Tensor buf = on_gpu({5}, at::kFloat, 3);
  const at::Tensor want = buf.cpu();
  comm->all_gather_v(buf, buf, {5}, Communicator::OwnPiece::kSkip);
  expect_equal(buf.cpu(), want, "in-place all_gather_v");
  const at::Tensor own = on_gpu({5}, at::kFloat, 4);
  at::Tensor out = at::empty_like(own);
  comm->reduce_scatter_v(at::zeros_like(own), out, {5}, own);
  expect_equal(out.cpu(), own.cpu(), "reduce_scatter_v with own");
}

TEST(NcclEngine, RejectsHostBuffersAndUnsupportedDtypes) {
  GRAPHSHARD_REQUIRE_NCCL();
  const CommPtr comm = nccl_alone();
  at::Tensor host = at::zeros({4});
  try {
    comm->all_reduce_sum(host);
    FAIL() << "a host buffer was accepted";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("buffer device"), std::string::npos) << e.what();
  }
  at::Tensor complex =
      at::zeros({4}, at::TensorOptions().dtype(at::kComplexFloat).device(at::kCUDA));
  EXPECT_THROW(comm->all_reduce_sum(complex), c10::ValueError);
  // The communicator is still usable after argument errors.
  at::Tensor ok = on_gpu({3}, at::kFloat, 5);
  comm->all_reduce_sum(ok);
  comm->barrier();
}

// Rank `rank` of 2 alone: initialisation raises CommTimeout("init") within the timeout.
CommTimeout init_alone(int rank) {
  try {
    make_nccl_communicator(c10::make_intrusive<c10d::HashStore>(), rank, 2, 0,
                           std::chrono::milliseconds(3000));
  } catch (const CommTimeout& e) {
    return e;
  }
  throw std::runtime_error("rank " + std::to_string(rank) + " of 2 initialised alone");
}

TEST(NcclEngine, InitialisationWithAMissingRankTimesOut) {
  GRAPHSHARD_REQUIRE_NCCL();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(init_alone(0).op(), "init");    // rank 1 never joins NCCL's initialisation
  const CommTimeout no_id = init_alone(1);  // rank 0's unique id never reaches the store
  EXPECT_EQ(no_id.op(), "init");
  EXPECT_EQ(no_id.peers(), std::vector<int>{0});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

}  // namespace
}  // namespace graphshard::props
