// Equal counts over real Gloo processes: the case in which GRAPHSHARD_GLOO_COLLECTIVES=native
// hands a collective to Gloo's own algorithms (ctest gloo.native.W2); direct messages
// otherwise. Small integers, so every sum is exact and compared bitwise.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "graphshard/comm.h"
#include "harness.h"

namespace graphshard::props {
namespace {

TEST(GlooEvenCounts, CollectivesMatchTheirDefinitions) {
  const CommPtr comm = gloo_comm();
  const int w = comm->size(), r = comm->rank();
  const int64_t n = 6;
  const std::vector<int64_t> counts(w, n);
  auto data = [&](int q) { return at::arange(w * n, at::kFloat) * (q + 1); };  // rank q's send
  at::Tensor sum = at::zeros({w * n});
  for (int q = 0; q < w; ++q) sum += data(q);

  // The own piece from a strided tensor; send's own piece holds garbage, never to be read.
  at::Tensor send = data(r);
  at::Tensor own = at::zeros({2 * n}).slice(0, 0, 2 * n, 2);
  own.copy_(send.narrow(0, r * n, n));
  send.narrow(0, r * n, n).fill_(99);
  at::Tensor piece = at::full({n}, -1.0);
  comm->reduce_scatter_v(send, piece, counts, own);
  EXPECT_TRUE(at::equal(piece, sum.narrow(0, r * n, n))) << "rank " << r << ": " << piece;

  at::Tensor all = at::full({w * n}, -1.0);
  comm->all_gather_v(sum.narrow(0, r * n, n).contiguous(), all, counts);
  EXPECT_TRUE(at::equal(all, sum)) << "rank " << r << ": " << all;

  at::Tensor buffer = data(r);
  comm->all_reduce_sum(buffer);
  EXPECT_TRUE(at::equal(buffer, sum)) << "rank " << r << ": " << buffer;
}

}  // namespace
}  // namespace graphshard::props
