// The index arithmetic of the CUDA pack/unpack kernels (core/cuda/piece_layout.h), run on the
// host against ATen's narrow + copy: the kernels themselves run only on a GPU (label gpu), but
// where each unit goes is decided here, for any shape, cut dim, piece sizes, skipped piece and
// word width.
#include <numeric>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "cuda/piece_layout.h"
#include "generators.h"

namespace graphshard::props {
namespace {

using detail::PieceLayout;

// The packed buffer the primitives' pack builds with ATen: the pieces, each row-major.
at::Tensor packed_by_aten(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes) {
  std::vector<at::Tensor> rows;
  int64_t at_dim = 0;
  for (int64_t s : sizes) {
    rows.push_back(x.narrow(d, at_dim, s).contiguous().view(-1));
    at_dim += s;
  }
  return at::cat(rows);
}

RC_GTEST_PROP(PieceLayout, MapsEveryMovedUnitToItsPlaceInTheFullTensor, ()) {
  const int dims = *rc::gen::inRange(1, 5);
  std::vector<int64_t> shape(dims);
  for (auto& e : shape) e = *rc::gen::inRange<int64_t>(0, 5);
  const int64_t d = *rc::gen::inRange<int64_t>(0, dims);
  const int w = *rc::gen::inRange(1, 9);
  auto sizes = *gen_shard_sizes(w);
  shape[d] = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  const int skip = *rc::gen::inRange(-1, w);
  // Elements of 1, 2, 4 or 8 bytes, moved as words of up to 16 where the rows allow it.
  const auto type = *rc::gen::element(at::kByte, at::kShort, at::kInt, at::kLong);
  const int64_t elem = c10::elementSize(type);
  int64_t g = 0;
  for (int64_t s : sizes) g = std::gcd(g, s);
  const int64_t span = detail::bytes_per_position(shape, d, elem) * g;
  const int64_t unit = detail::unit_bytes_for(shape, d, sizes, elem, 0, 0);
  RC_ASSERT(unit >= elem);
  RC_TAG(unit);
  RC_ASSERT(span % unit == 0);
  RC_ASSERT(unit == 16 || span % (2 * unit) != 0);  // the widest that divides
  const int64_t per_unit = unit / elem;

  // Each element's own index stands for it: the comparison is of places, whatever the dtype.
  const at::Tensor x = at::arange(c10::multiply_integers(shape), at::kLong).view(shape);
  const at::Tensor want = packed_by_aten(x, d, sizes).view({-1, per_unit});
  const at::Tensor full = x.reshape({-1, per_unit});
  const PieceLayout layout = detail::piece_layout(shape, d, sizes, skip, elem, unit);
  RC_ASSERT(layout.packed(w) == want.size(0));

  // Every moved unit i lands at a distinct packed index, in order, outside the skipped piece.
  const int64_t n = layout.moved();
  std::vector<int64_t> packed_at(n), full_at(n);
  for (int64_t i = 0; i < n; ++i) {
    packed_at[i] = layout.packed_index(i);
    full_at[i] = layout.full_index(packed_at[i]);
    RC_ASSERT(packed_at[i] >= 0 && packed_at[i] < want.size(0));
    if (i > 0) RC_ASSERT(packed_at[i] > packed_at[i - 1]);
    if (skip >= 0) {
      RC_ASSERT(packed_at[i] < layout.packed(skip) || packed_at[i] >= layout.packed(skip + 1));
    }
  }
  const int64_t skipped = skip < 0 ? 0 : layout.packed(skip + 1) - layout.packed(skip);
  RC_ASSERT(n + skipped == want.size(0));
  const auto idx = [](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong); };
  const at::Tensor got = full.index_select(0, idx(full_at));
  expect_equal(got, want.index_select(0, idx(packed_at)), "units gathered through the layout");
}

TEST(PieceLayout, MovesTheWidestWordThatDividesTheRowsAndBothAddresses) {
  // float [4, 16] cut along dim 1 into 4, 4, 8: rows of 16, 16 and 32 bytes.
  EXPECT_EQ(detail::unit_bytes_for({4, 16}, 1, {4, 4, 8}, 4, 0, 256), 16);
  EXPECT_EQ(detail::unit_bytes_for({4, 16}, 1, {4, 4, 8}, 4, 4, 0), 4);  // address
  EXPECT_EQ(detail::unit_bytes_for({4, 16}, 1, {4, 4, 8}, 4, 0, 2), 2);  // address
  EXPECT_EQ(detail::unit_bytes_for({4, 16}, 1, {4, 4, 8}, 1, 0, 0), 4);  // bytes, not floats
  EXPECT_EQ(detail::unit_bytes_for({4, 6}, 1, {2, 4}, 4, 0, 0), 8);      // gcd 2
  EXPECT_EQ(detail::unit_bytes_for({4, 6, 3}, 1, {2, 4}, 4, 0, 0), 8);   // 24-byte rows
  EXPECT_EQ(detail::unit_bytes_for({3}, 0, {3}, 1, 0, 0), 1);
  // A piece of length zero shares its start with the next: the next holds the unit.
  const PieceLayout l = detail::piece_layout({2, 3}, 1, {1, 0, 2}, -1, 4, 4);
  // Packed: piece 0 = x[0, 0], x[1, 0]; piece 2 = x[0, 1:3], x[1, 1:3].
  const std::vector<int64_t> want = {0, 3, 1, 2, 4, 5};
  for (int64_t p = 0; p < 6; ++p) EXPECT_EQ(l.full_index(p), want[p]) << "packed index " << p;
  EXPECT_EQ(l.moved(), 6);
  const PieceLayout skipping = detail::piece_layout({2, 3}, 1, {1, 0, 2}, 0, 4, 4);
  EXPECT_EQ(skipping.moved(), 4);
  EXPECT_EQ(skipping.packed_index(0), 2);
}

}  // namespace
}  // namespace graphshard::props
