// The partitioning schemes on plain arrays (core/graph/partition_schemes.h) against brute force:
// the Hilbert curve visits every cell once, each step to a face neighbour; the cuts are the best
// by edges and then by nodes; the adjacency, the majority parts of the sources and the part order
// equal their definitions; METIS gives a balanced, deterministic partition that cuts fewer edges
// than a random one.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "graph/partition_schemes.h"

namespace graphshard::detail::schemes {
namespace {

TEST(HilbertIndex, VisitsEveryCellOnceEachStepToAFaceNeighbour) {
  for (int bits = 1; bits <= 4; ++bits) {
    const uint32_t side = 1u << bits;
    std::map<uint64_t, std::vector<uint32_t>> by_key;
    for (uint32_t x = 0; x < side; ++x)
      for (uint32_t y = 0; y < side; ++y)
        for (uint32_t z = 0; z < side; ++z) by_key[hilbert_index(x, y, z, bits)] = {x, y, z};
    const uint64_t cells = uint64_t{side} * side * side;
    ASSERT_EQ(by_key.size(), cells) << "bits " << bits << ": two cells share a key";
    EXPECT_EQ(by_key.begin()->first, 0u);
    EXPECT_EQ(by_key.rbegin()->first, cells - 1);
    for (auto it = by_key.begin(); std::next(it) != by_key.end(); ++it) {
      const auto& a = it->second;
      const auto& b = std::next(it)->second;
      int steps = 0;
      for (int i = 0; i < 3; ++i) steps += std::abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
      ASSERT_EQ(steps, 1) << "bits " << bits << ": key " << it->first << " to the next";
    }
  }
}

std::vector<int64_t> offsets_of(const std::vector<int64_t>& degrees) {
  std::vector<int64_t> off(degrees.size() + 1, 0);
  std::partial_sum(degrees.begin(), degrees.end(), off.begin() + 1);
  return off;
}

TEST(EdgeBalancedSizes, EveryCutIsTheBestByEdgesThenByNodes) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t n = static_cast<int64_t>(rng() % 40);
    const int64_t parts = 1 + static_cast<int64_t>(rng() % 9);
    std::vector<int64_t> degrees(n);
    // Many zero-degree nodes (plateaus) and a few hubs.
    for (auto& d : degrees) d = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % (rng() % 5 == 0 ? 50 : 4));
    const auto off = offsets_of(degrees);
    const auto sizes = edge_balanced_sizes(off, parts);
    ASSERT_EQ(static_cast<int64_t>(sizes.size()), parts);
    ASSERT_EQ(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}), n);
    int64_t cut = 0;
    for (int64_t k = 1; k < parts; ++k) {
      ASSERT_GE(sizes[k - 1], 0);
      cut += sizes[k - 1];
      auto de = [&](int64_t b) -> int64_t { return std::llabs(parts * off[b] - k * off[n]); };
      auto dn = [&](int64_t b) -> int64_t { return std::llabs(parts * b - k * n); };
      int64_t best_e = de(0);
      for (int64_t b = 0; b <= n; ++b) best_e = std::min(best_e, de(b));
      int64_t best_n = -1;
      for (int64_t b = 0; b <= n; ++b)
        if (de(b) == best_e && (best_n < 0 || dn(b) < best_n)) best_n = dn(b);
      ASSERT_EQ(de(cut), best_e) << "trial " << trial << " cut " << k;
      ASSERT_EQ(dn(cut), best_n) << "trial " << trial << " cut " << k;
    }
  }
}

TEST(EdgeBalancedSizes, WithoutEdgesIsTheNodeBalancedCut) {
  const auto sizes = edge_balanced_sizes(std::vector<int64_t>(11, 0), 4);
  EXPECT_EQ(sizes, (std::vector<int64_t>{3, 2, 3, 2}));  // cuts at round(k * 10 / 4): 3, 5, 8
  EXPECT_EQ(edge_balanced_sizes({0}, 3), (std::vector<int64_t>{0, 0, 0}));
}

TEST(LatlonBands, BoxesClosestToSquare) {
  EXPECT_EQ(latlon_bands(1), 1);
  EXPECT_EQ(latlon_bands(2), 1);   // two longitude halves
  EXPECT_EQ(latlon_bands(7), 1);   // a prime: longitude slices
  EXPECT_EQ(latlon_bands(8), 2);   // 2 x 4
  EXPECT_EQ(latlon_bands(16), 4);  // 4 x 4
  EXPECT_EQ(latlon_bands(18), 3);  // 3 x 6
}

TEST(LatlonBoxParts, BalancedBoxesOrderedByBandThenLongitude) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  const int64_t n = 1000, parts = 8;  // 2 bands x 4 boxes
  std::vector<double> xyz(3 * n);
  for (auto& v : xyz) v = normal(rng);
  const auto part = latlon_box_parts(xyz.data(), std::vector<int64_t>(n, 1), n, parts);
  std::vector<int64_t> count(parts, 0);
  for (const auto p : part) {
    ASSERT_GE(p, 0);
    ASSERT_LT(p, parts);
    ++count[p];
  }
  for (const auto c : count) EXPECT_EQ(c, n / parts);
  // Band 0 (boxes 0-3) is the southern half: its highest latitude is below band 1's lowest.
  double south_max = -1e9, north_min = 1e9;
  for (int64_t i = 0; i < n; ++i) {
    const double z = xyz[3 * i + 2] / std::sqrt(xyz[3 * i] * xyz[3 * i] +
                                                xyz[3 * i + 1] * xyz[3 * i + 1] + xyz[3 * i + 2] * xyz[3 * i + 2]);
    if (part[i] < 4) south_max = std::max(south_max, z);
    else north_min = std::min(north_min, z);
  }
  EXPECT_LE(south_max, north_min);
}

TEST(AdjacencyFromPairs, SymmetricSortedWithoutSelfLoopsOrDuplicates) {
  std::mt19937_64 rng(5);
  const int64_t n = 30;
  std::vector<int64_t> a(200), b(200);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<int64_t>(rng() % n);
    b[i] = rng() % 4 == 0 ? a[i] : static_cast<int64_t>(rng() % n);
  }
  std::vector<std::set<int64_t>> expected(n);
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    expected[a[i]].insert(b[i]);
    expected[b[i]].insert(a[i]);
  }
  const auto adj = adjacency_from_pairs(n, a, b);
  ASSERT_EQ(static_cast<int64_t>(adj.xadj.size()), n + 1);
  ASSERT_EQ(adj.xadj[n], static_cast<int64_t>(adj.adjncy.size()));
  for (int64_t u = 0; u < n; ++u) {
    const std::vector<int64_t> got(adj.adjncy.begin() + adj.xadj[u], adj.adjncy.begin() + adj.xadj[u + 1]);
    EXPECT_EQ(got, std::vector<int64_t>(expected[u].begin(), expected[u].end())) << "node " << u;
  }
}

TEST(SharedSourceAdjacency, JoinsTheDestinationsOfEachSourceInAPath) {
  // Source 0 feeds 4, 1, 2 (and 2 twice); source 1 feeds 3; source 2 nothing.
  const std::vector<int64_t> src{0, 0, 1, 0, 0}, dst{4, 1, 3, 2, 2};
  const auto adj = shared_source_adjacency(3, 5, src.data(), dst.data(), 5);
  EXPECT_EQ(adj.xadj, (std::vector<int64_t>{0, 0, 1, 3, 3, 4}));
  EXPECT_EQ(adj.adjncy, (std::vector<int64_t>{2, 1, 4, 2}));  // path 1 - 2 - 4
}

TEST(FollowDestinations, MajorityPartLowestOnTiesContiguousWhenUnused) {
  const std::vector<int64_t> dst_part{0, 1, 1, 2};
  // Source 0: parts {1, 1, 2} -> 1; source 1: {2, 0} -> 0 (tie); source 2 unused -> 2 * 4 / 4 = 2;
  // source 3: {2} -> 2.
  const std::vector<int64_t> src{0, 1, 0, 3, 1, 0}, dst{1, 3, 2, 3, 0, 3};
  const auto part = follow_destinations(4, src.data(), dst.data(), 6, dst_part, 4);
  EXPECT_EQ(part, (std::vector<int64_t>{1, 0, 2, 2}));
}

TEST(OrderByPart, StableCountingOrder) {
  const auto o = order_by_part({2, 0, 2, 1, 0}, 4);
  EXPECT_EQ(o.perm, (std::vector<int64_t>{1, 4, 3, 0, 2}));
  EXPECT_EQ(o.sizes, (std::vector<int64_t>{2, 1, 2, 0}));
}

TEST(MetisParts, BalancedDeterministicAndFewerCutEdgesThanRandom) {
  const int64_t side = 24, n = side * side, parts = 6;
  std::vector<int64_t> a, b;
  for (int64_t i = 0; i < side; ++i)
    for (int64_t j = 0; j < side; ++j) {
      if (j + 1 < side) a.push_back(i * side + j), b.push_back(i * side + j + 1);
      if (i + 1 < side) a.push_back(i * side + j), b.push_back((i + 1) * side + j);
    }
  const auto adj = adjacency_from_pairs(n, a, b);
  const std::vector<int64_t> weights(n, 4);
  const auto part = metis_parts(adj, weights, parts, 0);
  EXPECT_EQ(part, metis_parts(adj, weights, parts, 0)) << "same seed, another partition";
  std::vector<int64_t> count(parts, 0);
  for (const auto p : part) {
    ASSERT_GE(p, 0);
    ASSERT_LT(p, parts);
    ++count[p];
  }
  EXPECT_LE(*std::max_element(count.begin(), count.end()), n / parts * 110 / 100);
  auto cut = [&](const std::vector<int64_t>& p) {
    int64_t c = 0;
    for (size_t e = 0; e < a.size(); ++e) c += p[a[e]] != p[b[e]];
    return c;
  };
  std::mt19937_64 rng(11);
  std::vector<int64_t> random_part(n);
  for (auto& p : random_part) p = static_cast<int64_t>(rng() % parts);
  EXPECT_LT(cut(part), cut(random_part) / 4);
  EXPECT_EQ(metis_parts(adj, weights, 1, 0), std::vector<int64_t>(n, 0));
}

}  // namespace
}  // namespace graphshard::detail::schemes
