// The `graphshard` executable: one binary, several subcommands.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <c10/util/Exception.h>

#include "cli.h"

namespace {

void usage() {
  std::puts(
      "usage: graphshard <command> [options]\n"
      "  study  [CONFIG.json] [--out DIR] [--no-plots]\n"
      "                                             run a scaling study (default: the\n"
      "                                             quickstart); table, results.json/csv, plots\n"
      "  bench  [--quick] [--device cpu|cuda] [--out DIR] [--repetitions N]\n"
      "         [--peer anemoi] [--save-baseline FILE] [--compare FILE] [--threshold 0.10]\n"
      "                                             benchmark suites: summary table with ratios\n"
      "                                             to bare collectives and naive code, targets,\n"
      "                                             DIR/summary.json, regression comparison;\n"
      "                                             --peer anemoi: also graphshard's Python API\n"
      "                                             against anemoi-models (Gloo, W = 2 and 4;\n"
      "                                             Python: $GRAPHSHARD_PYTHON or the .venv)\n"
      "  check  [--world-sizes 1,2,4,8] [--mib N]   run every collective on simulated ranks,\n"
      "                                             verify it and print traffic and timing\n"
      "  launch -n W [--timeout S] [--grace S] -- PROGRAM [ARGS...]\n"
      "                                             run PROGRAM as W local ranks (torchrun\n"
      "                                             variables, Gloo over loopback)");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    usage();
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "launch") return graphshard::cli::launch_main(args);
    if (cmd == "study") return graphshard::cli::study_main(args);
    if (cmd == "study-rank") return graphshard::cli::study_rank_main(args);
    if (cmd == "bench") return graphshard::cli::bench_main(args);
    if (cmd == "check") return graphshard::cli::check_main(args);
  } catch (const c10::Error& e) {
    // The message alone: a user's bad config or argument is not a crash to debug.
    std::fprintf(stderr, "graphshard %s: %s\n", cmd.c_str(), e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graphshard %s: %s\n", cmd.c_str(), e.what());
    return 2;
  }
  std::fprintf(stderr, "graphshard: unknown command '%s'\n", cmd.c_str());
  usage();
  return 2;
}
