#include "faults_cases.h"

#include <cctype>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>

#include "generators.h"
#include "graphshard/graph.h"
#include "graphshard/primitives.h"

namespace graphshard::props {
namespace {

using Step = std::function<void()>;

// Uneven, never empty: rank q holds 2 + q rows, so every rank sends something to every peer.
std::vector<int64_t> uneven(int w) {
  std::vector<int64_t> s(w);
  for (int q = 0; q < w; ++q) s[q] = 2 + q;
  return s;
}

at::Tensor data(const std::vector<int64_t>& shape, uint64_t seed) {
  return make_data(shape, at::kFloat, seed);
}

at::Tensor leaf(const std::vector<int64_t>& shape, uint64_t seed) {
  return data(shape, seed).requires_grad_(true);
}

// The backward of y with an upstream gradient drawn per rank.
Step backward_of(const at::Tensor& y, int rank) {
  const at::Tensor g = data(y.sizes().vec(), 1000 + rank);
  return [y, g] { y.backward(g); };
}

// A dst-sorted bipartite graph of (4W + 1) sources and (3W + 2) destinations with three edges
// per destination, spread over all sources: every rank's destination range has edges, and the
// sources are sharded (uneven, balanced), so both directions communicate.
struct GraphInputs {
  GraphPartition partition;
  at::Tensor x_src, x_dst, edge_attr, edge_index;
  BipartiteGraphShardInfo shard_info;
};

GraphInputs graph_inputs(const CommPtr& comm, bool grad) {
  const int w = comm->size(), r = comm->rank();
  const int64_t n_src = 4 * w + 1, n_dst = 3 * w + 2;
  std::vector<int64_t> src, dst;
  for (int64_t d = 0; d < n_dst; ++d) {
    for (int64_t k = 0; k < 3; ++k) {
      src.push_back((5 * d + 3 * k) % n_src);
      dst.push_back(d);
    }
  }
  GraphInputs g;
  g.edge_index = at::stack({at::tensor(src, at::kLong), at::tensor(dst, at::kLong)});
  g.partition = build_graph_partition(g.edge_index, w, {n_src, n_dst});
  const auto src_sizes = balanced_sizes(n_src, w);
  g.shard_info = BipartiteGraphShardInfo(src_sizes);
  g.x_src = data({src_sizes[r], 4}, 10 + r);
  g.x_dst = data({n_dst, 2}, 20);
  g.edge_attr = data({g.edge_index.size(1), 3}, 30);
  if (grad) {
    for (at::Tensor* t : {&g.x_src, &g.x_dst, &g.edge_attr}) t->requires_grad_(true);
  }
  return g;
}

LocalGraph to_local(const GraphInputs& g, const CommPtr& comm) {
  return shard_graph_to_local(g.partition, {g.x_src, g.x_dst}, g.edge_attr, g.edge_index,
                              g.shard_info, comm);
}

std::vector<FaultStep> make_steps() {
  std::vector<FaultStep> s;
  s.push_back({"gather_tensor", [](const CommPtr& c) -> Step {
                 const auto sizes = uneven(c->size());
                 const at::Tensor x = data({3, sizes[c->rank()]}, c->rank());
                 return [=] { gather_tensor(x, -1, sizes, c); };
               }});
  s.push_back({"reduce_tensor", [](const CommPtr& c) -> Step {
                 const at::Tensor x = data({5, 3}, c->rank());
                 return [=] { reduce_tensor(x, c); };
               }});
  s.push_back({"sync_tensor_forward", [](const CommPtr& c) -> Step {
                 const auto sizes = uneven(c->size());
                 const at::Tensor x = data({sizes[c->rank()], 3}, c->rank());
                 return [=] { sync_tensor(x, 0, sizes, c); };
               }});
  s.push_back({"sync_tensor_backward", [](const CommPtr& c) -> Step {
                 const auto sizes = uneven(c->size());
                 const at::Tensor x = leaf({sizes[c->rank()], 3}, c->rank());
                 return backward_of(sync_tensor(x, 0, sizes, c), c->rank());
               }});
  s.push_back({"shard_tensor_backward", [](const CommPtr& c) -> Step {
                 const auto sizes = uneven(c->size());
                 const at::Tensor x = leaf({total(sizes), 3}, 0);
                 return backward_of(shard_tensor(x, 0, sizes, c), c->rank());
               }});
  s.push_back({"reduce_shard_tensor_forward", [](const CommPtr& c) -> Step {
                 const auto sizes = uneven(c->size());
                 const at::Tensor x = data({2, total(sizes)}, c->rank());
                 return [=] { reduce_shard_tensor(x, 1, sizes, c); };
               }});
  s.push_back({"reduce_shard_tensor_backward", [](const CommPtr& c) -> Step {
                 const auto sizes = uneven(c->size());
                 const at::Tensor x = leaf({total(sizes), 3}, c->rank());
                 return backward_of(reduce_shard_tensor(x, 0, sizes, c), c->rank());
               }});
  // S(1) -> S(0) with different split and concat sizes.
  const auto a2a_sizes = [](int w) {
    std::vector<int64_t> split = uneven(w), concat(w);
    for (int q = 0; q < w; ++q) concat[q] = 1 + (w - q);
    return std::make_pair(split, concat);
  };
  s.push_back({"all_to_all_transpose_forward", [=](const CommPtr& c) -> Step {
                 const auto [ss, cs] = a2a_sizes(c->size());
                 const at::Tensor x = data({total(ss), cs[c->rank()]}, c->rank());
                 return [=] { all_to_all_transpose(x, 0, ss, 1, cs, c); };
               }});
  s.push_back({"all_to_all_transpose_backward", [=](const CommPtr& c) -> Step {
                 const auto [ss, cs] = a2a_sizes(c->size());
                 const at::Tensor x = leaf({total(ss), cs[c->rank()]}, c->rank());
                 return backward_of(all_to_all_transpose(x, 0, ss, 1, cs, c), c->rank());
               }});
  // ensure_sharded's forward is a local split (sizes unset: balanced); its backward gathers.
  s.push_back({"ensure_sharded_backward", [](const CommPtr& c) -> Step {
                 const at::Tensor x = leaf({3 * c->size() + 1, 3}, 0);
                 return backward_of(ensure_sharded(x, 0, std::nullopt, c).first, c->rank());
               }});
  s.push_back({"shard_graph_to_local_forward", [](const CommPtr& c) -> Step {
                 const GraphInputs g = graph_inputs(c, false);
                 return [=] { to_local(g, c); };
               }});
  s.push_back({"shard_graph_to_local_backward", [](const CommPtr& c) -> Step {
                 const LocalGraph out = to_local(graph_inputs(c, true), c);
                 const at::Tensor loss =
                     out.x_src.square().sum() + out.x_dst.sum() + out.edge_attr.sum();
                 return [loss] { loss.backward(); };
               }});
  return s;
}

}  // namespace

const std::vector<FaultStep>& fault_steps() {
  static const std::vector<FaultStep> steps = make_steps();
  return steps;
}

std::vector<std::string> fault_step_names() {
  std::vector<std::string> names;
  for (const auto& s : fault_steps()) names.push_back(s.name);
  return names;
}

const FaultStep& fault_step(const std::string& name) {
  for (const auto& s : fault_steps())
    if (s.name == name) return s;
  throw std::invalid_argument("fault_step: no step named '" + name + "'");
}

Raised run_timed(const std::string& name, int rank, const std::function<void()>& step) {
  Raised out;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    step();
  } catch (const CommError& e) {
    out.comm_error = true;
    out.timeout = dynamic_cast<const CommTimeout*>(&e) != nullptr;
    out.op = e.op();
    out.rank = e.rank();
    out.peers = e.peers();
    out.error = e.what();
  } catch (const std::exception& e) {
    out.error = e.what();
  } catch (...) {
    out.error = "non-standard exception";
  }
  out.elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  const std::string what = out.error.substr(0, out.error.find('\n'));
  std::printf("[rank %d] %s: %s after %lld ms%s%s\n", rank, name.c_str(),
              out.error.empty() ? "returned" : (out.timeout ? "timed out" : "raised"),
              static_cast<long long>(out.elapsed.count()), what.empty() ? "" : ": ",
              what.substr(0, 400).c_str());
  std::fflush(stdout);
  return out;
}

bool names_rank(const std::string& message, int rank) {
  const std::string id = std::to_string(rank);
  // "rank 2" as a peer (not "rank 2 of 4", the reporter), or "ranks [0, 2]".
  for (size_t at = message.find("rank " + id); at != std::string::npos;
       at = message.find("rank " + id, at + 1)) {
    const size_t end = at + 5 + id.size();
    if (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end]))) continue;
    if (message.compare(end, 3, " of") == 0) continue;
    return true;
  }
  for (size_t at = message.find("ranks ["); at != std::string::npos;
       at = message.find("ranks [", at + 1)) {
    std::istringstream list(message.substr(at + 7, message.find(']', at) - at - 7));
    for (std::string item; std::getline(list, item, ',');) {
      if (item.find_first_not_of(" 0123456789") == std::string::npos &&
          item.find_first_of("0123456789") != std::string::npos && std::stoi(item) == rank) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace graphshard::props
