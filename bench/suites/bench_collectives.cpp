// Bare collectives per engine, with the NCCL-tests metrics. Without torchrun variables it runs
// the simulated engine for each W of --worlds (default 2,4); under `graphshard launch -n W` it
// runs Gloo, or with --engine=nccl the NCCL engine on CUDA buffers (one GPU per rank: device
// LOCAL_RANK; each timed call ends with a device synchronisation). Every rank runs the same
// fixed iteration counts in lockstep; rank 0 reports.
//
//   build/graphshard_bench_collectives [--sizes=4096,1048576,...] [--worlds=2,4] [gbench flags]
//   build/graphshard launch -n 4 -- build/graphshard_bench_collectives [--engine=gloo|nccl]
//
// algbw_GBps = bytes / time; busbw_GBps = algbw * (W-1)/W for all-gather, reduce-scatter and
// all-to-all, * 2(W-1)/W for all-reduce. bytes: all-gather the whole output, all-reduce the
// buffer, reduce-scatter the whole input, all-to-all one rank's send buffer.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include <ATen/ATen.h>

#include "bench_common.h"
#include "device.h"
#include "graphshard/launch.h"
#include "graphshard/shapes.h"
#include "sim_pool.h"

namespace graphshard::study {
namespace {

using Clock = std::chrono::steady_clock;

struct Buffers {
  at::Tensor send, recv;
  std::vector<int64_t> counts;
};

// float32 buffers for `op` moving `bytes` (as defined above) on rank r of w.
Buffers make_buffers(const std::string& op, int64_t bytes, int w, int r,
                     const c10::Device& device = c10::kCPU) {
  const int64_t n = bytes / 4;
  const auto opts = at::TensorOptions().device(device);
  Buffers b;
  b.counts = balanced_sizes(n, w);
  if (op == "all_gather_v") {
    b.send = at::ones({b.counts[r]}, opts);
    b.recv = at::empty({n}, opts);
  } else if (op == "all_reduce_sum") {
    b.send = at::ones({n}, opts);
  } else if (op == "reduce_scatter_v") {
    b.send = at::ones({n}, opts);
    b.recv = at::empty({b.counts[r]}, opts);
  } else {
    b.send = at::ones({n}, opts);
    b.recv = at::empty({n}, opts);
  }
  return b;
}

void run_op(const std::string& op, Communicator& comm, Buffers& b) {
  if (op == "all_gather_v") {
    comm.all_gather_v(b.send, b.recv, b.counts);
  } else if (op == "all_reduce_sum") {
    comm.all_reduce_sum(b.send);
  } else if (op == "reduce_scatter_v") {
    comm.reduce_scatter_v(b.send, b.recv, b.counts);
  } else {
    comm.all_to_all_v(b.send, b.counts, b.recv, b.counts);
  }
}

double bus_factor(const std::string& op, int w) {
  const double f = static_cast<double>(w - 1) / w;
  return op == "all_reduce_sum" ? 2 * f : f;
}

void set_counters(benchmark::State& state, const std::string& op, int w, int64_t bytes,
                  double seconds) {
  const double algbw =
      static_cast<double>(bytes) * static_cast<double>(state.iterations()) / seconds / 1e9;
  state.counters["algbw_GBps"] = algbw;
  state.counters["busbw_GBps"] = algbw * bus_factor(op, w);
  state.counters["bytes"] = static_cast<double>(bytes);
}

int64_t iterations_for(int64_t bytes) {
  return std::max<int64_t>(
      5, std::min<int64_t>(200, (int64_t{256} << 20) / std::max<int64_t>(bytes, 1)));
}

const char* kOps[] = {"all_gather_v", "all_reduce_sum", "reduce_scatter_v", "all_to_all_v"};

}  // namespace
}  // namespace graphshard::study

int main(int argc, char** argv) {
  using namespace graphshard;
  using namespace graphshard::study;
  const std::string engine = bench::take_value_flag(argc, argv, "--engine", "gloo");
  const bench::SuiteArgs args =
      bench::init_suite(argc, argv, {{4096, 1 << 20, 16 << 20, 64 << 20}, {2, 4}});
  const auto& sizes = args.sizes;
  std::vector<std::unique_ptr<SimPool>> pools;
  CommPtr gloo;  // the launched engine's communicator: Gloo, or NCCL with --engine=nccl
  if (launched_by_env()) {
    try {
      gloo = communicator_from_env(engine, std::chrono::minutes(5));
    } catch (const std::exception& e) {
      const std::string what = e.what();
      std::fprintf(stderr, "graphshard_bench_collectives: %s\n",
                   what.substr(0, what.find("\nException raised from")).c_str());
      return 2;
    }
    const c10::Device device = gloo->home_device();
    for (const char* op : kOps) {
      for (int64_t bytes : sizes) {
        const std::string name = std::string(op) + "/engine:" + engine +
                                 "/W:" + std::to_string(gloo->size()) +
                                 "/bytes:" + std::to_string(bytes);
        ++bench::planned_benchmarks();
        benchmark::RegisterBenchmark(
            name.c_str(),
            [op = std::string(op), bytes, gloo, device](benchmark::State& state) {
              Buffers b = make_buffers(op, bytes, gloo->size(), gloo->rank(), device);
              double total = 0;
              for (auto _ : state) {
                gloo->barrier();  // iterations start together on every rank
                const auto t0 = Clock::now();
                run_op(op, *gloo, b);
                bench::synchronize(device);  // a CUDA collective returns once queued
                const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
                state.SetIterationTime(dt);
                total += dt;
              }
              set_counters(state, op, gloo->size(), bytes, total);
            })
            ->UseManualTime()
            ->Iterations(iterations_for(bytes))
            ->Unit(benchmark::kMillisecond);
      }
    }
  } else {
    for (int64_t w : args.worlds) {
      pools.push_back(std::make_unique<SimPool>(static_cast<int>(w)));
      SimPool* pool = pools.back().get();
      for (const char* op : kOps) {
        for (int64_t bytes : sizes) {
          const std::string name = std::string(op) + "/engine:sim/W:" + std::to_string(w) +
                                   "/bytes:" + std::to_string(bytes);
          ++bench::planned_benchmarks();
          benchmark::RegisterBenchmark(
              name.c_str(),
              [op = std::string(op), bytes, pool](benchmark::State& state) {
                const int w = pool->size();
                std::vector<Buffers> bufs;
                for (int r = 0; r < w; ++r) bufs.push_back(make_buffers(op, bytes, w, r));
                const std::function<void(const CommPtr&)> job = [&](const CommPtr& c) {
                  run_op(op, *c, bufs[c->rank()]);
                };
                double total = 0;
                for (auto _ : state) {
                  const auto t0 = Clock::now();
                  pool->run(job);
                  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
                  state.SetIterationTime(dt);
                  total += dt;
                }
                set_counters(state, op, w, bytes, total);
              })
              ->UseManualTime()
              ->Iterations(iterations_for(bytes))
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
  bench::run_and_exit(gloo, args, "collectives");
}
