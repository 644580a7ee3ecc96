// The partitioning schemes behind graphshard/partitioners.h, on plain arrays (no tensors): cuts
// of an ordered node sequence, space-filling-curve keys, lat-lon boxes, METIS, and the source
// parts that follow the destinations. Every function is serial and deterministic (the same
// input gives the same output whatever the thread count). Internal to core/graph; the public
// wrapper validates the arguments before calling any of these.
#pragma once

#include <cstdint>
#include <vector>

namespace graphshard::detail::schemes {

// Cut positions of an ordered sequence of n nodes into `parts` contiguous pieces whose edge
// counts are as equal as possible and, among the cuts that achieve that, whose node counts are:
// offsets[i] = edges of the first i nodes (size n + 1, non-decreasing, offsets[0] = 0). Returns
// the piece sizes (parts entries, summing to n; pieces may be empty).
std::vector<int64_t> edge_balanced_sizes(const std::vector<int64_t>& offsets, int64_t parts);

// Key of each point along a 3-D Hilbert curve through the cube [-1, 1]^3 (21 bits per axis):
// points close on the sphere tend to have close keys. xyz: n points, row-major [n, 3].
std::vector<uint64_t> hilbert_keys(const double* xyz, int64_t n);

// Hilbert index of a cell (x, y, z) of a 2^bits cube (bits <= 21), Skilling's transpose.
uint64_t hilbert_index(uint32_t x, uint32_t y, uint32_t z, int bits);

// Number of latitude bands of the lat x lon grid of boxes for `parts` boxes: the divisor a of
// parts (b = parts / a longitude boxes per band) whose boxes are closest to square on average,
// b / a closest to pi / 2 (a band spans 180 degrees of latitude over a, 360 degrees of longitude
// over b, at a mean cos(latitude) of pi / 4 over the sphere).
int64_t latlon_bands(int64_t parts);

// Box of each point: points sorted by latitude (then id) are cut into `bands` bands, each band's
// points sorted by longitude (then id) into parts / bands boxes, both cuts balancing the points'
// weights (edges) then their counts as edge_balanced_sizes does. Box id = band * (parts / bands)
// + box in band. weights: n entries (destination in-degrees).
std::vector<int64_t> latlon_box_parts(const double* xyz, const std::vector<int64_t>& weights,
                                      int64_t n, int64_t parts);

// Undirected adjacency in CSR form (no self-loops, no duplicates), METIS's input.
struct Adjacency {
  std::vector<int64_t> xadj;    // n + 1
  std::vector<int64_t> adjncy;  // neighbours of node i: adjncy[xadj[i] .. xadj[i + 1])
};

// Adjacency from undirected pairs (a, b), both in [0, n): each pair taken in both directions,
// self-pairs dropped, duplicates merged, neighbours ascending.
Adjacency adjacency_from_pairs(int64_t n, const std::vector<int64_t>& a,
                               const std::vector<int64_t>& b);

// Destination-to-destination adjacency of a bipartite graph: two destinations are neighbours
// when they share a source (the destinations of each source, ascending, joined in a path, so the
// graph stays O(E) where a clique per source would not). src/dst: the E edge ends.
Adjacency shared_source_adjacency(int64_t n_src, int64_t n_dst, const int64_t* src,
                                  const int64_t* dst, int64_t num_edges);

// METIS k-way partition of the adjacency with two balance constraints per node (weights[i],
// then 1: edges, then nodes), for a fixed seed. parts == 1 or n == 0: all in part 0; parts >= n
// or no adjacency at all: the id order cut as edge_balanced_sizes cuts it (nothing to cut). Raises
// std::runtime_error with METIS's status when METIS fails.
std::vector<int64_t> metis_parts(const Adjacency& adj, const std::vector<int64_t>& weights,
                                 int64_t parts, uint64_t seed);

// The part of each source: the part holding most of the destinations of its edges (ties: the
// lowest part); a source no edge uses takes part floor(id * parts / n_src).
std::vector<int64_t> follow_destinations(int64_t n_src, const int64_t* src, const int64_t* dst,
                                         int64_t num_edges, const std::vector<int64_t>& dst_part,
                                         int64_t parts);

// Stable order of nodes by part: perm[new] = old, with the part sizes.
struct PartOrder {
  std::vector<int64_t> perm;
  std::vector<int64_t> sizes;
};
PartOrder order_by_part(const std::vector<int64_t>& part, int64_t parts);

}  // namespace graphshard::detail::schemes
