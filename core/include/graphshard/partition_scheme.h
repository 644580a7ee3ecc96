// The partitioning schemes by name (graphshard/partitioners.h has what each does). Free of
// ATen, so that parsers of untrusted configs (bench/study, fuzzed alone) can check scheme names
// without linking libgraphshard.
#pragma once

#include <string>
#include <vector>

namespace graphshard {

enum class PartitionScheme { kContiguous, kEdgeBalanced, kHilbert, kLatLonBoxes, kMetis };

// "contiguous", "edge_balanced", "hilbert", "latlon_boxes", "metis".
std::string to_string(PartitionScheme scheme);
// The scheme of that name; any other name is a c10::ValueError that lists the names.
PartitionScheme partition_scheme_from_string(const std::string& name);
// Every scheme, in the order above.
std::vector<PartitionScheme> all_partition_schemes();
// hilbert and latlon_boxes place nodes by their coordinates.
bool scheme_needs_coordinates(PartitionScheme scheme);

}  // namespace graphshard
