// libFuzzer target: bytes as a study config (JSON text) through parse_study_config. A clean
// c10::ValueError is the documented outcome for a bad config; anything else (another
// exception, a crash, a sanitizer report, a hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <c10/util/Exception.h>

#include "study_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const graphshard::study::StudyConfig c = graphshard::study::parse_study_config(text, "fuzz");
    // An accepted config holds what the runner relies on.
    if (c.world_sizes.empty() || c.graph.kind.empty()) {
      std::fprintf(stderr, "accepted a config without world sizes or graph kind\n");
      std::abort();
    }
  } catch (const c10::ValueError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not a c10::ValueError: %s\n", e.what());
    std::abort();
  }
  return 0;
}
