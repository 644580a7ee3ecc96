// What the benchmark suites share with `graphshard bench`: every benchmark tags itself with the
// row it measures, so the summary pairs each graphshard function with its bare collective and
// its naive formulation measured in the same run.
//
// The tag is the benchmark's label, `function=F;role=R;engine=E`, with R one of
//   graphshard  the library's function,
//   bare        the bare collective the function wraps (same bytes, same engine, same W),
//   naive       what a user would otherwise write,
// and the counters `world_size`, `bytes`, `dim`, `edges` (absent where they do not apply).
// Rows with equal (function, engine, world_size, bytes, dim, edges) are compared.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_summary.h"
#include "graphshard/comm.h"

namespace graphshard::bench {

// The row a benchmark measures (bench_summary.h reads it back as the same Key).
using Tag = Key;

inline void tag(benchmark::State& state, const Tag& t) {
  state.SetLabel("function=" + t.function + ";role=" + t.role + ";engine=" + t.engine);
  state.counters["world_size"] = t.world_size;
  if (t.bytes >= 0) state.counters["bytes"] = static_cast<double>(t.bytes);
  if (t.dim >= 0) state.counters["dim"] = static_cast<double>(t.dim);
  if (t.edges >= 0) state.counters["edges"] = static_cast<double>(t.edges);
}

inline std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

// Removes `--benchmark_repetitions=N` from argv and returns N (1 without it), for a suite that
// schedules its repetitions itself (bench_primitives.cpp interleaves them across roles).
inline int take_repetitions(int& argc, char** argv) {
  int reps = 1, out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--benchmark_repetitions=", 24) == 0) {
      reps = std::max(1, std::atoi(argv[i] + 24));
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return reps;
}

// Removes `--quick` from argv (before benchmark::Initialize) and says whether it was there.
// Quick: the smallest sizes only, a smoke pass that checks results and does not crash.
inline bool take_quick_flag(int& argc, char** argv) {
  bool quick = false;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return quick;
}

// Removes `NAME=VALUE` from argv (before benchmark::Initialize) and returns VALUE, or
// `fallback` without it.
inline std::string take_value_flag(int& argc, char** argv, const std::string& name,
                                   const std::string& fallback) {
  std::string value = fallback;
  const std::string prefix = name + "=";
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      value = argv[i] + prefix.size();
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return value;
}

// A reporter for ranks other than 0 under Gloo: they run in lockstep and report nothing.
struct SilentReporter : benchmark::BenchmarkReporter {
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

// Benchmark instances the suite registered (each registration adds its count of argument sets):
// the n of the progress line.
inline int& planned_benchmarks() {
  static int n = 0;
  return n;
}

// The console reporter (to stdout, the suite's log under `graphshard bench`) plus a progress
// line on stderr after each benchmark: "bench graph: 12/60 name, 1m02s elapsed, ~5m10s left".
// On a terminal the line is redrawn in place; otherwise (a log) one plain line per benchmark.
class ProgressReporter : public benchmark::ConsoleReporter {
 public:
  explicit ProgressReporter(std::string suite)
      : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular),
        suite_(std::move(suite)),
        live_(isatty(STDERR_FILENO) != 0) {}
  ~ProgressReporter() override {
    if (live_ && done_ > 0) std::fprintf(stderr, "\n");
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    // Aggregates (mean, median, ...) come in a call of their own after a benchmark's runs.
    if (runs.empty() || runs.front().run_type != Run::RT_Iteration) return;
    ++done_;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    const int total = std::max(planned_benchmarks(), done_);
    const double left = elapsed / done_ * (total - done_);
    std::fprintf(stderr, "%sbench %s: %d/%d %s, %s elapsed, ~%s left%s", live_ ? "\r\033[K" : "",
                 suite_.c_str(), done_, total, runs.front().benchmark_name().c_str(),
                 duration(elapsed).c_str(), duration(left).c_str(), live_ ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  static std::string duration(double s) {
    char buf[32];
    const long t = static_cast<long>(s + 0.5);
    if (t >= 60) {
      std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    } else {
      std::snprintf(buf, sizeof buf, "%lds", t);
    }
    return buf;
  }
  std::string suite_;
  bool live_;
  int done_ = 0;
  Clock::time_point start_ = Clock::now();
};

struct SuiteArgs {
  std::vector<int64_t> sizes, worlds;  // --sizes=a,b,... (bytes) and --worlds=a,b,... (sim W)
  bool to_file = false;                // --benchmark_out=FILE was given
};

// Takes --sizes= and --worlds= (over `defaults`) and initialises Google Benchmark with the rest.
// Under a launcher, ranks other than 0 get --benchmark_out=/dev/null: Google Benchmark opens
// (truncates) that file even for a silent reporter, and a late truncation by another rank left
// rank 0's JSON with a hole of NUL bytes at its start.
inline SuiteArgs init_suite(int argc, char** argv, SuiteArgs defaults) {
  static char dev_null[] = "--benchmark_out=/dev/null";
  const char* rank = std::getenv("RANK");
  const bool other_rank = rank && std::strcmp(rank, "0") != 0;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--sizes=", 8) == 0) {
      defaults.sizes = parse_list(argv[i] + 8);
    } else if (std::strncmp(argv[i], "--worlds=", 9) == 0) {
      defaults.worlds = parse_list(argv[i] + 9);
    } else if (std::strncmp(argv[i], "--benchmark_out=", 16) == 0) {
      defaults.to_file = true;
      rest.push_back(other_rank ? dev_null : argv[i]);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  return defaults;
}

// Runs the registered benchmarks and ends the process. Under Gloo every rank runs them in
// lockstep and only rank 0 reports: the others get silent reporters (Google Benchmark refuses a
// file reporter without --benchmark_out, and would write the file from every rank without one).
// _Exit: no teardown races between Gloo's threads and static destructors.
// Rank 0 (or the only process) shows progress (ProgressReporter) named `suite`.
[[noreturn]] inline void run_and_exit(const graphshard::CommPtr& gloo, const SuiteArgs& args,
                                      const std::string& suite) {
  if (gloo && gloo->rank() != 0) {
    SilentReporter display, file;
    benchmark::RunSpecifiedBenchmarks(&display, args.to_file ? &file : nullptr);
  } else {
    ProgressReporter display(gloo ? suite + " (Gloo W=" + std::to_string(gloo->size()) + ")"
                                  : suite);
    benchmark::RunSpecifiedBenchmarks(&display);
  }
  if (gloo) gloo->barrier();
  benchmark::Shutdown();
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace graphshard::bench
