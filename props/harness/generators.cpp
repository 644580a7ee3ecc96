#include "generators.h"

#include <sstream>

namespace graphshard::props {

std::ostream& operator<<(std::ostream& os, const DType& d) { return os << d.type; }

std::ostream& operator<<(std::ostream& os, const Layout& l) {
  return os << (l.strided ? "strided" : (l.format == at::MemoryFormat::ChannelsLast
                                             ? "channels_last"
                                             : "contiguous"));
}

rc::Gen<DType> gen_dtype() {
  return rc::gen::element(DType{at::kHalf}, DType{at::kBFloat16}, DType{at::kFloat},
                          DType{at::kDouble}, DType{at::kLong});
}

rc::Gen<DType> gen_float_dtype() {
  return rc::gen::element(DType{at::kHalf}, DType{at::kBFloat16}, DType{at::kFloat},
                          DType{at::kDouble});
}

rc::Gen<std::vector<int64_t>> gen_sizes(int world_size, int64_t max_each) {
  return rc::gen::oneOf(
      rc::gen::container<std::vector<int64_t>>(
          world_size, rc::gen::weightedOneOf<int64_t>(
                          {{1, rc::gen::just<int64_t>(0)},
                           {3, rc::gen::inRange<int64_t>(0, max_each + 1)}})),
      rc::gen::map(rc::gen::inRange<int64_t>(0, max_each + 1), [world_size](int64_t n) {
        return std::vector<int64_t>(world_size, n);
      }));
}

rc::Gen<std::vector<int64_t>> gen_shape(int ndim, int64_t max_extent) {
  return rc::gen::container<std::vector<int64_t>>(
      ndim, rc::gen::weightedOneOf<int64_t>({{1, rc::gen::just<int64_t>(0)},
                                             {9, rc::gen::inRange<int64_t>(1, max_extent + 1)}}));
}

at::Tensor make_data(const std::vector<int64_t>& shape, at::ScalarType dtype, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(-4, 5, shape, gen, at::TensorOptions().dtype(at::kLong)).to(dtype);
}

at::Tensor make_data_as(const std::vector<int64_t>& shape, at::ScalarType dtype, uint64_t seed,
                        at::MemoryFormat format, bool strided) {
  at::Tensor t = make_data(shape, dtype, seed);
  if (strided && !shape.empty()) {
    // Embed in a larger buffer and slice: same values, non-contiguous strides.
    std::vector<int64_t> big = shape;
    big.back() = 2 * shape.back() + 1;
    at::Tensor buf = at::zeros(big, t.options());
    at::Tensor view = buf.narrow(-1, 1, shape.back());
    view.copy_(t);
    return view;
  }
  if (format == at::MemoryFormat::ChannelsLast && shape.size() == 4) {
    return t.contiguous(at::MemoryFormat::ChannelsLast);
  }
  return t;
}

rc::Gen<Layout> gen_layout(int ndim) {
  if (ndim == 4) {
    return rc::gen::element(Layout{at::MemoryFormat::Contiguous, false},
                            Layout{at::MemoryFormat::ChannelsLast, false},
                            Layout{at::MemoryFormat::Contiguous, true});
  }
  if (ndim == 0) return rc::gen::just(Layout{});
  return rc::gen::element(Layout{at::MemoryFormat::Contiguous, false},
                          Layout{at::MemoryFormat::Contiguous, true});
}

namespace {
std::string describe(const at::Tensor& t) {
  std::ostringstream os;
  os << t.scalar_type() << t.sizes();
  return os.str();
}
}  // namespace

void expect_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  if (actual.scalar_type() != expected.scalar_type() || actual.sizes() != expected.sizes()) {
    throw std::runtime_error(what + ": expected " + describe(expected) + ", got " +
                             describe(actual));
  }
  if (!at::equal(actual.cpu(), expected.cpu())) {
    std::ostringstream os;
    os << what << ": values differ\nexpected:\n" << expected << "\nactual:\n" << actual;
    throw std::runtime_error(os.str());
  }
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, const std::string& what,
                  double rtol, double atol) {
  if (actual.scalar_type() != expected.scalar_type() || actual.sizes() != expected.sizes()) {
    throw std::runtime_error(what + ": expected " + describe(expected) + ", got " +
                             describe(actual));
  }
  if (!at::allclose(actual.cpu().to(at::kDouble), expected.cpu().to(at::kDouble), rtol, atol)) {
    std::ostringstream os;
    os << what << ": values differ beyond rtol " << rtol << ", atol " << atol << "\nexpected:\n"
       << expected << "\nactual:\n"
       << actual;
    throw std::runtime_error(os.str());
  }
}

}  // namespace graphshard::props

// ---- Tensor primitives ---------------------------------------------------------------------
namespace graphshard::props {

rc::Gen<int64_t> gen_dim(int ndim) {
  return rc::gen::inRange<int64_t>(-ndim, ndim);
}

rc::Gen<int64_t> gen_other_dim(int ndim, int64_t dim) {
  const int64_t d = dim < 0 ? dim + ndim : dim;
  return rc::gen::map(rc::gen::pair(rc::gen::inRange<int64_t>(1, ndim), rc::gen::arbitrary<bool>()),
                      [ndim, d](const std::pair<int64_t, bool>& p) {
                        const int64_t other = (d + p.first) % ndim;
                        return p.second ? other - ndim : other;
                      });
}

rc::Gen<std::vector<int64_t>> gen_shard_sizes(int world_size, int64_t max_each) {
  auto balanced = rc::gen::map(rc::gen::inRange<int64_t>(0, max_each * world_size + 1),
                               [world_size](int64_t n) {
                                 std::vector<int64_t> s(world_size, n / world_size);
                                 for (int64_t q = 0; q < n % world_size; ++q) ++s[q];
                                 return s;
                               });
  return rc::gen::oneOf(gen_sizes(world_size, max_each), balanced);
}

}  // namespace graphshard::props
