// Scheme names (graphshard/partition_scheme.h). Needs only check.cpp beside it, so the fuzzed
// config loader builds it without libgraphshard (props/robust/fuzz/CMakeLists.txt).
#include "graphshard/partition_scheme.h"

#include "../check.h"

namespace graphshard {
namespace {

struct SchemeName {
  PartitionScheme scheme;
  const char* name;
};
constexpr SchemeName kSchemes[] = {{PartitionScheme::kContiguous, "contiguous"},
                                   {PartitionScheme::kEdgeBalanced, "edge_balanced"},
                                   {PartitionScheme::kHilbert, "hilbert"},
                                   {PartitionScheme::kLatLonBoxes, "latlon_boxes"},
                                   {PartitionScheme::kMetis, "metis"}};

}  // namespace

std::string to_string(PartitionScheme scheme) {
  for (const auto& s : kSchemes)
    if (s.scheme == scheme) return s.name;
  return "unknown";
}

PartitionScheme partition_scheme_from_string(const std::string& name) {
  std::string names;
  for (const auto& s : kSchemes) {
    if (name == s.name) return s.scheme;
    names += (names.empty() ? "" : " | ") + std::string(s.name);
  }
  detail::fail("partition_scheme_from_string", "name", "one of " + names, "'" + name + "'", 0);
}

std::vector<PartitionScheme> all_partition_schemes() {
  std::vector<PartitionScheme> out;
  for (const auto& s : kSchemes) out.push_back(s.scheme);
  return out;
}

bool scheme_needs_coordinates(PartitionScheme scheme) {
  return scheme == PartitionScheme::kHilbert || scheme == PartitionScheme::kLatLonBoxes;
}

}  // namespace graphshard
