// `graphshard launch -n W [--timeout SECONDS] [--grace SECONDS] -- PROGRAM [ARGS...]`
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli.h"
#include "graphshard/launch.h"

namespace graphshard::cli {

int launch_main(const std::vector<std::string>& args) {
  LaunchOptions o;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    if (a == "-n" || a == "--nproc") {
      o.world_size = std::stoi(value());
    } else if (a == "--timeout") {
      o.timeout = std::chrono::milliseconds(static_cast<int64_t>(std::stod(value()) * 1000));
    } else if (a == "--grace") {
      o.grace = std::chrono::milliseconds(static_cast<int64_t>(std::stod(value()) * 1000));
    } else if (a == "--master-port") {
      o.master_port = std::stoi(value());
    } else {
      throw std::invalid_argument("graphshard launch: unknown option '" + a + "'");
    }
  }
  if (i + 1 >= args.size()) {
    throw std::invalid_argument("graphshard launch: expected '-- PROGRAM [ARGS...]'");
  }
  std::vector<std::string> argv(args.begin() + static_cast<long>(i) + 1, args.end());
  return launch_local(argv, o);
}

}  // namespace graphshard::cli
