// Shared argument validation for every public function (SPEC §5). Internal to core.
//
// Every message has the form
//   graphshard::<function>: <argument>: expected <expected>, got <actual> (rank <r>)
// so a user can tell which call, which argument and which rank went wrong. Checks depend only
// on arguments every rank has, so all ranks fail together and none is left waiting.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

namespace graphshard::detail {

std::string str(const std::vector<int64_t>& v);  // "[1, 2, 3]"

// Throws c10::ValueError with the standard message.
[[noreturn]] void fail(const char* fn, const std::string& arg, const std::string& expected,
                       const std::string& actual, int rank);

template <typename T>
std::string to_str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
inline std::string to_str(const std::vector<int64_t>& v) {
  return str(v);
}

template <typename E, typename A>
inline void check(bool ok, const char* fn, const std::string& arg, const E& expected,
                  const A& actual, int rank) {
  if (!ok) fail(fn, arg, to_str(expected), to_str(actual), rank);
}

// dim in [-ndim, ndim) -> [0, ndim). A 0-d tensor has no valid dim.
int64_t normalize_dim(const char* fn, const char* arg, int64_t dim, int64_t ndim, int rank);

// Every entry equal (true for an empty list): the case where a backend's own collective applies.
inline bool all_equal(const std::vector<int64_t>& v) {
  for (int64_t x : v) {
    if (x != v.front()) return false;
  }
  return true;
}

// The type sums are accumulated in (SPEC: at least float32): float32 for float16/bfloat16,
// else t unchanged.
inline at::ScalarType accumulation_type(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

// len(sizes) == world, every entry >= 0.
void check_sizes(const char* fn, const char* arg, const std::vector<int64_t>& sizes, int world,
                 int rank);

}  // namespace graphshard::detail
