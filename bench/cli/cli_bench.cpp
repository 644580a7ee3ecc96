// `graphshard bench [--quick] [--device cpu|cuda] [--out DIR] [--repetitions N]
//                   [--peer anemoi] [--save-baseline FILE] [--compare FILE] [--threshold 0.10]`
//
// Runs the benchmark suites (graph functions; primitives on simulated ranks; primitives over
// Gloo processes, W = 2 and 4), pairs each graphshard row with its bare collective and naive
// formulation from the same run, prints a summary table and the targets, and writes
// DIR/summary.json. --compare reruns against a stored baseline (Mann-Whitney U test per
// benchmark) and fails on a significant slowdown beyond the threshold. --device cuda: the graph
// functions on the GPU (each beside a device copy of as many bytes) and the primitives on
// simulated ranks sharing it; no Gloo (a CPU transport). --peer anemoi: also the peer suite
// (bench/suites/peer_anemoi.py: graphshard's Python API against anemoi-models, W = 2 and 4) with
// the project's Python (GRAPHSHARD_PYTHON, else the one this build was configured with).
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include <nlohmann/json.hpp>

#include "bench_summary.h"
#include "cli.h"

namespace graphshard::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// Runs a shell command; its exit status (128 + signal for a signal).
int run_command(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  if (rc == -1) throw std::runtime_error("graphshard bench: cannot run '" + cmd + "'");
  if (WIFEXITED(rc)) return WEXITSTATUS(rc);
  return WIFSIGNALED(rc) ? 128 + WTERMSIG(rc) : rc;
}

std::string launch_prefix(const fs::path& self, int world) {
  return quote(self.string()) + " launch -n " + std::to_string(world) + " --timeout 3600 -- ";
}

// Runs one suite binary writing Google Benchmark JSON to `out` (its console table to a .log
// beside it; its progress, one line per benchmark with the time left, and errors to stderr as
// it runs); W > 0: as W Gloo processes through `graphshard launch`.
void run_suite(const fs::path& self, const fs::path& exe, int world,
               const std::vector<std::string>& flags, const fs::path& out) {
  std::string cmd = world > 0 ? launch_prefix(self, world) : "";
  cmd += quote(exe.string());
  for (const auto& f : flags) cmd += " " + quote(f);
  fs::path log = out;
  log.replace_extension(".log");
  cmd += " " + quote("--benchmark_out=" + out.string()) + " --benchmark_out_format=json > " +
         quote(log.string());
  std::fprintf(stderr, "bench: %s%s\n",
               world > 0 ? ("Gloo W=" + std::to_string(world) + ": ").c_str() : "",
               exe.filename().c_str());
  const int rc = run_command(cmd);
  if (rc != 0) {
    std::ifstream f(log);
    std::fprintf(stderr, "%s\n", std::string(std::istreambuf_iterator<char>(f), {}).c_str());
    throw std::runtime_error("graphshard bench: " + exe.filename().string() +
                             " failed (exit status " + std::to_string(rc) +
                             "); its output is above");
  }
}

// Google Benchmark writes NaN for statistics of constant counters (the cv of `dim`): not JSON.
json parse_gbench(const fs::path& path) {
  std::ifstream f(path);
  std::string text(std::istreambuf_iterator<char>(f), {});
  // Values follow ": " in its output; longest spellings first.
  for (const std::string bad :
       {"-Infinity", "Infinity", "-nan", "-NaN", "-inf", "nan", "NaN", "inf"}) {
    for (size_t at = text.find(": " + bad); at != std::string::npos;
         at = text.find(": " + bad, at)) {
      text.replace(at + 2, bad.size(), "null");
    }
  }
  return json::parse(text);
}

// The peer suite (bench/suites/peer_anemoi.py) as W Gloo processes of the project's Python,
// importing graphshard from this source tree and the operator library beside this executable
// (unless GRAPHSHARD_OPS_LIBRARY says otherwise). Its progress goes to stderr as it runs. A
// result that differs from anemoi's is a row with an error in `out`, which read_samples reports
// naming it; a run that wrote no JSON fails here.
void run_peer(const fs::path& self, int world, bool quick, int repetitions, const fs::path& out) {
  const char* env_python = std::getenv("GRAPHSHARD_PYTHON");
  const std::string python = env_python && *env_python ? env_python : GRAPHSHARD_PYTHON;
  const std::string source = GRAPHSHARD_SOURCE_DIR;
  const char* path = std::getenv("PYTHONPATH");
  const std::string pythonpath =
      source + "/python" + (path && *path ? ":" + std::string(path) : "");
  ::setenv("PYTHONPATH", pythonpath.c_str(), 1);
  const fs::path ops = self.parent_path() / "libgraphshard_ops.so";
  if (!std::getenv("GRAPHSHARD_OPS_LIBRARY") && fs::exists(ops)) {
    ::setenv("GRAPHSHARD_OPS_LIBRARY", ops.c_str(), 1);
  }
  std::error_code ignored;
  fs::remove(out, ignored);
  const std::string cmd = launch_prefix(self, world) + quote(python) + " " +
                          quote(source + "/bench/suites/peer_anemoi.py") + " --out " +
                          quote(out.string()) + " --repetitions " + std::to_string(repetitions) +
                          (quick ? " --quick" : "");
  std::fprintf(stderr, "bench: Gloo W=%d: peer_anemoi.py (graphshard against anemoi-models)\n",
               world);
  const int rc = run_command(cmd);
  if (rc == 77) {
    throw std::runtime_error(
        "graphshard bench: --peer anemoi: anemoi-models is not importable by " + python +
        " (set GRAPHSHARD_PYTHON to a Python that has it)");
  }
  if (rc != 0 && !fs::exists(out)) {
    throw std::runtime_error("graphshard bench: peer_anemoi.py failed (exit status " +
                             std::to_string(rc) + "); its output is above");
  }
  if (rc != 0) {  // a mismatch: read_samples names the row; else the exit status
    bench::read_samples(parse_gbench(out), out.string());
    throw std::runtime_error("graphshard bench: peer_anemoi.py failed (exit status " +
                             std::to_string(rc) + "); its output is above");
  }
}

}  // namespace

int bench_main(const std::vector<std::string>& args) {
  bool quick = false;
  std::string out_dir = "out/bench", save_baseline, compare, device = "cpu", peer;
  int repetitions = -1;
  double threshold = 0.10;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--quick") {
      quick = true;
    } else if (args[i] == "--device") {
      device = value();
      if (device != "cpu" && device != "cuda") {
        throw std::invalid_argument("graphshard bench: --device: expected cpu or cuda, got '" +
                                    device + "'");
      }
    } else if (args[i] == "--peer") {
      peer = value();
      if (peer != "anemoi") {
        throw std::invalid_argument("graphshard bench: --peer: expected anemoi, got '" + peer +
                                    "'");
      }
    } else if (args[i] == "--out") {
      out_dir = value();
    } else if (args[i] == "--repetitions") {
      repetitions = std::stoi(value());
    } else if (args[i] == "--save-baseline") {
      save_baseline = value();
    } else if (args[i] == "--compare") {
      compare = value();
    } else if (args[i] == "--threshold") {
      threshold = std::stod(value());
    } else {
      throw std::invalid_argument("graphshard bench: unknown argument '" + args[i] + "'");
    }
  }
  if (!peer.empty() && device != "cpu") {
    throw std::invalid_argument(
        "graphshard bench: --peer anemoi runs over Gloo on CPU tensors: use it with --device cpu");
  }
  // Comparisons need spread: several repetitions unless asked otherwise.
  if (repetitions < 0) repetitions = quick ? 1 : (compare.empty() && save_baseline.empty() ? 3 : 5);
  json baseline;
  if (!compare.empty()) {
    std::ifstream f(compare);
    if (!f) throw std::invalid_argument("graphshard bench: --compare: cannot open " + compare);
    baseline = json::parse(f);
  }
  fs::create_directories(out_dir);
  const fs::path bin = fs::read_symlink("/proc/self/exe").parent_path();
  std::vector<std::string> flags{"--benchmark_repetitions=" + std::to_string(repetitions)};
  if (quick) flags.push_back("--quick");
  flags.push_back("--device=" + device);

  std::vector<fs::path> outputs;
  const fs::path dir(out_dir);
  const fs::path self = fs::read_symlink("/proc/self/exe");
  run_suite(self, bin / "graphshard_bench_graph", 0, flags, dir / "graph.json");
  outputs.push_back(dir / "graph.json");
  run_suite(self, bin / "graphshard_bench_primitives", 0, flags, dir / "primitives-sim.json");
  outputs.push_back(dir / "primitives-sim.json");
  std::vector<int> gloo_worlds;
  if (device == "cpu") gloo_worlds = quick ? std::vector<int>{2} : std::vector<int>{2, 4};
  for (int w : gloo_worlds) {
    const fs::path o = dir / ("primitives-gloo-W" + std::to_string(w) + ".json");
    run_suite(self, bin / "graphshard_bench_primitives", w, flags, o);
    outputs.push_back(o);
  }
  if (!peer.empty()) {
    for (int w : quick ? std::vector<int>{2} : std::vector<int>{2, 4}) {
      const fs::path o = dir / ("peer-anemoi-W" + std::to_string(w) + ".json");
      run_peer(self, w, quick, repetitions, o);
      outputs.push_back(o);
    }
  }

  std::vector<bench::Sample> samples;
  for (const auto& o : outputs) {
    const auto more = bench::read_samples(parse_gbench(o), o.string());
    samples.insert(samples.end(), more.begin(), more.end());
  }
  const auto rows = bench::summarise(samples);
  bench::print_summary(rows);
  std::ofstream(dir / "summary.json") << bench::summary_json(rows).dump(1) << "\n";
  std::printf("\nwrote %s/summary.json (raw Google Benchmark JSON beside it)\n", out_dir.c_str());
  if (!save_baseline.empty()) {
    std::ofstream(save_baseline) << bench::baseline_json(samples).dump(1) << "\n";
    std::printf("wrote baseline %s\n", save_baseline.c_str());
  }
  if (!compare.empty()) {
    return bench::compare_to_baseline(samples, baseline, threshold) ? 0 : 1;
  }
  return 0;
}

}  // namespace graphshard::cli
