// Checked mode over real Gloo processes: a disagreement raises on every rank (the exchange of
// views completes, so the world stays usable).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "graphshard/comm.h"
#include "harness.h"

namespace graphshard::props {
namespace {

TEST(GlooCheckedMode, DisagreeingShapesRaiseOnEveryRankAndTheWorldGoesOn) {
  const CommPtr comm = gloo_comm();
  set_checked_mode(true);
  at::Tensor t = at::ones({comm->rank() == 0 ? 5 : 4});
  std::string error;
  try {
    comm->all_reduce_sum(t);
  } catch (const c10::ValueError& e) {
    error = e.what();
  }
  set_checked_mode(false);
  // Every rank must have raised; agree on that before asserting so no rank runs ahead.
  at::Tensor raised = at::full({1}, error.empty() ? 0.0 : 1.0, at::kDouble);
  comm->all_reduce_sum(raised);
  EXPECT_EQ(raised.item<double>(), comm->size()) << "rank " << comm->rank() << ": " << error;
  EXPECT_NE(error.find("rank 0: all_reduce_sum dtype=Float counts=[5]"), std::string::npos)
      << error;
  EXPECT_NE(error.find("rank 1: all_reduce_sum dtype=Float counts=[4]"), std::string::npos)
      << error;
}

}  // namespace
}  // namespace graphshard::props
