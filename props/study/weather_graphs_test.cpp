// The generated weather-model graphs have the sizes of the real ones and are dst-sorted.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "weather_graphs.h"

namespace graphshard::study {
namespace {

bool dst_sorted(const at::Tensor& ei) {
  return ei.size(1) < 2 || (ei[1].slice(0, 1) >= ei[1].slice(0, 0, -1)).all().item<bool>();
}

TEST(WeatherGraphs, OctahedralGridHasFourNTimesNPlusNinePointsOnTheSphere) {
  for (int64_t n : {1, 24, 96}) {
    const Nodes g = octahedral_grid(n);
    EXPECT_EQ(g.size(), 4 * n * (n + 9));
    EXPECT_TRUE(at::allclose(g.xyz.norm(2, {1}), at::ones({g.size()}, at::kDouble)));
  }
  EXPECT_EQ(octahedral_grid(96).size(), 40320);
}

TEST(WeatherGraphs, IcosahedralMeshHasTheKnownNodeAndEdgeCounts) {
  EXPECT_EQ(icosahedral_nodes(0).size(), 12);
  EXPECT_EQ(icosahedral_nodes(6).size(), 40962);
  const Graph g = icosahedral_multiscale_edges(6);
  EXPECT_EQ(g.num_src, 40962);
  EXPECT_EQ(g.edge_index.size(1), 327660);
  EXPECT_TRUE(dst_sorted(g.edge_index));
  // No self-loops; every edge has its reverse (the mesh is undirected).
  EXPECT_FALSE((g.edge_index[0] == g.edge_index[1]).any().item<bool>());
  const at::Tensor fwd = g.edge_index[0] * g.num_src + g.edge_index[1];
  const at::Tensor rev = g.edge_index[1] * g.num_src + g.edge_index[0];
  EXPECT_TRUE(at::equal(std::get<0>(fwd.sort()), std::get<0>(rev.sort())));
}

TEST(WeatherGraphs, KnnFindsTheTrueNearestNeighbours) {
  const Nodes mesh = icosahedral_nodes(2);
  const Nodes grid = octahedral_grid(6);
  const Graph g = knn_edges(mesh, grid, 3, "decoder");
  ASSERT_EQ(g.edge_index.size(1), 3 * grid.size());
  EXPECT_TRUE(dst_sorted(g.edge_index));
  // Brute force: the chosen neighbours' distances are the 3 smallest (ties may pick either).
  const at::Tensor d = at::cdist(grid.xyz, mesh.xyz);
  const at::Tensor best = std::get<0>(std::get<0>(d.topk(3, 1, false)).sort(1));
  const at::Tensor chosen = d.gather(1, g.edge_index[0].view({grid.size(), 3}));
  EXPECT_TRUE(at::allclose(std::get<0>(chosen.sort(1)), best, 0, 1e-12));
}

TEST(WeatherGraphs, RadiusEdgesMatchBruteForce) {
  const Nodes mesh = icosahedral_nodes(2);
  const Nodes grid = octahedral_grid(8);
  const double radius = 0.6 * typical_spacing(mesh.size()) * 2;
  const Graph g = radius_edges(grid, mesh, radius, "encoder");
  EXPECT_TRUE(dst_sorted(g.edge_index));
  const at::Tensor within = at::cdist(mesh.xyz, grid.xyz) <= radius;  // [mesh, grid]
  EXPECT_EQ(g.edge_index.size(1), within.sum().item<int64_t>());
  const at::Tensor pairs = within.nonzero();  // row-major: sorted by dst then src
  EXPECT_TRUE(at::equal(g.edge_index[1], pairs.select(1, 0)));
  EXPECT_TRUE(at::equal(g.edge_index[0], pairs.select(1, 1)));
}

TEST(WeatherGraphs, RandomBipartiteIsReproducibleAndInRange) {
  const Graph a = random_bipartite(50, 70, 4, 7), b = random_bipartite(50, 70, 4, 7);
  EXPECT_TRUE(at::equal(a.edge_index, b.edge_index));
  EXPECT_TRUE(dst_sorted(a.edge_index));
  EXPECT_LT(a.edge_index[0].max().item<int64_t>(), 50);
  EXPECT_LT(a.edge_index[1].max().item<int64_t>(), 70);
}

}  // namespace
}  // namespace graphshard::study
