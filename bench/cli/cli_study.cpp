// `graphshard study CONFIG.json [--out DIR] [--no-plots]`
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli.h"
#include "study_run.h"

namespace graphshard::cli {

int study_main(const std::vector<std::string>& args) {
  std::string config_path, out_dir;
  bool plots = true;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) {
      out_dir = args[++i];
    } else if (args[i] == "--no-plots") {
      plots = false;
    } else if (config_path.empty() && args[i].rfind("--", 0) != 0) {
      config_path = args[i];
    } else {
      throw std::invalid_argument("unexpected argument '" + args[i] +
                                  "'; usage: graphshard study CONFIG.json [--out DIR]");
    }
  }
  if (config_path.empty()) config_path = GRAPHSHARD_SOURCE_DIR "/configs/quickstart.json";
  const study::StudyConfig config = study::load_study_config(config_path);
  if (out_dir.empty()) out_dir = "out/" + config.name;
  const auto start = std::chrono::steady_clock::now();
  const auto result = study::run_study(config, config_path, [&](const std::string& what) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "[%7.1f s] %s\n", s, what.c_str());
  });
  study::print_table(result);
  study::write_results(result, out_dir);
  std::printf("\nwrote %s/results.json and %s/results.csv\n", out_dir.c_str(), out_dir.c_str());
  if (plots) {
    const std::string cmd = std::string("\"") + GRAPHSHARD_PYTHON + "\" \"" +
                            GRAPHSHARD_SOURCE_DIR "/bench/study/plot_study.py\" \"" + out_dir + "\"";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "plots skipped: '%s' failed (matplotlib in the project's .venv?)\n",
                   cmd.c_str());
    }
  }
  bool failed = false;
  for (const auto& w : result.worlds) failed = failed || (w.verified && !*w.verified);
  return failed ? 1 : 0;
}

int study_rank_main(const std::vector<std::string>& args) {
  if (args.size() != 6) {
    throw std::invalid_argument(
        "usage: graphshard study-rank CONFIG W RESULT verify|no-verify SCHEME EXCHANGE");
  }
  return study::run_study_rank(args[0], std::stoi(args[1]), args[2], args[3] == "verify", args[4],
                               args[5]);
}

}  // namespace graphshard::cli
