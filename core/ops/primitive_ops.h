// Shared by the operator library's translation units (core/ops). Internal.
#pragma once

#include <c10/util/OptionalArrayRef.h>

#include "graphshard/shapes.h"

namespace graphshard::ops {

// An operator's `int[]?` as graphshard's ShardSizes.
ShardSizes to_sizes(at::OptionalIntArrayRef sizes);

}  // namespace graphshard::ops
