// End-to-end (DESIGN §Verification 3): a small message-passing layer run sharded on W ranks
// (shard_edges_1hop / shard_graph_to_local, local compute, gather_tensor) equals the same layer
// on the whole graph in one process, in the output and in the gradients of x_src, x_dst,
// edge_attr and the weights.
//
// Placements of the gradients: a replicated leaf (x_src through sync, x_dst and edge_attr
// through shard) gets its full gradient on every rank; a sharded leaf gets piece r; the
// replicated weights are used by every rank on its own part, so their gradients are partial
// sums (P) and only their sum over ranks equals the whole-graph gradient.
#include <random>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "generators.h"
#include "graph_generators.h"
#include "graphshard/graph.h"
#include "graphshard/primitives.h"
#include "harness.h"

namespace graphshard::props {
namespace {

struct Weights {
  at::Tensor src, edge, dst;  // [Fs, Fo], [Fe, Fo], [Fd, Fo]
};

at::Tensor layer(const at::Tensor& x_src, const at::Tensor& x_dst, const at::Tensor& edge_attr,
                 const at::Tensor& edge_index, const Weights& w) {
  const at::Tensor ei = edge_index.to(at::kLong);
  const at::Tensor msg = x_src.index_select(0, ei[0]).matmul(w.src) + edge_attr.matmul(w.edge);
  return at::zeros({x_dst.size(0), w.dst.size(1)}, msg.options()).index_add(0, ei[1], msg) +
         x_dst.matmul(w.dst);
}

// How the edges reach shard_graph_to_local.
enum class EdgeMode {
  kReplicated,       // the full dst-sorted graph; shard_graph_to_local shards it
  kShardedSorted,    // shard_edges_1hop on the dst-sorted graph
  kShardedUnsorted,  // shard_edges_1hop regroups an unsorted graph
  kPreSharded,       // each rank's leaf is already its piece of the sorted edges
};

struct LayerCase {
  GraphSpec g;
  bool src_sharded = false, dst_sharded = false, uneven_src = false;
  SrcExchange src_exchange = SrcExchange::kAllGather;  // kHalo: only the used source rows move
  EdgeMode edges = EdgeMode::kReplicated;
  int64_t fs = 1, fd = 1, fe = 1, fo = 1;
};
std::ostream& operator<<(std::ostream& os, const LayerCase& c) {
  return os << c.g << " src_sharded=" << c.src_sharded << " dst_sharded=" << c.dst_sharded
            << " uneven_src=" << c.uneven_src
            << " src_exchange=" << (c.src_exchange == SrcExchange::kHalo ? "halo" : "all_gather")
            << " edges=" << static_cast<int>(c.edges) << " dims=("
            << c.fs << ", " << c.fd << ", " << c.fe << ", " << c.fo << ")";
}

rc::Gen<LayerCase> gen_layer_case(int /*world_size*/) {
  return rc::gen::exec([] {
    LayerCase c;
    c.edges = static_cast<EdgeMode>(*rc::gen::inRange(0, 4));
    c.g = *gen_graph_spec(200, 1500, c.edges == EdgeMode::kShardedUnsorted ? 0 : 1);
    c.src_sharded = *rc::gen::arbitrary<bool>();
    c.dst_sharded = *rc::gen::arbitrary<bool>();
    c.uneven_src = *rc::gen::arbitrary<bool>();
    c.src_exchange = *rc::gen::arbitrary<bool>() ? SrcExchange::kHalo : SrcExchange::kAllGather;
    c.fs = *rc::gen::inRange<int64_t>(1, 4);
    c.fd = *rc::gen::inRange<int64_t>(1, 4);
    c.fe = *rc::gen::inRange<int64_t>(1, 4);
    c.fo = *rc::gen::inRange<int64_t>(1, 4);
    return c;
  });
}

at::Tensor piece(const at::Tensor& full, int64_t dim, const ShardSizes& sizes, int r) {
  if (!sizes) return full;
  const auto [lo, hi] = partition_range(*sizes, r);
  return full.narrow(dim, lo, hi - lo);
}

at::Tensor leaf(const at::Tensor& t) {
  return t.detach().clone().requires_grad_(true);
}

at::Tensor grad_of(const at::Tensor& t) {
  return t.grad().defined() ? t.grad() : at::zeros_like(t);
}

std::vector<int64_t> uneven_split(int64_t n, int w, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> cuts{0, n};
  for (int i = 0; i + 1 < w; ++i) cuts.push_back(static_cast<int64_t>(rng() % (n + 1)));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> sizes;
  for (int i = 0; i < w; ++i) sizes.push_back(cuts[i + 1] - cuts[i]);
  return sizes;
}

void sharded_layer_body(const CommPtr& comm, const LayerCase& c) {
  const int w = comm->size(), r = comm->rank();
  const auto& g = c.g;
  const at::Tensor ei = make_edge_index(g);
  const int64_t e = ei.size(1);
  const uint64_t s = g.seed;
  const at::Tensor xs = make_rows(g.n_src, {c.fs}, at::kDouble, s + 1);
  const at::Tensor xd = make_rows(g.n_dst, {c.fd}, at::kDouble, s + 2);
  const at::Tensor ea = make_rows(e, {c.fe}, at::kDouble, s + 3);
  const Weights w0{make_rows(c.fs, {c.fo}, at::kDouble, s + 4),
                   make_rows(c.fe, {c.fo}, at::kDouble, s + 5),
                   make_rows(c.fd, {c.fo}, at::kDouble, s + 6)};
  const at::Tensor upstream = make_rows(g.n_dst, {c.fo}, at::kDouble, s + 7);

  // The whole graph in one process.
  const at::Tensor rxs = leaf(xs), rxd = leaf(xd), rea = leaf(ea);
  const Weights rw{leaf(w0.src), leaf(w0.edge), leaf(w0.dst)};
  const at::Tensor ref_out = layer(rxs, rxd, rea, ei, rw);
  (ref_out * upstream).sum().backward();

  // Sharded.
  const ShardSizes src_sizes =
      c.src_sharded
          ? ShardSizes(c.uneven_src ? uneven_split(g.n_src, w, s + 8) : balanced_sizes(g.n_src, w))
          : std::nullopt;
  const ShardSizes dst_sizes =
      c.dst_sharded ? ShardSizes(balanced_sizes(g.n_dst, w)) : std::nullopt;
  const at::Tensor x_src = leaf(piece(xs, 0, src_sizes, r));
  const at::Tensor x_dst = leaf(piece(xd, 0, dst_sizes, r));
  const Weights lw{leaf(w0.src), leaf(w0.edge), leaf(w0.dst)};

  at::Tensor edge_attr, ei_in, ea_in;
  ShardSizes edge_sizes;  // of the leaf edge_attr, when it is a piece
  ShardSizes info_edges;
  switch (c.edges) {
    case EdgeMode::kReplicated:
      edge_attr = leaf(ea), ei_in = ei, ea_in = edge_attr;
      break;
    case EdgeMode::kShardedSorted:
    case EdgeMode::kShardedUnsorted: {
      edge_attr = leaf(ea);
      const auto sh = shard_edges_1hop(edge_attr, ei, g.n_src, g.n_dst, comm,
                                       c.edges == EdgeMode::kShardedSorted);
      ei_in = sh.edge_index, ea_in = sh.edge_attr, info_edges = sh.edge_shard_sizes;
      break;
    }
    case EdgeMode::kPreSharded: {
      const auto p0 = build_graph_partition(ei, w, {g.n_src, g.n_dst});
      edge_sizes = info_edges = p0.edge_splits;
      edge_attr = leaf(piece(ea, 0, edge_sizes, r));
      ei_in = piece(ei, 1, edge_sizes, r), ea_in = edge_attr;
      break;
    }
  }
  const BipartiteGraphShardInfo info(src_sizes, dst_sizes, info_edges);
  const GraphPartition partition =
      build_graph_partition_from_shard_info(ei_in, {x_src, x_dst}, info, comm);
  const LocalGraph local =
      shard_graph_to_local(partition, {x_src, x_dst}, ea_in, ei_in, info, comm, std::nullopt,
                           c.src_exchange);
  const at::Tensor out_local =
      layer(local.x_src, local.x_dst, local.edge_attr, local.edge_index, lw);
  const at::Tensor out = gather_tensor(out_local, 0, partition.dst_splits, comm);
  const double tol = 1e-9;
  expect_close(out, ref_out.detach(), "output on rank " + std::to_string(r), tol, tol);
  (out * upstream).sum().backward();

  const std::string on = " on rank " + std::to_string(r);
  expect_close(grad_of(x_src), piece(rxs.grad(), 0, src_sizes, r), "grad x_src" + on, tol, tol);
  expect_close(grad_of(x_dst), piece(rxd.grad(), 0, dst_sizes, r), "grad x_dst" + on, tol, tol);
  expect_close(grad_of(edge_attr), piece(rea.grad(), 0, edge_sizes, r), "grad edge_attr" + on, tol,
               tol);
  // Weights: partial on each rank; the sum over ranks is the whole-graph gradient.
  const std::vector<std::pair<const at::Tensor*, const at::Tensor*>> weights{
      {&lw.src, &rw.src}, {&lw.edge, &rw.edge}, {&lw.dst, &rw.dst}};
  const char* names[] = {"w_src", "w_edge", "w_dst"};
  for (size_t i = 0; i < weights.size(); ++i) {
    at::Tensor sum = grad_of(*weights[i].first).contiguous().clone();
    comm->all_reduce_sum(sum.view({-1}));
    expect_close(sum, weights[i].second->grad(), std::string("summed grad ") + names[i] + on, tol,
                 tol);
  }
}

}  // namespace

GRAPHSHARD_PROPERTY(ShardedLayer, MatchesWholeGraphLayerInOutputAndGradients, gen_layer_case,
                    sharded_layer_body);

}  // namespace graphshard::props
