#include "graph_generators.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "generators.h"

namespace graphshard::props {

std::ostream& operator<<(std::ostream& os, const GraphSpec& g) {
  static const char* shapes[] = {"uniform", "duplicates", "self-loops", "hubs", "few-nodes"};
  return os << "GraphSpec{n_src=" << g.n_src << ", n_dst=" << g.n_dst << ", E=" << g.num_edges
            << (g.plain ? ", plain" : ", bipartite") << ", " << shapes[static_cast<int>(g.shape)]
            << (g.int32 ? ", int32" : ", int64") << (g.sorted ? ", sorted" : ", unsorted")
            << ", seed=" << g.seed << "}";
}

rc::Gen<GraphSpec> gen_graph_spec(int64_t max_nodes, int64_t max_edges, int sorted) {
  return rc::gen::withSize([=](int size) {
    const int64_t nmax = std::max<int64_t>(1, max_nodes * std::min(size, 100) / 100);
    const int64_t emax = std::max<int64_t>(1, max_edges * std::min(size, 100) / 100);
    return rc::gen::exec([=] {
      auto count = [](int64_t hi) {
        return *rc::gen::weightedOneOf<int64_t>(
            {{1, rc::gen::just<int64_t>(0)}, {9, rc::gen::inRange<int64_t>(1, hi + 1)}});
      };
      GraphSpec g;
      g.plain = *rc::gen::arbitrary<bool>();
      g.n_src = count(nmax);
      g.n_dst = g.plain ? g.n_src : count(nmax);
      g.num_edges = count(emax);
      g.shape = static_cast<GraphShape>(*rc::gen::inRange(0, 5));
      g.int32 = *rc::gen::arbitrary<bool>();
      g.sorted = sorted < 0 ? *rc::gen::arbitrary<bool>() : sorted == 1;
      g.seed = *rc::gen::arbitrary<uint32_t>();
      return g;
    });
  });
}

at::Tensor make_edge_index(const GraphSpec& g) {
  const int64_t e = (g.n_src == 0 || g.n_dst == 0) ? 0 : g.num_edges;
  std::mt19937_64 rng(g.seed * 0x9E3779B97F4A7C15ULL + 17);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(n)); };
  std::vector<int64_t> src(e), dst(e);
  // Pools of "live" ids for the few-nodes shape: everything else is isolated, and whole
  // destination ranges (hence whole parts) stay empty.
  const int64_t few_src = std::max<int64_t>(1, g.n_src / 7),
                few_dst = std::max<int64_t>(1, g.n_dst / 5);
  std::vector<std::pair<int64_t, int64_t>> pairs;
  if (g.shape == GraphShape::kDuplicates && e > 0) {
    const int64_t k = 1 + pick(5);
    for (int64_t i = 0; i < k; ++i) pairs.emplace_back(pick(g.n_src), pick(g.n_dst));
  }
  const int64_t hub_dst = e > 0 ? pick(g.n_dst) : 0, hub_src = e > 0 ? pick(g.n_src) : 0;
  for (int64_t i = 0; i < e; ++i) {
    switch (g.shape) {
      case GraphShape::kUniform:
        src[i] = pick(g.n_src), dst[i] = pick(g.n_dst);
        break;
      case GraphShape::kDuplicates: {
        const auto& p = pairs[pick(static_cast<int64_t>(pairs.size()))];
        src[i] = p.first, dst[i] = p.second;
        break;
      }
      case GraphShape::kSelfLoops:
        dst[i] = pick(g.n_dst);
        src[i] = (g.plain && rng() % 2) ? dst[i] : pick(g.n_src);
        if (src[i] >= g.n_src) src[i] = pick(g.n_src);
        break;
      case GraphShape::kHubs:
        // First every source into the hub destination, then the hub source into every
        // destination, then uniform edges.
        if (i < g.n_src) {
          src[i] = i, dst[i] = hub_dst;
        } else if (i < g.n_src + g.n_dst) {
          src[i] = hub_src, dst[i] = i - g.n_src;
        } else {
          src[i] = pick(g.n_src), dst[i] = pick(g.n_dst);
        }
        break;
      case GraphShape::kFewNodes:
        src[i] = std::min(g.n_src - 1, pick(few_src) * 7 % g.n_src);
        dst[i] = std::min(g.n_dst - 1, pick(few_dst) * 3);
        break;
    }
  }
  // Shuffle, then (when sorted) a stable sort by destination, so ties keep a random order.
  std::vector<int64_t> order(e);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = e - 1; i > 0; --i) std::swap(order[i], order[pick(i + 1)]);
  if (g.sorted) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return dst[a] < dst[b]; });
  }
  at::Tensor ei = at::empty({2, e}, at::TensorOptions().dtype(at::kLong));
  auto a = ei.accessor<int64_t, 2>();
  for (int64_t i = 0; i < e; ++i) {
    a[0][i] = src[order[i]];
    a[1][i] = dst[order[i]];
  }
  return ei.to(g.index_dtype());
}

std::vector<int64_t> random_split(int64_t n, int w, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> cuts{0, n};
  for (int i = 0; i + 1 < w; ++i)
    cuts.push_back(n == 0 ? 0 : static_cast<int64_t>(rng() % (n + 1)));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> sizes;
  for (int i = 0; i < w; ++i) sizes.push_back(cuts[i + 1] - cuts[i]);
  return sizes;
}

at::Tensor make_rows(int64_t rows, const std::vector<int64_t>& trailing, at::ScalarType dtype,
                     uint64_t seed) {
  std::vector<int64_t> shape{rows};
  shape.insert(shape.end(), trailing.begin(), trailing.end());
  return make_data(shape, dtype, seed);
}

}  // namespace graphshard::props
