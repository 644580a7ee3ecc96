// Properties of shard sizes and partition ranges (SPEC §0, §4).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <ATen/ATen.h>

#include "graphshard/shapes.h"

namespace graphshard {
namespace {

RC_GTEST_PROP(BalancedSizes, SumToNDifferByAtMostOneLargerFirst, ()) {
  const int64_t n = *rc::gen::inRange<int64_t>(0, 100000);
  const int64_t parts = *rc::gen::inRange<int64_t>(1, 300);
  const auto s = balanced_sizes(n, parts);
  RC_ASSERT(static_cast<int64_t>(s.size()) == parts);
  RC_ASSERT(total(s) == n);
  RC_ASSERT(*std::max_element(s.begin(), s.end()) - *std::min_element(s.begin(), s.end()) <= 1);
  RC_ASSERT(std::is_sorted(s.rbegin(), s.rend()));  // non-increasing: larger first
}

RC_GTEST_PROP(PartitionRange, RangesTileZeroToTotal, ()) {
  const auto sizes = *rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(0, 50));
  RC_PRE(!sizes.empty());
  const int64_t offset = *rc::gen::inRange<int64_t>(0, 1000);
  int64_t expected_start = offset;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [lo, hi] = partition_range(sizes, static_cast<int64_t>(i), offset);
    RC_ASSERT(lo == expected_start);
    RC_ASSERT(hi - lo == sizes[i]);
    expected_start = hi;
  }
  RC_ASSERT(expected_start == offset + total(sizes));
}

RC_GTEST_PROP(PartitionRange, RejectsIdsOutsideTheParts, ()) {
  const auto sizes = *rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(0, 50));
  const int64_t n = static_cast<int64_t>(sizes.size());
  const int64_t bad = *rc::gen::oneOf(rc::gen::inRange<int64_t>(-100, 0),
                                      rc::gen::inRange<int64_t>(n, n + 100));
  try {
    partition_range(sizes, bad);
    RC_FAIL("no error for partition id " + std::to_string(bad));
  } catch (const c10::ValueError& e) {
    RC_ASSERT(std::string(e.what()).find("partition_range") != std::string::npos);
  }
}

RC_GTEST_PROP(GetShardSizes, BalancedAlongAnyValidDimAndErrorsOutside, ()) {
  const auto shape = *rc::gen::container<std::vector<int64_t>>(
      *rc::gen::inRange<size_t>(1, 5), rc::gen::inRange<int64_t>(0, 9));
  const int64_t ndim = static_cast<int64_t>(shape.size());
  const at::Tensor t = at::empty(shape);
  const int64_t dim = *rc::gen::inRange<int64_t>(-ndim - 3, ndim + 3);
  if (dim >= -ndim && dim < ndim) {
    const auto s = get_shard_sizes(t, dim, nullptr);
    RC_ASSERT(s == std::vector<int64_t>{t.size(dim)});
    const auto shapes = expand_shard_sizes_to_shapes(t, dim, balanced_sizes(t.size(dim), 3));
    RC_ASSERT(shapes.size() == 3u);
    for (const auto& sh : shapes) RC_ASSERT(static_cast<int64_t>(sh.size()) == ndim);
  } else {
    RC_ASSERT_THROWS_AS(get_shard_sizes(t, dim, nullptr), c10::ValueError);
    RC_ASSERT_THROWS_AS(expand_shard_sizes_to_shapes(t, dim, {1}), c10::ValueError);
  }
}

}  // namespace
}  // namespace graphshard
