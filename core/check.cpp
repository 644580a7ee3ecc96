#include "check.h"

namespace graphshard::detail {

std::string str(const std::vector<int64_t>& v) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << ']';
  return os.str();
}

void fail(const char* fn, const std::string& arg, const std::string& expected,
          const std::string& actual, int rank) {
  std::ostringstream os;
  os << "graphshard::" << fn << ": " << arg << ": expected " << expected << ", got " << actual
     << " (rank " << rank << ")";
  throw c10::ValueError({__func__, __FILE__, static_cast<uint32_t>(__LINE__)}, os.str());
}

int64_t normalize_dim(const char* fn, const char* arg, int64_t dim, int64_t ndim, int rank) {
  if (ndim == 0 || dim < -ndim || dim >= ndim) {
    fail(fn, arg,
         ndim == 0 ? std::string("a tensor with at least one dimension")
                   : "a dim in [" + std::to_string(-ndim) + ", " + std::to_string(ndim) + ")",
         std::to_string(dim) + " for a tensor of " + std::to_string(ndim) + " dims", rank);
  }
  return dim < 0 ? dim + ndim : dim;
}

void check_sizes(const char* fn, const char* arg, const std::vector<int64_t>& sizes, int world,
                 int rank) {
  if (static_cast<int64_t>(sizes.size()) != world) {
    fail(fn, std::string(arg) + " length",
         std::to_string(world) + " entries (one per rank)",
         std::to_string(sizes.size()) + " entries " + str(sizes), rank);
  }
  for (int64_t s : sizes) {
    if (s < 0) fail(fn, arg, "non-negative entries", str(sizes), rank);
  }
}

}  // namespace graphshard::detail
