// Every communicating primitive beside the bare collective it wraps and the naive formulation a
// user would otherwise write, on the same payloads, so ratios come out of one run. Without
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
// A "floor" row times the bare collective together with what a primitive cannot avoid beyond
// it, in the order a primitive does them: its result is a new tensor (the collective writes a
// fresh output, whose pages the kernel faults in and zeroes), and when a piece is not a
// contiguous range of its tensor (a cut or concatenation along dim 1), one copy of the whole
// payload between the tensor and the wire layout, because transports move contiguous bytes
// only. Timed as one call, not as a sum of separate rows: on 2 cores a pack before a collective
// measured 1.5 ms more in sequence than alone (reduce-scatter, 16 MiB, W = 2), so a sum
// understated the floor. The summary prints floor / bare beside each ratio target; a primitive
// that moves its own piece without the wire can land below it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <numeric>

#include <ATen/ATen.h>

#include "bench_common.h"
#include "device.h"
#include "graphshard/launch.h"
#include "graphshard/primitives.h"
#include "sim_pool.h"

namespace graphshard::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kWidth = 256;   // the fixed (unsharded) extent of every payload
constexpr int kWarmUp = 2;        // untimed calls before each benchmark's timed calls
c10::Device g_device(c10::kCPU);  // of the simulated ranks' payloads (--device)

// One benchmark's payload on one rank. `bytes`: the whole gathered output (gather, sync), the
// whole input (reduce, reduce_shard), one rank's input (all_to_all).
struct Payload {
  at::Tensor x;
  std::vector<int64_t> sizes;        // shard sizes along dim (all_to_all: the split sizes)
  std::vector<int64_t> other_sizes;  // all_to_all: the concat sizes
  int64_t dim = 0, row = 1;          // row: elements per index along dim
};

Payload make_payload(const std::string& fn, int64_t bytes, int64_t dim, int w, int r) {
  Payload p;
  p.dim = dim;
  const int64_t n = std::max<int64_t>(bytes / 4 / kWidth - 1, w);  // uneven for W = 2, 4
  p.sizes = balanced_sizes(n, w);
  p.row = kWidth;
  auto shape = [&](int64_t along) {
    return dim == 0 ? std::vector<int64_t>{along, kWidth} : std::vector<int64_t>{kWidth, along};
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + r);
  if (fn == "gather_tensor" || fn == "sync_tensor") {
    p.x = at::randn(shape(p.sizes[r]), gen);
  } else if (fn == "all_to_all_transpose") {
    p.other_sizes.assign(w, kWidth);  // concat dim: kWidth per rank, so the input is `bytes`
    p.x = dim == 0 ? at::randn({n, kWidth}, gen) : at::randn({kWidth, n}, gen);
  } else {
    p.x = at::randn(shape(n), gen);
  }
  return p;
}

std::vector<int64_t> times(std::vector<int64_t> v, int64_t k) {
  for (auto& x : v) x *= k;
  return v;
}

at::Tensor naive_gather(Communicator& c, const Payload& p) {
  // Pad every piece to the largest, all-gather evenly, cut the padding, concatenate.
  const int64_t mx = *std::max_element(p.sizes.begin(), p.sizes.end());
  auto shape = p.x.sizes().vec();
  shape[p.dim] = mx;
  at::Tensor padded = at::zeros(shape, p.x.options());
  padded.narrow(p.dim, 0, p.x.size(p.dim)).copy_(p.x);
  const int w = c.size();
  at::Tensor all = at::empty({w * padded.numel()}, p.x.options());
  c.all_gather_v(padded.view({-1}), all, std::vector<int64_t>(w, padded.numel()));
  shape.insert(shape.begin(), w);
  const at::Tensor pieces = all.view(shape);
  std::vector<at::Tensor> list;
  for (int q = 0; q < w; ++q) list.push_back(pieces[q].narrow(p.dim, 0, p.sizes[q]));
  return at::cat(list, p.dim);
}

at::Tensor naive_a2a(Communicator& c, const Payload& p) {
  // Split to a list, flatten each piece, exchange, view each received piece, concatenate.
  const int64_t concat = 1 - p.dim;
  std::vector<at::Tensor> flat;
  for (const auto& piece : p.x.split_with_sizes(p.sizes, p.dim)) {
    flat.push_back(piece.contiguous().view({-1}));
  }
  const int r = c.rank();
  std::vector<int64_t> send_counts, recv_counts;
  for (const auto& f : flat) send_counts.push_back(f.numel());
  for (int64_t s : p.other_sizes) recv_counts.push_back(s * p.sizes[r]);
  at::Tensor recv = at::empty({std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0})},
                              p.x.options());
  c.all_to_all_v(at::cat(flat), send_counts, recv, recv_counts);
  std::vector<at::Tensor> pieces;
  int64_t off = 0;
  for (size_t q = 0; q < p.other_sizes.size(); ++q) {
    auto shape = p.x.sizes().vec();
    shape[p.dim] = p.sizes[r];
    shape[concat] = p.other_sizes[q];
    pieces.push_back(recv.narrow(0, off, recv_counts[q]).view(shape));
    off += recv_counts[q];
  }
  return at::cat(pieces, concat);
}

// Scratch buffers of the bare collectives, allocated once per benchmark (as NCCL-tests does).
struct Bare {
  at::Tensor send, recv, pack;  // pack: the floor row's send buffer for pieces cut along dim 1
  std::vector<int64_t> send_counts, recv_counts;
};

Bare make_bare(const std::string& fn, const Payload& p, int w, int r) {
  Bare b;
  b.send = p.x.contiguous().view({-1}).clone();
  b.recv = at::zeros({0}, p.x.options());
  const int64_t total = std::accumulate(p.sizes.begin(), p.sizes.end(), int64_t{0}) * p.row;
  if (fn == "gather_tensor" || fn == "sync_tensor") {
    b.send_counts = times(p.sizes, p.row);
    b.recv = at::empty({total}, p.x.options());
  } else if (fn == "reduce_shard_tensor") {
    b.send_counts = times(p.sizes, p.row);
    b.recv = at::empty({p.sizes[r] * p.row}, p.x.options());
  } else if (fn == "all_to_all_transpose") {
    b.send_counts = times(p.sizes, kWidth);
    b.recv_counts = times(p.other_sizes, p.sizes[r]);
    b.recv = at::empty({p.sizes[r] * kWidth * w}, p.x.options());
  }
  if (p.dim == 1 && (fn == "reduce_shard_tensor" || fn == "all_to_all_transpose")) {
    b.pack = at::zeros_like(b.send);  // only the floor rows that pack use it
  }
  b.recv.zero_();  // warm: every role finds its scratch pages already mapped
  return b;
}

// The floor call (see the top of this file) on one rank.
at::Tensor floor_call(const std::string& fn, const Payload& p, Bare& b, Communicator& c) {
  const int w = c.size(), r = c.rank();
  const auto off = offsets_of(p.sizes);
  if (b.pack.defined()) {  // [kWidth, n_q] pieces packed one after another, then sent from there
    for (int q = 0; q < w; ++q) {
      b.pack.narrow(0, off[q] * kWidth, p.sizes[q] * kWidth)
          .view({kWidth, p.sizes[q]})
          .copy_(p.x.narrow(1, off[q], p.sizes[q]));
    }
    at::Tensor out = at::empty_like(b.recv);
    if (fn == "reduce_shard_tensor") {
      c.reduce_scatter_v(b.pack, out, b.send_counts);
    } else {
      c.all_to_all_v(b.pack, b.send_counts, out, b.recv_counts);
    }
    return out;
  }
  if (fn == "reduce_tensor") {  // in place, then the fresh output's pages first touched
    c.all_reduce_sum(b.send);
    at::Tensor out = at::empty_like(b.send);
    out.slice(0, 0, out.numel(), 1024).fill_(0);  // 1024 float32 = one 4 KiB page
    return out;
  }
  if (p.dim == 0 && fn != "all_to_all_transpose") {  // straight into a fresh output
    at::Tensor out = at::empty_like(b.recv);
    if (fn == "reduce_shard_tensor") {
      c.reduce_scatter_v(b.send, out, b.send_counts);
    } else {
      c.all_gather_v(b.send, out, b.send_counts);
    }
    return out;
  }
  if (fn == "all_to_all_transpose") {  // [n_r, kWidth] pieces into a fresh [n_r, W kWidth]
    c.all_to_all_v(b.send, b.send_counts, b.recv, b.recv_counts);
    const int64_t n = p.sizes[r];
    at::Tensor out = at::empty({n, kWidth * w}, p.x.options());
    for (int q = 0; q < w; ++q) {
      out.narrow(1, q * kWidth, kWidth)
          .copy_(b.recv.narrow(0, q * n * kWidth, n * kWidth).view({n, kWidth}));
    }
    return out;
  }
  // gather and sync along dim 1: [kWidth, n_q] pieces into a fresh [kWidth, N]
  c.all_gather_v(b.send, b.recv, b.send_counts);
  at::Tensor out = at::empty({kWidth, off.back()}, p.x.options());
  for (int q = 0; q < w; ++q) {
    out.narrow(1, off[q], p.sizes[q])
        .copy_(b.recv.narrow(0, off[q] * kWidth, p.sizes[q] * kWidth).view({kWidth, p.sizes[q]}));
  }
  return out;
}

// One call of (function, role) on one rank.
at::Tensor run(const std::string& fn, const std::string& role, const CommPtr& comm,
               const Payload& p, Bare& b) {
  Communicator& c = *comm;
  const ShardSizes sizes = p.sizes;
  if (role == "floor") return floor_call(fn, p, b, c);
  if (role == "bare") {
    if (fn == "gather_tensor" || fn == "sync_tensor") {
      c.all_gather_v(b.send, b.recv, b.send_counts);
    } else if (fn == "reduce_tensor") {
      c.all_reduce_sum(b.send);
      return b.send;
    } else if (fn == "reduce_shard_tensor") {
      c.reduce_scatter_v(b.send, b.recv, b.send_counts);
    } else {
      c.all_to_all_v(b.send, b.send_counts, b.recv, b.recv_counts);
    }
    return b.recv;
  }
  if (role == "naive") {
    if (fn == "gather_tensor") return naive_gather(c, p);
    if (fn == "reduce_shard_tensor") {
      at::Tensor all = p.x.clone();
      c.all_reduce_sum(all.view({-1}));
      int64_t lo = 0;
      for (int q = 0; q < c.rank(); ++q) lo += p.sizes[q];
      return all.narrow(p.dim, lo, p.sizes[c.rank()]).contiguous();
    }
    return naive_a2a(c, p);
  }
  if (fn == "gather_tensor") return gather_tensor(p.x, p.dim, sizes, comm);
  if (fn == "sync_tensor") return sync_tensor(p.x, p.dim, sizes, comm, true);
  if (fn == "reduce_tensor") return reduce_tensor(p.x, comm);
  if (fn == "reduce_shard_tensor") return reduce_shard_tensor(p.x, p.dim, sizes, comm);
  return all_to_all_transpose(p.x, p.dim, sizes, 1 - p.dim, ShardSizes(p.other_sizes), comm);
}

// The graphshard result against the naive one (or, without a naive row, a second formulation:
// the padded gather for sync, a fresh all-reduce for reduce). 1 when they agree.
bool check(const std::string& fn, const CommPtr& comm, const Payload& p, Bare& b) {
  const at::Tensor got = run(fn, "graphshard", comm, p, b);
  at::Tensor want;
  if (fn == "sync_tensor") {
    want = naive_gather(*comm, p);
  } else if (fn == "reduce_tensor") {
    want = p.x.clone();
    comm->all_reduce_sum(want.view({-1}));
  } else {
    want = run(fn, "naive", comm, p, b);
  }
  const bool exact = fn != "reduce_tensor" && fn != "reduce_shard_tensor";
  return got.sizes() == want.sizes() &&
         (exact ? at::equal(got, want) : at::allclose(got, want, 1e-5, 1e-5));
}

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
    for (int64_t w : args.worlds) {
      pools.push_back(std::make_unique<study::SimPool>(static_cast<int>(w)));
      study::SimPool* pool = pools.back().get();
      register_repetitions(rows(args.sizes), reps,
                           [&](const GroupPtr& g) { register_sim(g, pool); });
    }
  }
  run_and_exit(gloo, args);
}
