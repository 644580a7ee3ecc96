// Graphs of weather models, generated in memory (no download): octahedral reduced Gaussian
// grids, icosahedral multi-scale meshes, encoder (grid -> mesh) and decoder (mesh -> grid)
// edges, random bipartite graphs, and graphs loaded from safetensors files.
//
// Every edge index is int64 [2, E], row 0 source ids, row 1 destination ids, sorted by
// destination (stable), as graph providers deliver them.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

namespace graphshard::study {

// Points on the unit sphere, float64 [n, 3].
struct Nodes {
  at::Tensor xyz;
  int64_t size() const { return xyz.size(0); }
};

struct Graph {
  int64_t num_src = 0, num_dst = 0;
  at::Tensor edge_index;  // int64 [2, E], dst-sorted
  at::Tensor edge_attr;   // float32 [E, F] or undefined
  std::string name;
  at::Tensor dst_xyz;     // float64 [num_dst, 3] destination points (generated graphs) or undefined
  bool plain = false;     // sources and destinations are one node set (a processor's mesh)
};

// Octahedral reduced Gaussian grid O_N: 2N latitude rings, ring i (from the pole) holding
// 4i + 16 points, 4N(N + 9) points in all. Latitudes are equally spaced (an approximation of the
// Gaussian latitudes, within half a ring spacing).
Nodes octahedral_grid(int64_t n);

// Icosahedral mesh refined r times: 10 * 4^r + 2 nodes, coarse nodes first (ids are stable
// across refinements).
Nodes icosahedral_nodes(int refinement);
// The union of the edges of every refinement level 0..r, both directions: the multi-scale
// processor graph (327,660 edges at r = 6).
Graph icosahedral_multiscale_edges(int refinement);

// Each dst node receives from its k nearest src nodes.
Graph knn_edges(const Nodes& src, const Nodes& dst, int k, const std::string& name);
// Each dst node receives from every src node within `radius` (chord length on the unit sphere).
Graph radius_edges(const Nodes& src, const Nodes& dst, double radius, const std::string& name);

// Typical distance between neighbouring points of a set of n points on the sphere.
double typical_spacing(int64_t n);

// Random bipartite graph with ~avg_degree in-edges per destination, dst-sorted, reproducible.
Graph random_bipartite(int64_t num_src, int64_t num_dst, double avg_degree, uint64_t seed);

// Edge attributes for a generated graph: relative position (dst - src, 3 floats) and length.
at::Tensor geometric_edge_attr(const Nodes& src, const Nodes& dst, const at::Tensor& edge_index);

// safetensors file with "edge_index" (int64 [2, E]), optional "edge_attr" ([E, ...] float),
// and node counts in the metadata ("num_src", "num_dst"). Errors name the file and the field.
Graph load_safetensors_graph(const std::string& path);
// The same from the file's bytes in memory; `origin` names them in errors (the fuzz target).
Graph parse_safetensors_graph(const std::string& bytes, const std::string& origin);

}  // namespace graphshard::study
