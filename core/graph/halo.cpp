// Halo exchange metadata and movements (SPEC §3b). The autograd function of halo_exchange is in
// core/primitives/autograd.cpp (the one translation unit that includes custom_function.h).
#include "graphshard/halo.h"

#include <string>

#include <ATen/ATen.h>

#include "../primitives/arguments.h"
#include "graph_internal.h"

namespace graphshard {
namespace {

using detail::check;

std::vector<int64_t> host_longs(const at::Tensor& t) {
  const at::Tensor h = t.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(h.data_ptr<int64_t>(), h.data_ptr<int64_t>() + h.numel());
}

std::vector<int64_t> scaled(const std::vector<int64_t>& v, int64_t f) {
  std::vector<int64_t> out(v);
  for (auto& x : out) x *= f;
  return out;
}

// Elements per row of a [rows, ...] tensor (a zero-row tensor still has a row size).
int64_t row_numel(const at::Tensor& x) {
  int64_t n = 1;
  for (int64_t d = 1; d < x.dim(); ++d) n *= x.size(d);
  return n;
}

// One int64 per peer: received[q] = what rank q put in its send[r].
std::vector<int64_t> exchange_counts(Communicator& comm, const std::vector<int64_t>& send,
                                     const at::Device& device) {
  const int w = comm.size();
  const std::vector<int64_t> ones(w, 1);
  const at::Tensor s = at::tensor(send, at::kLong).to(device);
  const at::Tensor r = at::empty({w}, s.options());
  comm.all_to_all_v(s, ones, r, ones);
  return host_longs(r);
}

// Positions in the ascending 1-D `sorted` of the first element >= each bound.
std::vector<int64_t> lower_bounds(const at::Tensor& sorted, const std::vector<int64_t>& bounds) {
  if (bounds.empty()) return {};
  return host_longs(at::searchsorted(sorted, at::tensor(bounds, at::kLong).to(sorted.device())));
}

// The partition fits a plain graph cut over `world` ranks.
void check_partition(const char* fn, const GraphPartition& p, int world, int rank) {
  const auto [n_src, n] = p.num_nodes;
  check(n_src == n, fn, "partition.num_nodes", "a plain graph (n_src == n_dst)",
        "(" + std::to_string(n_src) + ", " + std::to_string(n) + ")", rank);
  check(n >= 0, fn, "partition.num_nodes", "a count >= 0", n, rank);
  check(p.num_parts == world, fn, "partition.num_parts",
        std::to_string(world) + " (the group size)", p.num_parts, rank);
  detail::check_sizes(fn, "partition.dst_splits", p.dst_splits, world, rank);
  detail::check_sizes(fn, "partition.edge_splits", p.edge_splits, world, rank);
  check(total(p.dst_splits) == n, fn, "partition.dst_splits",
        "sizes summing to n = " + std::to_string(n), p.dst_splits, rank);
  check(total(p.edge_splits) == p.num_edges, fn, "partition.edge_splits",
        "sizes summing to num_edges = " + std::to_string(p.num_edges), p.edge_splits, rank);
}

// This rank's edges, checked: on the whole graph every rank checks every edge (all fail
// together); a shard is checked by its rank alone (its peers then see a CommError).
at::Tensor local_edges(const char* fn, const GraphPartition& p, const at::Tensor& edge_index,
                       const ShardSizes& edge_shard_sizes, int world, int rank) {
  const int64_t n = p.num_nodes.second;
  const auto [lo, hi] = partition_range(p.dst_splits, rank);
  if (edge_shard_sizes) {
    detail::check_sizes(fn, "edge_shard_sizes", *edge_shard_sizes, world, rank);
    check(*edge_shard_sizes == p.edge_splits, fn, "edge_shard_sizes", p.edge_splits,
          *edge_shard_sizes, rank);
    check(edge_index.size(1) == p.edge_splits[rank], fn, "edge_index",
          std::to_string(p.edge_splits[rank]) + " edges (this rank's shard)", edge_index.size(1),
          rank);
    detail::check_ids(fn, edge_index, n, n, rank);
    detail::check_dst_range(fn, edge_index, lo, hi, rank);
    if (debug_checks()) detail::check_sorted(fn, edge_index, rank);
    return edge_index;
  }
  check(edge_index.size(1) == p.num_edges, fn, "edge_index",
        std::to_string(p.num_edges) + " edges (the whole graph)", edge_index.size(1), rank);
  detail::check_ids(fn, edge_index, n, n, rank);
  if (debug_checks()) detail::check_sorted(fn, edge_index, rank);
  int64_t start = 0;
  for (int q = 0; q < world; ++q) {
    const auto [qlo, qhi] = partition_range(p.dst_splits, q);
    detail::check_dst_ends(fn, edge_index.narrow(1, start, p.edge_splits[q]), qlo, qhi, rank);
    start += p.edge_splits[q];
  }
  const auto [elo, ehi] = partition_range(p.edge_splits, rank);
  return edge_index.narrow(1, elo, ehi - elo);
}

}  // namespace

std::vector<int64_t> HaloInfo::send_counts() const {
  std::vector<int64_t> out;
  for (const auto& t : send_indices) out.push_back(t.numel());
  return out;
}

HaloInfo build_halo_info(const GraphPartition& partition, const at::Tensor& edge_index,
                         const CommPtr& group, const ShardSizes& edge_shard_sizes, bool debug) {
  constexpr const char* fn = "build_halo_info";
  const int rank = detail::rank_of(group), world = detail::world_of(group);
  detail::check_edge_index(fn, edge_index, rank);
  check_partition(fn, partition, world, rank);
  const at::Tensor local = local_edges(fn, partition, edge_index, edge_shard_sizes, world, rank);
  const int64_t n = partition.num_nodes.second;
  const int64_t lo = partition_range(partition.dst_splits, rank).first;

  // The distinct sources, ascending, and where each comes from (owned or received).
  const cpu::UsedIds used = detail::used_sources(fn, local.select(0, 0), n, rank);
  detail::OwnerRows rows =
      detail::rows_from_owners(fn, used.kept.to(at::kLong), partition.dst_splits, group, debug);
  HaloInfo info = std::move(rows.info);
  const at::Tensor src = rows.order.index_select(0, used.relabelled.to(at::kLong));
  info.edge_index_local = at::stack({src.to(edge_index.scalar_type()), local.select(0, 1) - lo});
  return info;
}

namespace detail {

OwnerRows rows_from_owners(const char* fn, const at::Tensor& needed,
                           const std::vector<int64_t>& splits, const CommPtr& group, bool debug) {
  const int rank = rank_of(group), world = world_of(group);
  const auto [lo, hi] = partition_range(splits, rank);
  const at::TensorOptions longs = needed.options();
  // The owned ids are the block [a, b) of the ascending `needed`, the halo the rest (ascending
  // global id = by owning rank, then by global id).
  const int64_t num_needed = needed.size(0);
  const auto ab = lower_bounds(needed, {lo, hi});
  const int64_t a = ab[0], b = ab[1];
  OwnerRows out;
  HaloInfo& info = out.info;
  info.num_local_nodes = hi - lo;
  const at::Tensor halo = at::cat({needed.narrow(0, 0, a), needed.narrow(0, b, num_needed - b)});
  info.num_halo_nodes = halo.size(0);
  // Row of each needed id in [owned rows, halo rows]: halo below the range, owned, halo above.
  out.order = at::empty({num_needed}, longs);
  out.order.narrow(0, 0, a).copy_(
      at::arange(info.num_local_nodes, info.num_local_nodes + a, longs));
  out.order.narrow(0, a, b - a).copy_(needed.narrow(0, a, b - a) - lo);
  out.order.narrow(0, b, num_needed - b)
      .copy_(at::arange(info.num_local_nodes + a, info.total_nodes(), longs));

  // Halo nodes per owner: cut the ascending halo list at the owners' range starts.
  const auto cuts = lower_bounds(halo, offsets_of(splits));
  info.recv_counts.resize(world);
  for (int q = 0; q < world; ++q) info.recv_counts[q] = cuts[q + 1] - cuts[q];
  if (debug) {
    info.recv_global_ids.emplace();
    for (int q = 0; q < world; ++q)
      info.recv_global_ids->push_back(halo.narrow(0, cuts[q], info.recv_counts[q]));
  }
  if (world == 1) {
    info.send_indices = {at::empty({0}, longs)};
    return out;
  }

  // Requests: rank q asks each owner for the ids it needs; what rank r must send to q is what q
  // asked of it (correct for directed graphs, where r's own edges say nothing of q's needs).
  Communicator& comm = *group;
  comm.check_agreement(std::string(fn) + " splits=" + str(splits), needed.device());
  const std::vector<int64_t> send_counts = exchange_counts(comm, info.recv_counts, needed.device());
  const at::Tensor asked = at::empty({total(send_counts)}, longs);
  comm.all_to_all_v(halo.contiguous(), info.recv_counts, asked, send_counts);
  if (asked.numel() > 0) {
    const auto [mn, mx] = id_range(asked);
    check(mn >= lo && mx < hi, fn, "partition",
          "the same node ranges on every rank (requests for owned ids in [" + std::to_string(lo) +
              ", " + std::to_string(hi) + "))",
          "requests for ids in [" + std::to_string(mn) + ", " + std::to_string(mx) + "]", rank);
  }
  int64_t pos = 0;
  for (int q = 0; q < world; ++q) {
    info.send_indices.push_back(asked.narrow(0, pos, send_counts[q]) - lo);
    pos += send_counts[q];
  }
  return out;
}

}  // namespace detail

void verify_halo_info(const HaloInfo& info, const GraphPartition& partition, const CommPtr& group) {
  constexpr const char* fn = "verify_halo_info";
  const int rank = detail::rank_of(group), world = detail::world_of(group);
  check(info.recv_global_ids.has_value(), fn, "halo_info",
        "recv_global_ids (a HaloInfo built with debug=true)", "none", rank);
  detail::check_sizes(fn, "partition.dst_splits", partition.dst_splits, world, rank);
  check(static_cast<int>(info.recv_global_ids->size()) == world, fn, "halo_info.recv_global_ids",
        std::to_string(world) + " entries", info.recv_global_ids->size(), rank);
  check(static_cast<int>(info.send_indices.size()) == world, fn, "halo_info.send_indices",
        std::to_string(world) + " entries", info.send_indices.size(), rank);
  // Before any exchange: an entry the exchange cannot read would fail this rank alone, mid-way.
  for (int q = 0; q < world; ++q) {
    const std::string at_q = "[" + std::to_string(q) + "]";
    detail::check_id_list(fn, "halo_info.send_indices" + at_q, info.send_indices[q], rank);
    detail::check_id_list(fn, "halo_info.recv_global_ids" + at_q, (*info.recv_global_ids)[q], rank);
  }
  if (world == 1) {
    check(info.num_halo_nodes == 0, fn, "halo_info.num_halo_nodes", "0 (one rank)",
          info.num_halo_nodes, rank);
    return;
  }
  Communicator& comm = *group;
  const at::Device device =
      info.edge_index_local.defined() ? info.edge_index_local.device() : at::Device(at::kCPU);
  const int64_t lo = partition_range(partition.dst_splits, rank).first;
  std::vector<at::Tensor> sent;
  for (const auto& idx : info.send_indices) sent.push_back(idx.to(device, at::kLong) + lo);
  const std::vector<int64_t> send_counts = info.send_counts();
  const std::vector<int64_t> got_counts = exchange_counts(comm, send_counts, device);
  const at::Tensor got = at::empty({total(got_counts)}, at::TensorOptions(device).dtype(at::kLong));
  comm.all_to_all_v(at::cat(sent), send_counts, got, got_counts);

  // The first peer whose rows differ from what this rank expects, then every rank learns every
  // rank's finding, so all raise the same error.
  int64_t bad = -1, pos = 0;
  for (int q = 0; q < world && bad < 0; ++q) {
    const at::Tensor expected = (*info.recv_global_ids)[q].to(device, at::kLong);
    const at::Tensor received = got.narrow(0, pos, got_counts[q]);
    if (!at::equal(received, expected)) bad = q;
    pos += got_counts[q];
  }
  const int64_t expected_n = bad >= 0 ? (*info.recv_global_ids)[bad].numel() : 0;
  const at::Tensor mine =
      at::tensor(std::vector<int64_t>{bad, bad >= 0 ? got_counts[bad] : 0, expected_n}, at::kLong)
          .to(device);
  const at::Tensor all = at::empty({3 * world}, mine.options());
  comm.all_gather_v(mine, all, std::vector<int64_t>(world, 3));
  const auto found = host_longs(all);
  for (int k = 0; k < world; ++k) {
    const int64_t q = found[3 * k];
    if (q < 0) continue;
    detail::fail(fn, "halo_info",
                 "what rank " + std::to_string(q) + " sends rank " + std::to_string(k) +
                     " to equal what rank " + std::to_string(k) + " expects from it",
                 "rank " + std::to_string(k) + " received " + std::to_string(found[3 * k + 1]) +
                     " nodes from rank " + std::to_string(q) + " and expected " +
                     std::to_string(found[3 * k + 2]) +
                     (found[3 * k + 1] == found[3 * k + 2] ? " (other ids)" : ""),
                 rank);
  }
}

namespace detail {

void check_id_list(const char* fn, const std::string& arg, const at::Tensor& ids, int rank) {
  check(ids.defined() && ids.dim() == 1 && ids.scalar_type() == at::kLong, fn, arg,
        "a 1-D int64 tensor", ids.defined() ? ids.toString() + to_str(ids.sizes()) : "undefined",
        rank);
}

void check_halo_arguments(const char* fn, const at::Tensor& x, const HaloInfo& info, int world,
                          int rank) {
  check_defined(fn, "input", x, rank);
  check(x.dim() >= 1, fn, "input", "a tensor of at least one dim", x.sizes(), rank);
  check(x.size(0) == info.num_local_nodes, fn, "input",
        std::to_string(info.num_local_nodes) + " rows (halo_info.num_local_nodes)", x.size(0),
        rank);
  check(static_cast<int>(info.send_indices.size()) == world, fn, "halo_info.send_indices",
        std::to_string(world) + " entries (the group size)", info.send_indices.size(), rank);
  check_sizes(fn, "halo_info.recv_counts", info.recv_counts, world, rank);
  check(total(info.recv_counts) == info.num_halo_nodes, fn, "halo_info.recv_counts",
        "counts summing to num_halo_nodes = " + std::to_string(info.num_halo_nodes),
        info.recv_counts, rank);
  check(info.recv_counts[rank] == 0, fn, "halo_info.recv_counts", "0 at this rank's own entry",
        info.recv_counts, rank);
  for (int q = 0; q < world; ++q) {
    const at::Tensor& idx = info.send_indices[q];
    const std::string arg = "halo_info.send_indices[" + std::to_string(q) + "]";
    check_id_list(fn, arg, idx, rank);
    check(idx.device() == x.device(), fn, arg, x.device(), idx.device(), rank);
    check(q != rank || idx.numel() == 0, fn, arg, "empty (a rank sends nothing to itself)",
          idx.numel(), rank);
    if (idx.numel() > 0 && (debug_checks() || checked_mode())) {
      const auto [mn, mx] = id_range(idx);
      check(mn >= 0 && mx < info.num_local_nodes, fn, arg,
            "local ids in [0, " + std::to_string(info.num_local_nodes) + ")",
            "ids in [" + std::to_string(mn) + ", " + std::to_string(mx) + "]", rank);
    }
  }
}

at::Tensor halo_forward(const at::Tensor& x, const std::vector<at::Tensor>& send_indices,
                        const std::vector<int64_t>& recv_counts, Communicator& comm) {
  const int64_t inner = row_numel(x), n_local = x.size(0), n_halo = total(recv_counts);
  std::vector<int64_t> shape = x.sizes().vec();
  comm.check_agreement("halo_exchange dtype=" + std::string(c10::toString(x.scalar_type())) +
                           " row=" + to_str(at::IntArrayRef(shape).slice(1)),
                       x.device());
  shape[0] = n_local + n_halo;
  at::Tensor out = at::empty(shape, x.options().memory_format(at::MemoryFormat::Contiguous));
  out.narrow(0, 0, n_local).copy_(x);
  // Packed once (the rows each peer asked for, peer by peer), received in place.
  const at::Tensor idx = at::cat(send_indices);
  std::vector<int64_t> packed_shape = shape;
  packed_shape[0] = idx.numel();
  at::Tensor pack = comm.scratch(Communicator::kPack, idx.numel() * inner, x.options());
  at::Tensor packed = pack.view(packed_shape);
  at::index_select_out(packed, x, 0, idx);
  std::vector<int64_t> send_counts;
  for (const auto& t : send_indices) send_counts.push_back(t.numel() * inner);
  comm.all_to_all_v(pack, send_counts, out.narrow(0, n_local, n_halo).view({-1}),
                    scaled(recv_counts, inner));
  return out;
}

at::Tensor halo_backward(const at::Tensor& grad, int64_t n_local,
                         const std::vector<at::Tensor>& send_indices,
                         const std::vector<int64_t>& recv_counts, Communicator& comm) {
  const at::Tensor g = grad.contiguous();
  const int r = comm.rank();
  const int64_t inner = row_numel(g), n_halo = total(recv_counts);
  std::vector<int64_t> send_counts;
  for (const auto& t : send_indices) send_counts.push_back(t.numel());
  at::Tensor back = comm.scratch(Communicator::kStaging, total(send_counts) * inner, g.options());
  comm.all_to_all_v(g.narrow(0, n_local, n_halo).view({-1}), scaled(recv_counts, inner), back,
                    scaled(send_counts, inner));
  // Each row's gradient is the sum over the ranks that hold it, in rank order (this rank's own
  // at its place), in the accumulation type (float32 for 16-bit floats), rounded once: the sum
  // a reduce of the whole gradient would make (the all-gather path of shard_graph_to_local).
  // Rank by rank; within one rank the positions are distinct, so the order of the additions
  // into any row is fixed whatever index_add_ does inside.
  const at::ScalarType acc = accumulation_type(g.scalar_type());
  const at::Tensor own = g.narrow(0, 0, n_local);
  bool lower = false;
  for (int q = 0; q < r; ++q) lower = lower || send_counts[q] > 0;
  at::Tensor gx = lower ? at::zeros(own.sizes(), own.options().dtype(acc))
                        : own.to(acc, /*non_blocking=*/false, /*copy=*/true);
  std::vector<int64_t> shape = g.sizes().vec();
  int64_t pos = 0;
  for (int q = 0; q < static_cast<int>(send_indices.size()); ++q) {
    if (q == r && lower) gx.add_(own);
    if (send_counts[q] == 0) continue;
    shape[0] = send_counts[q];
    gx.index_add_(0, send_indices[q],
                  back.narrow(0, pos * inner, send_counts[q] * inner).view(shape).to(acc));
    pos += send_counts[q];
  }
  return gx.scalar_type() == g.scalar_type() ? gx : gx.to(g.scalar_type());
}

}  // namespace detail
}  // namespace graphshard
