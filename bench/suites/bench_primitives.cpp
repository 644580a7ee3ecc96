// Every communicating primitive (and halo_exchange) beside the bare collective it wraps and the
// naive formulation a user would otherwise write, on the same payloads, so ratios come out of
// one run. Without
// torchrun variables it runs simulated ranks for each W of --worlds; under
// `graphshard launch -n W` it runs Gloo (ranks in lockstep, a barrier before every iteration,
// rank 0 reports). Forward passes (inputs need no grad), float32 payloads [n, 256] or [256, n]
// with n chosen so shards are uneven.
//
//   build/graphshard_bench_primitives [--quick] [--sizes=1048576,...] [--worlds=2,4]
//   build/graphshard_bench_primitives --device=cuda   (simulated ranks sharing one GPU: engine
//                                                      tag sim-cuda, each call synchronised)
//   build/graphshard launch -n 4 -- build/graphshard_bench_primitives [--quick]
//
// Before timing, each payload checks the graphshard result against the naive (or bare) one on
// every rank; a mismatch skips its benchmarks with an error on every rank. The roles of a
// payload are timed call by call in turn (see Group below).
//
// A "floor" row: the bare collective together with what a primitive cannot avoid beyond it
// (see primitive_roles.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>

#include <ATen/ATen.h>

#include "bench_common.h"
#include "device.h"
#include "graphshard/launch.h"
#include "primitive_roles.h"
#include "sim_pool.h"

namespace graphshard::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kWarmUp = 2;        // untimed calls before each benchmark's timed calls
c10::Device g_device(c10::kCPU);  // of the simulated ranks' payloads (--device)

struct Row {
  std::string fn, role;
  int64_t bytes, dim;
};

std::vector<Row> rows(const std::vector<int64_t>& sizes) {
  std::vector<Row> out;
  for (int64_t bytes : sizes) {
    for (int64_t dim : {0, 1}) {
      for (const char* fn : {"gather_tensor", "reduce_shard_tensor", "all_to_all_transpose"}) {
        for (const char* role : {"graphshard", "bare", "naive"})
          out.push_back({fn, role, bytes, dim});
        out.push_back({fn, "floor", bytes, dim});
      }
    }
    for (const char* fn : {"reduce_tensor", "sync_tensor"}) {
      for (const char* role : {"graphshard", "bare", "floor"}) {
        out.push_back({fn, role, bytes, std::string(fn) == "reduce_tensor" ? -1 : 0});
      }
    }
    for (const char* role : {"graphshard", "bare", "naive", "floor"}) {
      out.push_back({"halo_exchange", role, bytes, -1});
    }
  }
  return out;
}

// Timed calls per role and repetition: 100 for small payloads, 16 at 16 MiB (fewer left the
// median of a 16 MiB collective on 2 cores 30% apart between repetitions).
int64_t calls_for(int64_t bytes) {
  return std::max<int64_t>(
      16, std::min<int64_t>(100, (int64_t{256} << 20) / std::max<int64_t>(bytes, 1)));
}

std::string name_of(const Row& row, const std::string& engine, int w) {
  return row.fn + "/" + row.role + "/engine:" + engine + "/W:" + std::to_string(w) +
         "/bytes:" + std::to_string(row.bytes) +
         (row.dim >= 0 ? "/dim:" + std::to_string(row.dim) : "");
}

// The roles of one payload in one repetition, measured together: the first of their benchmarks
// to run calls every role in turn (graphshard, bare, naive, floor, graphshard, ...) and keeps
// each role's median; every role's benchmark then reports its own. Why call by call: on 2
// cores the machine drifts within a second; identical all-gathers (1 MiB, W = 2) measured
// 0.31-0.47 ms as back-to-back repetitions of 100 calls each, more than the ratios under test.
// Why a median: one call preempted on 2 cores shifts a mean.
struct Group {
  std::vector<Row> rows;  // one payload, one row per role
  bool measured = false;
  std::string error;                      // set when the graphshard result is wrong
  std::map<std::string, double> seconds;  // role -> median seconds of its calls
};
using GroupPtr = std::shared_ptr<Group>;

// kWarmUp untimed rounds (scratch grown, transport buffers and pages mapped), then
// calls_for(bytes) timed rounds; `call(role)` makes one call and returns its seconds.
void measure(Group& g, const std::function<double(const std::string&)>& call) {
  for (int i = 0; i < kWarmUp; ++i) {
    for (const Row& row : g.rows) call(row.role);
  }
  // Each round starts one role later, so no role always follows the same other (what the
  // previous call freed or left in cache shifted a role's time by up to 15%).
  std::map<std::string, std::vector<double>> t;
  const size_t n = g.rows.size();
  for (int64_t i = 0; i < calls_for(g.rows[0].bytes); ++i) {
    for (size_t k = 0; k < n; ++k) {
      const std::string& role = g.rows[(static_cast<size_t>(i) + k) % n].role;
      t[role].push_back(call(role));
    }
  }
  for (auto& [role, v] : t) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    g.seconds[role] = v[v.size() / 2];
  }
}

// One benchmark per role of g, reporting what `measure_group` measured for it.
void register_group(const GroupPtr& g, const std::string& engine, int w,
                    const std::function<void(Group&)>& measure_group) {
  for (const Row& row : g->rows) {
    ++planned_benchmarks();
    benchmark::RegisterBenchmark(name_of(row, engine, w).c_str(),
                                 [row, g, engine, w, measure_group](benchmark::State& s) {
                                   tag(s, {row.fn, row.role, engine, w, row.bytes, row.dim, -1});
                                   if (!g->measured) {
                                     g->measured = true;
                                     measure_group(*g);
                                   }
                                   if (!g->error.empty()) return s.SkipWithError(g->error.c_str());
                                   for (auto _ : s) s.SetIterationTime(g->seconds.at(row.role));
                                 })
        ->UseManualTime()
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
}

void register_gloo(const GroupPtr& g, const CommPtr& gloo) {
  const int w = gloo->size();
  register_group(g, "gloo", w, [gloo, w](Group& g) {
    const Row& row = g.rows[0];
    const Payload p =
        make_payload(row.fn, row.bytes, std::max<int64_t>(row.dim, 0), w, gloo->rank());
    Bare b = make_bare(row.fn, p, w, gloo->rank());
    // Every rank learns whether any rank disagreed, so all skip together (no one waits).
    at::Tensor bad = at::full({1}, check(row.fn, gloo, p, b) ? 0.0 : 1.0);
    gloo->all_reduce_sum(bad);
    if (bad.item<double>() > 0) {
      g.error = "result differs from the naive one";
      return;
    }
    measure(g, [&](const std::string& role) {
      gloo->barrier();  // calls start together on every rank
      const auto t0 = Clock::now();
      benchmark::DoNotOptimize(run(row.fn, role, gloo, p, b));
      return std::chrono::duration<double>(Clock::now() - t0).count();
    });
  });
}

void register_sim(const GroupPtr& g, study::SimPool* pool) {
  const int w = pool->size();
  const std::string engine = g_device.is_cpu() ? "sim" : "sim-cuda";
  register_group(g, engine, w, [pool, w](Group& g) {
    const Row& row = g.rows[0];
    std::vector<Payload> ps;
    std::vector<Bare> bs;
    for (int r = 0; r < w; ++r) {
      ps.push_back(make_payload(row.fn, row.bytes, std::max<int64_t>(row.dim, 0), w, r));
      ps.back().x = ps.back().x.to(g_device);
      bs.push_back(make_bare(row.fn, ps.back(), w, r));
    }
    std::atomic<bool> ok{true};
    pool->run([&](const CommPtr& c) {
      if (!check(row.fn, c, ps[c->rank()], bs[c->rank()])) ok = false;
    });
    if (!ok) {
      g.error = "result differs from the naive one";
      return;
    }
    measure(g, [&](const std::string& role) {
      const std::function<void(const CommPtr&)> job = [&](const CommPtr& c) {
        benchmark::DoNotOptimize(run(row.fn, role, c, ps[c->rank()], bs[c->rank()]));
      };
      synchronize(g_device);
      const auto t0 = Clock::now();
      pool->run(job);
      synchronize(g_device);  // a CUDA call returns once queued: time it to completion
      return std::chrono::duration<double>(Clock::now() - t0).count();
    });
  });
}

// Registers every payload's roles `reps` times, one Group per repetition: repetition k of
// every role runs before repetition k + 1 of any, each registration under the same name; the
// summary takes the median over them.
void register_repetitions(const std::vector<Row>& all, int reps,
                          const std::function<void(const GroupPtr&)>& reg) {
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].fn == all[i].fn && all[j].bytes == all[i].bytes &&
           all[j].dim == all[i].dim) {
      ++j;
    }
    for (int k = 0; k < reps; ++k) {
      auto g = std::make_shared<Group>();
      g->rows.assign(all.begin() + static_cast<std::ptrdiff_t>(i),
                     all.begin() + static_cast<std::ptrdiff_t>(j));
      reg(g);
    }
    i = j;
  }
}

}  // namespace
}  // namespace graphshard::bench

int main(int argc, char** argv) {
  using namespace graphshard;
  using namespace graphshard::bench;
  const bool quick = take_quick_flag(argc, argv);
  const int reps = take_repetitions(argc, argv);
  try {
    g_device = parse_device(take_value_flag(argc, argv, "--device", "cpu"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graphshard_bench_primitives: %s\n", e.what());
    return 2;
  }
  std::vector<int64_t> sizes{1 << 20, 16 << 20};
  if (!g_device.is_cpu()) sizes.push_back(256 << 20);
  const SuiteArgs args = init_suite(argc, argv,
                                    {quick ? std::vector<int64_t>{64 << 10} : sizes,
                                     quick ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 4}});
  std::vector<std::unique_ptr<study::SimPool>> pools;
  CommPtr gloo;
  if (launched_by_env()) {
    gloo = communicator_from_env("gloo", std::chrono::minutes(5));
    register_repetitions(rows(args.sizes), reps,
                         [&](const GroupPtr& g) { register_gloo(g, gloo); });
  } else {
    // The halo payload's send lists live on the CPU: its rows run on CPU ranks only.
    std::vector<Row> sim_rows = rows(args.sizes);
    if (!g_device.is_cpu()) {
      sim_rows.erase(std::remove_if(sim_rows.begin(), sim_rows.end(),
                                    [](const Row& row) { return row.fn == "halo_exchange"; }),
                     sim_rows.end());
    }
    for (int64_t w : args.worlds) {
      pools.push_back(std::make_unique<study::SimPool>(static_cast<int>(w)));
      study::SimPool* pool = pools.back().get();
      register_repetitions(sim_rows, reps,
                           [&](const GroupPtr& g) { register_sim(g, pool); });
    }
  }
  run_and_exit(gloo, args, "primitives");
}
