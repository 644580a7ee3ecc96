// Weather-model graphs generated in memory: octahedral grids, icosahedral meshes and their
// multi-scale edges, k-nearest and radius edges between point sets, random bipartite graphs and
// geometric edge attributes. Graph files (safetensors) are read in graph_file.cpp.
#include "weather_graphs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include <ATen/Parallel.h>

namespace graphshard::study {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Points bucketed by a uniform 3-D cell grid; cells found by binary search on sorted keys, so
// memory stays O(n) even for millions of points.
class PointIndex {
 public:
  PointIndex(const at::Tensor& xyz, double cell) : xyz_(xyz.contiguous()), cell_(cell) {
    const int64_t n = xyz_.size(0);
    dim_ = static_cast<int64_t>(std::ceil(2.0 / cell_)) + 3;
    const double* p = xyz_.data_ptr<double>();
    std::vector<std::pair<int64_t, int64_t>> kv(n);
    for (int64_t i = 0; i < n; ++i) kv[i] = {key(cell_of(p + 3 * i)), i};
    std::sort(kv.begin(), kv.end());
    keys_.resize(n);
    ids_.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      keys_[i] = kv[i].first;
      ids_[i] = kv[i].second;
    }
  }

  std::array<int64_t, 3> cell_of(const double* q) const {
    return {static_cast<int64_t>(std::floor((q[0] + 1.0) / cell_)) + 1,
            static_cast<int64_t>(std::floor((q[1] + 1.0) / cell_)) + 1,
            static_cast<int64_t>(std::floor((q[2] + 1.0) / cell_)) + 1};
  }
  int64_t key(const std::array<int64_t, 3>& c) const { return (c[0] * dim_ + c[1]) * dim_ + c[2]; }

  // Calls f(id, squared distance) for every point in the cells within `ring` cells of q.
  template <typename F>
  void for_each_in_ring(const double* q, int64_t ring, F&& f) const {
    const auto c = cell_of(q);
    const double* p = xyz_.data_ptr<double>();
    for (int64_t x = c[0] - ring; x <= c[0] + ring; ++x) {
      if (x < 0 || x >= dim_) continue;
      for (int64_t y = c[1] - ring; y <= c[1] + ring; ++y) {
        if (y < 0 || y >= dim_) continue;
        const int64_t k0 = key({x, y, std::max<int64_t>(0, c[2] - ring)});
        const int64_t k1 = key({x, y, std::min<int64_t>(dim_ - 1, c[2] + ring)});
        auto it = std::lower_bound(keys_.begin(), keys_.end(), k0);
        for (; it != keys_.end() && *it <= k1; ++it) {
          const int64_t id = ids_[it - keys_.begin()];
          const double dx = p[3 * id] - q[0], dy = p[3 * id + 1] - q[1], dz = p[3 * id + 2] - q[2];
          f(id, dx * dx + dy * dy + dz * dz);
        }
      }
    }
  }
  double cell() const { return cell_; }
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }

 private:
  at::Tensor xyz_;
  double cell_;
  int64_t dim_;
  std::vector<int64_t> keys_, ids_;
};

at::Tensor to_edge_index(const std::vector<int64_t>& src, const std::vector<int64_t>& dst) {
  const auto e = static_cast<int64_t>(src.size());
  at::Tensor ei = at::empty({2, e}, at::kLong);
  std::memcpy(ei[0].data_ptr<int64_t>(), src.data(), e * sizeof(int64_t));
  std::memcpy(ei[1].data_ptr<int64_t>(), dst.data(), e * sizeof(int64_t));
  return ei;
}

// Per-destination neighbour lists computed in parallel, concatenated in destination order.
template <typename Query>
Graph edges_per_dst(int64_t num_src, int64_t num_dst, const std::string& name, Query&& query) {
  std::vector<std::vector<int64_t>> lists(num_dst);
  at::parallel_for(0, num_dst, 1024, [&](int64_t b, int64_t e) {
    for (int64_t d = b; d < e; ++d) lists[d] = query(d);
  });
  std::vector<int64_t> src, dst;
  for (int64_t d = 0; d < num_dst; ++d) {
    for (int64_t s : lists[d]) {
      src.push_back(s);
      dst.push_back(d);
    }
  }
  Graph g;
  g.num_src = num_src;
  g.num_dst = num_dst;
  g.edge_index = to_edge_index(src, dst);
  g.name = name;
  return g;
}

}  // namespace

double typical_spacing(int64_t n) {
  return std::sqrt(4.0 * kPi / std::max<int64_t>(n, 1));
}

Nodes octahedral_grid(int64_t n) {
  TORCH_CHECK_VALUE(n >= 1, "graphshard::study::octahedral_grid: N: expected >= 1, got ", n);
  const int64_t total = 4 * n * (n + 9);
  at::Tensor xyz = at::empty({total, 3}, at::kDouble);
  double* p = xyz.data_ptr<double>();
  int64_t k = 0;
  for (int64_t ring = 0; ring < 2 * n; ++ring) {
    const int64_t i = ring < n ? ring + 1 : 2 * n - ring;  // 1..N then N..1
    const double lat = kPi / 2 - (static_cast<double>(ring) + 0.5) * kPi / (2.0 * n);
    const int64_t m = 4 * i + 16;
    for (int64_t j = 0; j < m; ++j) {
      const double lon = 2.0 * kPi * static_cast<double>(j) / static_cast<double>(m);
      p[3 * k] = std::cos(lat) * std::cos(lon);
      p[3 * k + 1] = std::cos(lat) * std::sin(lon);
      p[3 * k + 2] = std::sin(lat);
      ++k;
    }
  }
  return Nodes{xyz};
}

namespace {

struct Icosphere {
  std::vector<std::array<double, 3>> nodes;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> level_edges;  // u < v per level
};

Icosphere build_icosphere(int refinement) {
  TORCH_CHECK_VALUE(refinement >= 0 && refinement <= 10,
                    "graphshard::study::icosahedral mesh: refinement: expected 0..10, got ",
                    refinement);
  const double phi = (1.0 + std::sqrt(5.0)) / 2.0;
  Icosphere s;
  const double v[12][3] = {{-1, phi, 0}, {1, phi, 0}, {-1, -phi, 0}, {1, -phi, 0},
                           {0, -1, phi}, {0, 1, phi}, {0, -1, -phi}, {0, 1, -phi},
                           {phi, 0, -1}, {phi, 0, 1}, {-phi, 0, -1}, {-phi, 0, 1}};
  for (const auto& q : v) {
    const double norm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
    s.nodes.push_back({q[0] / norm, q[1] / norm, q[2] / norm});
  }
  std::vector<std::array<int64_t, 3>> faces = {
      {0, 11, 5},  {0, 5, 1},  {0, 1, 7},  {0, 7, 10}, {0, 10, 11}, {1, 5, 9}, {5, 11, 4},
      {11, 10, 2}, {10, 7, 6}, {7, 1, 8},  {3, 9, 4},  {3, 4, 2},   {3, 2, 6}, {3, 6, 8},
      {3, 8, 9},   {4, 9, 5},  {2, 4, 11}, {6, 2, 10}, {8, 6, 7},   {9, 8, 1}};
  auto edges_of = [](const std::vector<std::array<int64_t, 3>>& fs) {
    std::vector<std::pair<int64_t, int64_t>> es;
    for (const auto& f : fs)
      for (int a = 0; a < 3; ++a) {
        int64_t u = f[a], w = f[(a + 1) % 3];
        es.emplace_back(std::min(u, w), std::max(u, w));
      }
    std::sort(es.begin(), es.end());
    es.erase(std::unique(es.begin(), es.end()), es.end());
    return es;
  };
  s.level_edges.push_back(edges_of(faces));
  for (int level = 1; level <= refinement; ++level) {
    std::map<std::pair<int64_t, int64_t>, int64_t> mid;
    auto midpoint = [&](int64_t a, int64_t b) {
      const auto key = std::make_pair(std::min(a, b), std::max(a, b));
      auto it = mid.find(key);
      if (it != mid.end()) return it->second;
      const auto& p = s.nodes[a];
      const auto& q = s.nodes[b];
      double m[3] = {p[0] + q[0], p[1] + q[1], p[2] + q[2]};
      const double norm = std::sqrt(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]);
      s.nodes.push_back({m[0] / norm, m[1] / norm, m[2] / norm});
      const int64_t id = static_cast<int64_t>(s.nodes.size()) - 1;
      mid.emplace(key, id);
      return id;
    };
    std::vector<std::array<int64_t, 3>> next;
    next.reserve(faces.size() * 4);
    for (const auto& f : faces) {
      const int64_t ab = midpoint(f[0], f[1]), bc = midpoint(f[1], f[2]), ca = midpoint(f[2], f[0]);
      next.push_back({f[0], ab, ca});
      next.push_back({f[1], bc, ab});
      next.push_back({f[2], ca, bc});
      next.push_back({ab, bc, ca});
    }
    faces.swap(next);
    s.level_edges.push_back(edges_of(faces));
  }
  return s;
}

}  // namespace

Nodes icosahedral_nodes(int refinement) {
  const Icosphere s = build_icosphere(refinement);
  at::Tensor xyz = at::empty({static_cast<int64_t>(s.nodes.size()), 3}, at::kDouble);
  std::memcpy(xyz.data_ptr<double>(), s.nodes.data(), s.nodes.size() * 3 * sizeof(double));
  return Nodes{xyz};
}

Graph icosahedral_multiscale_edges(int refinement) {
  const Icosphere s = build_icosphere(refinement);
  std::vector<std::pair<int64_t, int64_t>> directed;  // (dst, src)
  for (const auto& level : s.level_edges)
    for (const auto& [u, w] : level) {
      directed.emplace_back(w, u);
      directed.emplace_back(u, w);
    }
  std::sort(directed.begin(), directed.end());
  directed.erase(std::unique(directed.begin(), directed.end()), directed.end());
  std::vector<int64_t> src(directed.size()), dst(directed.size());
  for (size_t i = 0; i < directed.size(); ++i) {
    dst[i] = directed[i].first;
    src[i] = directed[i].second;
  }
  Graph g;
  g.num_src = g.num_dst = static_cast<int64_t>(s.nodes.size());
  g.edge_index = to_edge_index(src, dst);
  g.name = "icosahedral r" + std::to_string(refinement) + " multi-scale";
  return g;
}

Graph knn_edges(const Nodes& src, const Nodes& dst, int k, const std::string& name) {
  TORCH_CHECK_VALUE(k >= 1 && k <= src.size(), "graphshard::study::knn_edges: k: expected 1..",
                    src.size(), ", got ", k);
  const PointIndex index(src.xyz, typical_spacing(src.size()));
  const double* q = dst.xyz.data_ptr<double>();
  return edges_per_dst(src.size(), dst.size(), name, [&](int64_t d) {
    std::vector<std::pair<double, int64_t>> found;
    for (int64_t ring = 1;; ring *= 2) {
      found.clear();
      index.for_each_in_ring(q + 3 * d, ring,
                             [&](int64_t id, double d2) { found.emplace_back(d2, id); });
      if (static_cast<int64_t>(found.size()) >= k) {
        std::partial_sort(found.begin(), found.begin() + k, found.end());
        // Every point within ring * cell of q lies in the searched cells: the k found are exact.
        const double reach = static_cast<double>(ring) * index.cell();
        if (found[k - 1].first <= reach * reach || ring * index.cell() > 4.0) break;
      } else if (ring * index.cell() > 4.0) {
        break;
      }
    }
    std::vector<int64_t> ids;
    for (int i = 0; i < k; ++i) ids.push_back(found[i].second);
    std::sort(ids.begin(), ids.end());
    return ids;
  });
}

Graph radius_edges(const Nodes& src, const Nodes& dst, double radius, const std::string& name) {
  TORCH_CHECK_VALUE(radius > 0, "graphshard::study::radius_edges: radius: expected > 0, got ",
                    radius);
  const double cell = std::max(radius, typical_spacing(src.size()));
  const PointIndex index(src.xyz, cell);
  const double* q = dst.xyz.data_ptr<double>();
  const int64_t ring = static_cast<int64_t>(std::ceil(radius / cell));
  return edges_per_dst(src.size(), dst.size(), name, [&](int64_t d) {
    std::vector<int64_t> ids;
    index.for_each_in_ring(q + 3 * d, ring, [&](int64_t id, double d2) {
      if (d2 <= radius * radius) ids.push_back(id);
    });
    std::sort(ids.begin(), ids.end());
    return ids;
  });
}

Graph random_bipartite(int64_t num_src, int64_t num_dst, double avg_degree, uint64_t seed) {
  TORCH_CHECK_VALUE(num_src >= 1 && num_dst >= 0 && avg_degree >= 0,
                    "graphshard::study::random_bipartite: expected num_src >= 1, num_dst >= 0, "
                    "avg_degree >= 0, got ",
                    num_src, ", ", num_dst, ", ", avg_degree);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, num_src - 1);
  std::uniform_int_distribution<int64_t> degree(0, static_cast<int64_t>(2 * avg_degree));
  std::vector<int64_t> src, dst;
  for (int64_t d = 0; d < num_dst; ++d) {
    const int64_t k = degree(rng);
    for (int64_t i = 0; i < k; ++i) {
      src.push_back(pick(rng));
      dst.push_back(d);
    }
  }
  Graph g;
  g.num_src = num_src;
  g.num_dst = num_dst;
  g.edge_index = to_edge_index(src, dst);
  g.name = "random bipartite";
  return g;
}

at::Tensor geometric_edge_attr(const Nodes& src, const Nodes& dst, const at::Tensor& edge_index) {
  const at::Tensor rel =
      dst.xyz.index_select(0, edge_index[1]) - src.xyz.index_select(0, edge_index[0]);
  return at::cat({rel, rel.norm(2, {1}, true)}, 1).to(at::kFloat);
}

}  // namespace graphshard::study
