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

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
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
[[noreturn]] inline void run_and_exit(const graphshard::CommPtr& gloo, const SuiteArgs& args) {
  if (gloo && gloo->rank() != 0) {
    SilentReporter display, file;
    benchmark::RunSpecifiedBenchmarks(&display, args.to_file ? &file : nullptr);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  if (gloo) gloo->barrier();
  benchmark::Shutdown();
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace graphshard::bench
