#include "weather_graphs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "bounded_json.h"

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

namespace {

at::ScalarType safetensors_dtype(const std::string& path, const std::string& name,
                                 const std::string& t) {
  if (t == "I64") return at::kLong;
  if (t == "I32") return at::kInt;
  if (t == "F32") return at::kFloat;
  if (t == "F64") return at::kDouble;
  if (t == "F16") return at::kHalf;
  if (t == "BF16") return at::kBFloat16;
  TORCH_CHECK_VALUE(false, "graphshard::study::load_safetensors_graph: ", path, ": tensor '", name,
                    "': dtype: expected one of I64, I32, F32, F64, F16, BF16, got ", t);
}

// The safetensors reader over any seekable stream of file_size bytes; `path` names it in errors.
Graph read_safetensors_graph(std::istream& in, uint64_t file_size, const std::string& path) {
  const char* fn = "graphshard::study::load_safetensors_graph: ";
  uint64_t header_len = 0;
  TORCH_CHECK_VALUE(file_size >= 8 && in.read(reinterpret_cast<char*>(&header_len), 8), fn, path,
                    ": header length: expected 8 bytes, the file is shorter");
  TORCH_CHECK_VALUE(header_len <= file_size - 8, fn, path, ": header length: expected at most ",
                    file_size - 8, " bytes, got ", header_len);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json meta;
  try {
    meta = parse_bounded_json(header);
  } catch (const std::exception& e) {
    TORCH_CHECK_VALUE(false, fn, path, ": header: expected JSON, got a parse error: ", e.what());
  }
  TORCH_CHECK_VALUE(meta.is_object(), fn, path, ": header: expected a JSON object");
  const uint64_t data_start = 8 + header_len;
  auto load = [&](const std::string& name) -> at::Tensor {
    if (!meta.contains(name)) return {};
    const auto& t = meta[name];
    std::string dtype_name;
    std::vector<int64_t> shape;
    std::vector<uint64_t> off;
    // Integers only: nlohmann converts a float element with a static_cast (undefined behaviour
    // out of range). An integer beyond int64 (uint64) wraps to a negative size or offset
    // below, which the range checks refuse.
    auto integers = [](const nlohmann::json& a) {
      return a.is_array() && std::all_of(a.begin(), a.end(), [](const nlohmann::json& v) {
               return v.is_number_integer();
             });
    };
    bool well_formed = false;
    try {
      dtype_name = t.at("dtype").get<std::string>();
      well_formed = integers(t.at("shape")) && integers(t.at("data_offsets"));
      if (well_formed) {
        shape = t.at("shape").get<std::vector<int64_t>>();
        off = t.at("data_offsets").get<std::vector<uint64_t>>();
      }
    } catch (const nlohmann::json::exception&) {
      well_formed = false;
    }
    TORCH_CHECK_VALUE(well_formed, fn, path, ": tensor '", name, "': expected an object with ",
                      "dtype (string), shape (list of sizes) and data_offsets (two offsets), got ",
                      t.dump());
    const at::ScalarType dtype = safetensors_dtype(path, name, dtype_name);
    for (const int64_t d : shape) {
      TORCH_CHECK_VALUE(d >= 0, fn, path, ": tensor '", name, "': shape: expected sizes >= 0, got ",
                        c10::IntArrayRef(shape));
    }
    // Compared without adding to the offsets: a huge offset would wrap around.
    TORCH_CHECK_VALUE(off.size() == 2 && off[0] <= off[1] && off[1] <= file_size - data_start, fn,
                      path, ": tensor '", name, "': data_offsets: expected a range inside the ",
                      "file");
    // The shape's byte size is checked against the data range BEFORE allocating: a header may
    // declare any shape, and only the file's bytes bound what is real. The product of the
    // nonzero sizes is bounded too, since torch's own overflow checks (zero-element tensors
    // included) raise a plain c10::Error.
    const uint64_t have = off[1] - off[0];
    const auto item = static_cast<uint64_t>(c10::elementSize(dtype));
    const uint64_t max_elements = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / item;
    uint64_t elements = 1;  // of the nonzero sizes
    bool empty = false;
    for (const int64_t d : shape) {
      if (d == 0) {
        empty = true;
        continue;
      }
      TORCH_CHECK_VALUE(elements <= max_elements / static_cast<uint64_t>(d), fn, path, ": tensor '",
                        name, "': shape: expected at most ", max_elements, " elements, got ",
                        c10::IntArrayRef(shape));
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t need = empty ? 0 : elements * item;
    TORCH_CHECK_VALUE(need == have, fn, path, ": tensor '", name, "': expected ", need,
                      " bytes for its shape ", c10::IntArrayRef(shape), ", got ", have);
    at::Tensor out = at::empty(shape, dtype);
    in.seekg(static_cast<std::streamoff>(data_start + off[0]));
    TORCH_CHECK_VALUE(
        in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(need)), fn, path,
        ": tensor '", name, "': cannot read its ", need, " bytes");
    return out;
  };
  Graph g;
  g.name = path;
  g.edge_index = load("edge_index");
  TORCH_CHECK_VALUE(g.edge_index.defined(), fn, path, ": edge_index: expected a tensor, got none");
  TORCH_CHECK_VALUE(g.edge_index.dim() == 2 && g.edge_index.size(0) == 2, fn, path,
                    ": edge_index: expected shape [2, E], got ", g.edge_index.sizes());
  TORCH_CHECK_VALUE(!at::isFloatingType(g.edge_index.scalar_type()), fn, path,
                    ": edge_index: expected dtype I64 or I32, got ", g.edge_index.scalar_type());
  g.edge_index = g.edge_index.to(at::kLong);
  g.edge_attr = load("edge_attr");
  if (g.edge_attr.defined()) {
    TORCH_CHECK_VALUE(at::isFloatingType(g.edge_attr.scalar_type()), fn, path,
                      ": edge_attr: expected a floating dtype, got ", g.edge_attr.scalar_type());
    TORCH_CHECK_VALUE(g.edge_attr.dim() >= 1 && g.edge_attr.size(0) == g.edge_index.size(1), fn,
                      path, ": edge_attr: expected ", g.edge_index.size(1), " rows, got ",
                      g.edge_attr.sizes());
  }
  const auto& md = meta.contains("__metadata__") ? meta["__metadata__"] : nlohmann::json::object();
  auto count = [&](const char* key) -> int64_t {
    TORCH_CHECK_VALUE(md.contains(key), fn, path, ": __metadata__.", key,
                      ": expected a node count, got none");
    const auto& v = md[key];
    // safetensors metadata values are strings; a bare integer is accepted too.
    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    size_t used = 0;
    int64_t n = -1;
    try {
      n = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TORCH_CHECK_VALUE(used == text.size() && used > 0 && n >= 0, fn, path, ": __metadata__.", key,
                      ": expected a node count (an integer >= 0), got ", v.dump());
    return n;
  };
  g.num_src = count("num_src");
  g.num_dst = count("num_dst");
  if (g.edge_index.size(1) > 0) {
    const int64_t max_src = g.edge_index[0].max().item<int64_t>();
    const int64_t max_dst = g.edge_index[1].max().item<int64_t>();
    const int64_t min_id = g.edge_index.min().item<int64_t>();
    TORCH_CHECK_VALUE(min_id >= 0 && max_src < g.num_src && max_dst < g.num_dst, fn, path,
                      ": edge_index: expected ids in [0, ", g.num_src, ") x [0, ", g.num_dst,
                      "), got range [", min_id, ", max src ", max_src, ", max dst ", max_dst, "]");
  }
  return g;
}

}  // namespace

Graph load_safetensors_graph(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK_VALUE(in, "graphshard::study::load_safetensors_graph: ", path,
                    ": cannot open the file");
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  return read_safetensors_graph(in, file_size, path);
}

Graph parse_safetensors_graph(const std::string& bytes, const std::string& origin) {
  std::istringstream in(bytes, std::ios::binary);
  return read_safetensors_graph(in, bytes.size(), origin);
}

}  // namespace graphshard::study
