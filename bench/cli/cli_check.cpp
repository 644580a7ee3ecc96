// `graphshard check`: every collective on simulated ranks, verified against its whole-world
// definition, with the traffic the ledger recorded and the median time. The interim main job
// until the scaling-study runner lands.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include <ATen/ATen.h>

#include "cli.h"
#include "graphshard/shapes.h"
#include "sim.h"

namespace graphshard::cli {
namespace {

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

struct Row {
  std::string op;
  int world;
  int64_t bytes_per_rank;
  double median_ms;
  bool ok;
};

// Runs `op` on W ranks `reps` times; returns the median wall time and whether every rank's
// result matched the whole-world answer.
Row run_op(const std::string& op, int w, int64_t elems, int reps) {
  auto world = sim::SimWorld::create(w, std::chrono::seconds(120));
  std::vector<int64_t> counts = balanced_sizes(elems, w);
  counts[0] += counts.back() / 2;  // uneven on purpose
  counts.back() -= counts.back() / 2;
  const int64_t n = total(counts);
  std::vector<at::Tensor> inputs;
  for (int q = 0; q < w; ++q) inputs.push_back(at::full({n}, static_cast<float>(q + 1)));
  std::vector<double> times;
  std::atomic<bool> ok{true};
  for (int rep = 0; rep < reps; ++rep) {
    world->clear_ledger();
    const auto t0 = std::chrono::steady_clock::now();
    auto outcomes = sim::run_ranks_collect(world, [&](const CommPtr& comm) {
      const int r = comm->rank();
      const auto [lo, hi] = partition_range(counts, r);
      const float sum = static_cast<float>(w * (w + 1) / 2);
      if (op == "all_gather_v") {
        at::Tensor recv = at::empty({n});
        comm->all_gather_v(inputs[r].narrow(0, lo, hi - lo), recv, counts);
        for (int q = 0; q < w; ++q) {
          const auto [a, b] = partition_range(counts, q);
          if (b > a && !recv.narrow(0, a, b - a).eq(q + 1).all().item<bool>()) ok = false;
        }
      } else if (op == "all_reduce_sum") {
        at::Tensor buf = inputs[r].clone();
        comm->all_reduce_sum(buf);
        if (!buf.eq(sum).all().item<bool>()) ok = false;
      } else if (op == "reduce_scatter_v") {
        at::Tensor recv = at::empty({hi - lo});
        comm->reduce_scatter_v(inputs[r], recv, counts);
        if (!recv.eq(sum).all().item<bool>()) ok = false;
      } else {
        std::vector<int64_t> send = balanced_sizes(counts[r], w), recv_counts(w);
        for (int q = 0; q < w; ++q) recv_counts[q] = balanced_sizes(counts[q], w)[r];
        at::Tensor recv = at::empty({total(recv_counts)});
        comm->all_to_all_v(inputs[r].narrow(0, lo, hi - lo), send, recv, recv_counts);
        int64_t off = 0;
        for (int q = 0; q < w; ++q) {
          if (recv_counts[q] > 0 &&
              !recv.narrow(0, off, recv_counts[q]).eq(q + 1).all().item<bool>())
            ok = false;
          off += recv_counts[q];
        }
      }
    });
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    for (const auto& o : outcomes) {
      if (!o.ok) throw std::runtime_error(op + " failed: " + o.error);
    }
  }
  std::sort(times.begin(), times.end());
  const auto ledger = world->ledger();
  int64_t max_sent = 0;
  for (int q = 0; q < w; ++q) max_sent = std::max(max_sent, ledger.bytes_sent(q, op));
  return Row{op, w, max_sent, times[times.size() / 2], ok.load()};
}

}  // namespace

int check_main(const std::vector<std::string>& args) {
  std::vector<int> worlds{1, 2, 4, 8};
  double mib = 4;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--world-sizes" && i + 1 < args.size()) {
      worlds = parse_ints(args[++i]);
    } else if (args[i] == "--mib" && i + 1 < args.size()) {
      mib = std::stod(args[++i]);
    } else {
      throw std::invalid_argument("unknown option '" + args[i] + "'");
    }
  }
  const auto elems = static_cast<int64_t>(mib * (1 << 20) / sizeof(float));
  std::printf(
      "graphshard check: every collective on simulated ranks, %.1f MiB of float32, "
      "uneven counts\n\n",
      mib);
  std::printf("%-18s %6s %18s %12s %10s\n", "collective", "W", "max bytes sent/rank", "median ms",
              "verified");
  bool all_ok = true;
  for (int w : worlds) {
    for (const char* op : {"all_gather_v", "all_reduce_sum", "reduce_scatter_v", "all_to_all_v"}) {
      const Row row = run_op(op, w, elems, 5);
      all_ok = all_ok && row.ok;
      std::printf("%-18s %6d %18lld %12.3f %10s\n", row.op.c_str(), row.world,
                  static_cast<long long>(row.bytes_per_rank), row.median_ms, row.ok ? "yes" : "NO");
    }
  }
  std::printf("\n%s\n", all_ok ? "all collectives matched their whole-world definition"
                               : "MISMATCH: see the rows marked NO");
  return all_ok ? 0 : 1;
}

}  // namespace graphshard::cli
