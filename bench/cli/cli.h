// Subcommands of the `graphshard` executable.
#pragma once

#include <string>
#include <vector>

namespace graphshard::cli {

int launch_main(const std::vector<std::string>& args);
int check_main(const std::vector<std::string>& args);
int study_main(const std::vector<std::string>& args);
int study_rank_main(const std::vector<std::string>& args);
int bench_main(const std::vector<std::string>& args);

}  // namespace graphshard::cli
