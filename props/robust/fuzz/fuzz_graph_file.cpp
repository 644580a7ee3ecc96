// libFuzzer target: bytes as a safetensors graph file through the loader
// (parse_safetensors_graph, the in-memory twin of load_safetensors_graph). A clean
// c10::ValueError is the documented outcome for a malformed file; anything else (another
// exception, a crash, a sanitizer report, an allocation past -malloc_limit_mb, a hang) is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "weather_graphs.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

}  // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

// A file is [u64 header length][header JSON][data]. Byte mutations of the JSON almost always
// break its length prefix, so the loader would stop at "header: expected JSON" and the fuzzer
// would rarely reach the tensor checks. Half of the mutations therefore mutate the header alone
// and rewrite the prefix to its new length; the other half mutate the whole file as bytes.
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  uint64_t len = 0;
  if (size >= 8) std::memcpy(&len, data, 8);
  if (size < 8 || len == 0 || len > size - 8 || std::minstd_rand(seed)() % 2 == 0) {
    return LLVMFuzzerMutate(data, size, max_size);
  }
  const std::vector<uint8_t> rest(data + 8 + len, data + size);
  const size_t room = max_size - 8 - rest.size();  // >= len since size <= max_size
  std::vector<uint8_t> header(data + 8, data + 8 + len);
  header.resize(room);
  const uint64_t new_len = LLVMFuzzerMutate(header.data(), len, room);
  std::memcpy(data, &new_len, 8);
  std::copy(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(new_len), data + 8);
  std::copy(rest.begin(), rest.end(), data + 8 + new_len);
  return 8 + new_len + rest.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const graphshard::study::Graph g = graphshard::study::parse_safetensors_graph(bytes, "fuzz");
    // An accepted file holds what the loader promises.
    const at::Tensor& ei = g.edge_index;
    if (ei.scalar_type() != at::kLong || ei.dim() != 2 || ei.size(0) != 2) {
      fail("accepted an edge_index that is not int64 [2, E]");
    }
    if (ei.size(1) > 0 &&
        (ei.min().item<int64_t>() < 0 || ei[0].max().item<int64_t>() >= g.num_src ||
         ei[1].max().item<int64_t>() >= g.num_dst)) {
      fail("accepted an edge id out of range");
    }
    if (g.edge_attr.defined() && g.edge_attr.size(0) != ei.size(1)) {
      fail("accepted edge_attr with the wrong number of rows");
    }
  } catch (const c10::ValueError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not a c10::ValueError: %s\n", e.what());
    std::abort();
  }
  return 0;
}
