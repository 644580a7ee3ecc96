// Bad-input cases of the halo exchange (halo.h: halo_exchange, verify_halo_info). Each rank's
// HaloInfo is computed from the whole graph without communication, so a case reaches the checks
// with no collective before the call (the catalogue asserts that the call makes none).
#include <algorithm>

#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "badinput_graph_case_list.h"
#include "graphshard/halo.h"
#include "graphshard/shapes.h"

namespace graphshard::props::graph_badinput {
namespace {

// The ascending distinct sources (int64) of rank q's edges.
at::Tensor sources_of(const GraphArgs& a, int q) {
  const auto [b, e] = partition_range(a.partition.edge_splits, q);
  const at::Tensor src = a.edge_index[0].narrow(0, b, e - b).to(at::kLong);
  return std::get<0>(at::_unique(src, /*sorted=*/true));
}

at::Tensor in_range(const at::Tensor& ids, std::pair<int64_t, int64_t> range) {
  return ids.masked_select(ids.ge(range.first).logical_and(ids.lt(range.second)));
}

// Rank a.rank's HaloInfo of the plain graph that a.partition cuts, as build_halo_info returns it
// with debug = true (halo_props checks build_halo_info against the reference; here only its
// shape matters). edge_index_local is left empty: neither function reads it on the CPU.
HaloInfo local_halo_info(const GraphArgs& a) {
  const auto own = partition_range(a.partition.dst_splits, a.rank);
  const at::Tensor needed = sources_of(a, a.rank);
  HaloInfo h;
  h.num_local_nodes = own.second - own.first;
  h.recv_global_ids.emplace();
  for (int q = 0; q < a.world; ++q) {
    const bool peer = q != a.rank;
    const at::Tensor from_q = peer ? in_range(needed, partition_range(a.partition.dst_splits, q))
                                   : at::empty({0}, at::kLong);
    h.recv_counts.push_back(from_q.numel());
    h.recv_global_ids->push_back(from_q);
    h.num_halo_nodes += from_q.numel();
    h.send_indices.push_back(peer ? in_range(sources_of(a, q), own) - own.first
                                  : at::empty({0}, at::kLong));
  }
  h.edge_index_local = at::empty({2, 0}, at::kLong);
  return h;
}

void with_halo(GraphArgs& a) {
  as_plain_graph(a);
  a.halo = local_halo_info(a);
  a.x_dst = rows(a.halo.num_local_nodes);
}

// A list of one tensor per rank at the wrong length l (an empty entry appended, the last one
// dropped, or none).
std::vector<at::Tensor> tensors_with_length(std::vector<at::Tensor> s, WrongLength l) {
  switch (l) {
    case WrongLength::kOneMore:
      s.push_back(at::empty({0}, at::kLong));
      break;
    case WrongLength::kOneLess:
      if (!s.empty()) s.pop_back();
      break;
    case WrongLength::kEmpty:
      s.clear();
      break;
  }
  return s;
}

}  // namespace

std::vector<BadInputCase> halo_exchange_cases(const GraphFixture& f) {
  CaseList list("halo_exchange", true, f, with_halo,
                [](const GraphArgs& a, const CommPtr& g) { halo_exchange(a.x_dst, a.halo, g); });
  // A group of one rank returns the input itself, unchecked (SPEC §0).
  constexpr unsigned kBypass = kAcceptedAtW1;
  list.add(
          "input", "undefined", [](GraphArgs& a) { a.x_dst = at::Tensor(); }, kBypass)
      .add(
          "input", "0-dim", [](GraphArgs& a) { a.x_dst = at::zeros({}, at::kFloat); }, kBypass)
      .add(
          "input", "one row more than halo_info.num_local_nodes",
          [](GraphArgs& a) { a.x_dst = rows(a.halo.num_local_nodes + 1); }, kBypass)
      .add_lengths(
          "halo_info.send_indices",
          [](GraphArgs& a, WrongLength l) {
            a.halo.send_indices = tensors_with_length(a.halo.send_indices, l);
          },
          kBypass)
      .add_lengths(
          "halo_info.recv_counts length",
          [](GraphArgs& a, WrongLength l) {
            a.halo.recv_counts = with_length(a.halo.recv_counts, l);
          },
          kBypass)
      .add(
          "halo_info.recv_counts", "sum != num_halo_nodes",
          [](GraphArgs& a) { a.halo.num_halo_nodes += 1; }, kBypass)
      .add(
          "halo_info.recv_counts", "a count at this rank's own entry",
          [](GraphArgs& a) {
            a.halo.recv_counts[a.rank] += 1;
            a.halo.num_halo_nodes += 1;
          },
          kBypass)
      .add(
          "halo_info.send_indices[0]", "int32 ids",
          [](GraphArgs& a) { a.halo.send_indices[0] = a.halo.send_indices[0].to(at::kInt); },
          kBypass)
      .add(
          "halo_info.send_indices[0]", "undefined",
          [](GraphArgs& a) { a.halo.send_indices[0] = at::Tensor(); }, kBypass)
      .add(
          "halo_info.send_indices", "ids at this rank's own entry",
          [](GraphArgs& a) { a.halo.send_indices[a.rank] = at::zeros({1}, at::kLong); }, kBypass)
      .add(
          "halo_info.send_indices", "a local id = num_local_nodes (to the next rank)",
          [](GraphArgs& a) {
            at::Tensor& s = a.halo.send_indices[(a.rank + 1) % a.world];
            s = at::cat({s, at::full({1}, a.halo.num_local_nodes, at::kLong)});
          },
          kBypass | kDebugChecks);
  return list.done();
}

std::vector<BadInputCase> verify_halo_info_cases(const GraphFixture& f) {
  CaseList list("verify_halo_info", true, f, with_halo, [](const GraphArgs& a, const CommPtr& g) {
    verify_halo_info(a.halo, a.partition, g);
  });
  list.add("halo_info", "no recv_global_ids (built without debug)",
           [](GraphArgs& a) { a.halo.recv_global_ids.reset(); })
      .add_lengths("partition.dst_splits length",
                   [](GraphArgs& a, WrongLength l) {
                     a.partition.dst_splits = with_length(a.partition.dst_splits, l);
                   })
      .add_lengths("halo_info.recv_global_ids",
                   [](GraphArgs& a, WrongLength l) {
                     *a.halo.recv_global_ids = tensors_with_length(*a.halo.recv_global_ids, l);
                   })
      .add_lengths("halo_info.send_indices",
                   [](GraphArgs& a, WrongLength l) {
                     a.halo.send_indices = tensors_with_length(a.halo.send_indices, l);
                   })
      .add("halo_info.recv_global_ids[0]", "float ids",
           [](GraphArgs& a) {
             at::Tensor& t = (*a.halo.recv_global_ids)[0];
             t = t.to(at::kFloat);
           })
      .add("halo_info.send_indices[0]", "undefined",
           [](GraphArgs& a) { a.halo.send_indices[0] = at::Tensor(); });
  return list.done();
}

}  // namespace graphshard::props::graph_badinput
