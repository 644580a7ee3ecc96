// Partitioning schemes on plain arrays (partition_schemes.h). No tensors here: the public wrapper
// (partitioners.cpp) validates and converts.
#include "partition_schemes.h"

#include <metis.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace graphshard::detail::schemes {

std::vector<int64_t> edge_balanced_sizes(const std::vector<int64_t>& off, int64_t parts) {
  const int64_t n = static_cast<int64_t>(off.size()) - 1;
  const int64_t total = off.back();
  // |parts * x - k * total| compares a cut with the k-th ideal one in exact integers.
  auto dist = [parts](int64_t x, int64_t k, int64_t whole) {
    return std::llabs(parts * x - k * whole);
  };
  std::vector<int64_t> bounds(parts + 1, 0);
  bounds[parts] = n;
  for (int64_t k = 1; k < parts; ++k) {
    const int64_t at_or_above =
        std::partition_point(off.begin(), off.end(),
                             [&](int64_t v) { return parts * v < k * total; }) -
        off.begin();
    int64_t best = -1, best_edges = 0, best_nodes = 0;
    // The best edge count is that of the first cut at or above the ideal or of the one before;
    // every cut of a plateau (nodes without edges) has the same count: take the one closest to
    // the node-balanced cut.
    for (const int64_t cand : {at_or_above - 1, at_or_above}) {
      if (cand < 0 || cand > n) continue;
      const int64_t v = off[cand];
      const int64_t lo = std::lower_bound(off.begin(), off.end(), v) - off.begin();
      const int64_t hi = std::upper_bound(off.begin(), off.end(), v) - off.begin() - 1;
      const int64_t b = std::max(std::clamp((k * n + parts / 2) / parts, lo, hi), bounds[k - 1]);
      const int64_t de = dist(off[b], k, total), dn = dist(b, k, n);
      if (best < 0 || de < best_edges || (de == best_edges && dn < best_nodes)) {
        best = b;
        best_edges = de;
        best_nodes = dn;
      }
    }
    bounds[k] = best;
  }
  std::vector<int64_t> sizes(parts);
  for (int64_t k = 0; k < parts; ++k) sizes[k] = bounds[k + 1] - bounds[k];
  return sizes;
}

uint64_t hilbert_index(uint32_t x, uint32_t y, uint32_t z, int bits) {
  // J. Skilling, "Programming the Hilbert curve" (AIP Conf. Proc. 707, 2004): axes to the
  // transposed index, then the bits interleaved, most significant first.
  uint32_t X[3] = {x, y, z};
  const uint32_t m = 1u << (bits - 1);
  for (uint32_t q = m; q > 1; q >>= 1) {  // inverse undo
    const uint32_t p = q - 1;
    for (int i = 0; i < 3; ++i) {
      if (X[i] & q) {
        X[0] ^= p;
      } else {
        const uint32_t t = (X[0] ^ X[i]) & p;
        X[0] ^= t;
        X[i] ^= t;
      }
    }
  }
  for (int i = 1; i < 3; ++i) X[i] ^= X[i - 1];  // Gray encode
  uint32_t t = 0;
  for (uint32_t q = m; q > 1; q >>= 1) {
    if (X[2] & q) t ^= q - 1;
  }
  for (auto& v : X) v ^= t;
  uint64_t key = 0;
  for (int b = bits - 1; b >= 0; --b) {
    for (const uint32_t v : X) key = (key << 1) | ((v >> b) & 1u);
  }
  return key;
}

std::vector<uint64_t> hilbert_keys(const double* xyz, int64_t n) {
  constexpr int kBits = 21;
  constexpr double kCells = static_cast<double>(1u << kBits);
  auto cell = [&](double v) {
    const double c = std::floor((v + 1.0) * 0.5 * kCells);
    return static_cast<uint32_t>(std::clamp(c, 0.0, kCells - 1));
  };
  std::vector<uint64_t> keys(n);
  for (int64_t i = 0; i < n; ++i) {
    keys[i] = hilbert_index(cell(xyz[3 * i]), cell(xyz[3 * i + 1]), cell(xyz[3 * i + 2]), kBits);
  }
  return keys;
}

int64_t latlon_bands(int64_t parts) {
  const double target = std::log(M_PI / 2);
  int64_t best = 1;
  double best_score = std::numeric_limits<double>::infinity();
  for (int64_t a = 1; a <= parts; ++a) {
    if (parts % a != 0) continue;
    const double score =
        std::abs(std::log(static_cast<double>(parts / a) / static_cast<double>(a)) - target);
    if (score < best_score) {
      best = a;
      best_score = score;
    }
  }
  return best;
}

namespace {

// edge_balanced_sizes over the nodes of `seq`, in that order, with weights w.
std::vector<int64_t> cut_sequence(const std::vector<int64_t>& seq, const std::vector<int64_t>& w,
                                  int64_t pieces) {
  std::vector<int64_t> off(seq.size() + 1, 0);
  for (size_t i = 0; i < seq.size(); ++i) off[i + 1] = off[i] + w[seq[i]];
  return edge_balanced_sizes(off, pieces);
}

}  // namespace

std::vector<int64_t> latlon_box_parts(const double* xyz, const std::vector<int64_t>& weights,
                                      int64_t n, int64_t parts) {
  const int64_t bands = latlon_bands(parts), per_band = parts / bands;
  std::vector<double> lat(n), lon(n);
  for (int64_t i = 0; i < n; ++i) {
    const double x = xyz[3 * i], y = xyz[3 * i + 1], z = xyz[3 * i + 2];
    const double r = std::sqrt(x * x + y * y + z * z);
    lat[i] = r > 0 ? std::asin(std::clamp(z / r, -1.0, 1.0)) : 0.0;
    lon[i] = std::atan2(y, x);
  }
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lat[a] < lat[b]; });
  const auto band_sizes = cut_sequence(order, weights, bands);
  std::vector<int64_t> part(n, 0);
  int64_t start = 0;
  for (int64_t k = 0; k < bands; ++k) {
    std::vector<int64_t> band(order.begin() + start, order.begin() + start + band_sizes[k]);
    std::sort(band.begin(), band.end());  // ties in longitude: by id
    std::stable_sort(band.begin(), band.end(), [&](int64_t a, int64_t b) { return lon[a] < lon[b]; });
    const auto box_sizes = cut_sequence(band, weights, per_band);
    size_t at = 0;
    for (int64_t j = 0; j < per_band; ++j) {
      for (int64_t s = 0; s < box_sizes[j]; ++s) part[band[at++]] = k * per_band + j;
    }
    start += band_sizes[k];
  }
  return part;
}

Adjacency adjacency_from_pairs(int64_t n, const std::vector<int64_t>& a,
                               const std::vector<int64_t>& b) {
  Adjacency adj;
  adj.xadj.assign(n + 1, 0);
  for (size_t e = 0; e < a.size(); ++e) {
    if (a[e] == b[e]) continue;
    ++adj.xadj[a[e] + 1];
    ++adj.xadj[b[e] + 1];
  }
  std::partial_sum(adj.xadj.begin(), adj.xadj.end(), adj.xadj.begin());
  std::vector<int64_t> fill(adj.xadj.begin(), adj.xadj.end() - 1);
  adj.adjncy.resize(adj.xadj[n]);
  for (size_t e = 0; e < a.size(); ++e) {
    if (a[e] == b[e]) continue;
    adj.adjncy[fill[a[e]]++] = b[e];
    adj.adjncy[fill[b[e]]++] = a[e];
  }
  // Sort and merge each list, compacting in place (the write position never passes the read).
  int64_t out = 0;
  for (int64_t u = 0; u < n; ++u) {
    const auto first = adj.adjncy.begin() + adj.xadj[u];
    const auto last = adj.adjncy.begin() + adj.xadj[u + 1];
    std::sort(first, last);
    const auto end = std::unique(first, last);
    for (auto it = first; it != end; ++it) adj.adjncy[out++] = *it;
    adj.xadj[u] = out - (end - first);
  }
  // xadj[u] now holds each list's new start; the ends follow from the next start.
  adj.xadj[n] = out;
  adj.adjncy.resize(out);
  return adj;
}

Adjacency shared_source_adjacency(int64_t n_src, int64_t n_dst, const int64_t* src,
                                  const int64_t* dst, int64_t num_edges) {
  std::vector<int64_t> start(n_src + 1, 0);
  for (int64_t e = 0; e < num_edges; ++e) ++start[src[e] + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<int64_t> fill(start.begin(), start.end() - 1), dsts(num_edges);
  for (int64_t e = 0; e < num_edges; ++e) dsts[fill[src[e]]++] = dst[e];
  std::vector<int64_t> a, b;
  for (int64_t s = 0; s < n_src; ++s) {
    const auto first = dsts.begin() + start[s], last = dsts.begin() + start[s + 1];
    std::sort(first, last);
    const auto end = std::unique(first, last);
    for (auto it = first; it + 1 < end; ++it) {
      a.push_back(*it);
      b.push_back(*(it + 1));
    }
  }
  return adjacency_from_pairs(n_dst, a, b);
}

std::vector<int64_t> metis_parts(const Adjacency& adj, const std::vector<int64_t>& weights,
                                 int64_t parts, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(adj.xadj.size()) - 1;
  std::vector<int64_t> part(n, 0);
  if (parts == 1 || n == 0) return part;
  if (parts >= n || adj.adjncy.empty()) {
    // Nothing for METIS to cut (and cases it handles badly): the id order, cut by weights.
    std::vector<int64_t> off(n + 1, 0);
    for (int64_t i = 0; i < n; ++i) off[i + 1] = off[i] + weights[i];
    const auto sizes = edge_balanced_sizes(off, parts);
    int64_t at = 0;
    for (int64_t p = 0; p < parts; ++p)
      for (int64_t k = 0; k < sizes[p]; ++k) part[at++] = p;
    return part;
  }
  constexpr int64_t kMax = std::numeric_limits<idx_t>::max();
  const int64_t weight_sum = std::accumulate(weights.begin(), weights.end(), int64_t{0});
  if (n > kMax || static_cast<int64_t>(adj.adjncy.size()) > kMax || weight_sum > kMax ||
      parts > kMax) {
    throw std::runtime_error("graph too large for METIS's 32-bit indices (" + std::to_string(n) +
                             " nodes, " + std::to_string(adj.adjncy.size()) +
                             " adjacency entries, weight " + std::to_string(weight_sum) + ")");
  }
  std::vector<idx_t> xadj(adj.xadj.begin(), adj.xadj.end());
  std::vector<idx_t> adjncy(adj.adjncy.begin(), adj.adjncy.end());
  // Two constraints (edges, then nodes); one (nodes) when no node has an edge, as METIS rejects
  // a constraint whose weights are all zero.
  idx_t ncon = weight_sum > 0 ? 2 : 1;
  std::vector<idx_t> vwgt(n * ncon, 1);
  if (ncon == 2) {
    for (int64_t i = 0; i < n; ++i) vwgt[2 * i] = static_cast<idx_t>(weights[i]);
  }
  idx_t nv = static_cast<idx_t>(n), np = static_cast<idx_t>(parts), objval = 0;
  idx_t options[METIS_NOPTIONS];
  METIS_SetDefaultOptions(options);
  options[METIS_OPTION_SEED] = static_cast<idx_t>(seed % static_cast<uint64_t>(kMax));
  options[METIS_OPTION_NUMBERING] = 0;
  std::vector<idx_t> out(n, 0);
  const int status = METIS_PartGraphKway(&nv, &ncon, xadj.data(), adjncy.data(), vwgt.data(),
                                         nullptr, nullptr, &np, nullptr, nullptr, options,
                                         &objval, out.data());
  if (status != METIS_OK) {
    throw std::runtime_error("METIS_PartGraphKway returned status " + std::to_string(status));
  }
  for (int64_t i = 0; i < n; ++i) part[i] = out[i];
  return part;
}

std::vector<int64_t> follow_destinations(int64_t n_src, const int64_t* src, const int64_t* dst,
                                         int64_t num_edges, const std::vector<int64_t>& dst_part,
                                         int64_t parts) {
  std::vector<int64_t> start(n_src + 1, 0);
  for (int64_t e = 0; e < num_edges; ++e) ++start[src[e] + 1];
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<int64_t> fill(start.begin(), start.end() - 1), used(num_edges);
  for (int64_t e = 0; e < num_edges; ++e) used[fill[src[e]]++] = dst_part[dst[e]];
  std::vector<int64_t> part(n_src);
  for (int64_t s = 0; s < n_src; ++s) {
    const auto first = used.begin() + start[s], last = used.begin() + start[s + 1];
    if (first == last) {
      part[s] = s * parts / n_src;
      continue;
    }
    std::sort(first, last);
    int64_t best = *first, best_run = 0;
    for (auto it = first; it != last;) {
      const auto run_end = std::upper_bound(it, last, *it);
      if (run_end - it > best_run) {  // strictly longer: ties keep the lower part
        best = *it;
        best_run = run_end - it;
      }
      it = run_end;
    }
    part[s] = best;
  }
  return part;
}

PartOrder order_by_part(const std::vector<int64_t>& part, int64_t parts) {
  PartOrder o;
  o.sizes.assign(parts, 0);
  for (const int64_t p : part) ++o.sizes[p];
  std::vector<int64_t> pos(parts, 0);
  for (int64_t p = 1; p < parts; ++p) pos[p] = pos[p - 1] + o.sizes[p - 1];
  o.perm.resize(part.size());
  for (size_t i = 0; i < part.size(); ++i) o.perm[pos[part[i]]++] = static_cast<int64_t>(i);
  return o;
}

}  // namespace graphshard::detail::schemes
