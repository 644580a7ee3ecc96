#include "arguments.h"

#include <string>

#include "../check.h"

namespace graphshard::detail {

void check_defined(const char* fn, const char* arg, const at::Tensor& x, int rank) {
  check(x.defined(), fn, arg, "a defined tensor", "an undefined tensor", rank);
}

const std::vector<int64_t>& require_sizes(const char* fn, const char* arg, const ShardSizes& sizes,
                                          int world, int rank) {
  if (!sizes) {
    fail(fn, arg,
         "shard sizes (one entry per rank) for a group of " + std::to_string(world) + " ranks",
         "None", rank);
  }
  check_sizes(fn, arg, *sizes, world, rank);
  return *sizes;
}

void check_total(const char* fn, const char* arg, const std::vector<int64_t>& sizes,
                 const at::Tensor& x, int64_t d, int rank) {
  const int64_t sum = total(sizes);
  if (sum != x.size(d)) {
    fail(fn, arg,
         "entries summing to input.size(" + std::to_string(d) + ") = " + std::to_string(x.size(d)),
         str(sizes) + " (sum " + std::to_string(sum) + ")", rank);
  }
}

void check_local(const char* fn, const char* arg, const std::vector<int64_t>& sizes,
                 const at::Tensor& x, int64_t d, int rank) {
  if (sizes[rank] != x.size(d)) {
    fail(fn, std::string(arg) + "[" + std::to_string(rank) + "]",
         "input.size(" + std::to_string(d) + ") = " + std::to_string(x.size(d)) +
             " (the local piece)",
         std::to_string(sizes[rank]) + " in " + str(sizes), rank);
  }
}

}  // namespace graphshard::detail
