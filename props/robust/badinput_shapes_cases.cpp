// Bad-input cases of the shape utilities (SPEC §0, §4; shapes.h). The shard info classes take
// any sizes (they are plain values, checked where they are used), so they have no cases here.
#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "graphshard/shapes.h"

namespace graphshard::props {
namespace {

// A case of a shape utility: the tensor it is given (if any) and the call.
BadInputCase shape_case(const char* fn, std::string arg, std::string what, bool with_group,
                        std::vector<int64_t> shape,
                        std::function<void(const at::Tensor&, const CommPtr&)> call) {
  BadInputCase k{fn, std::move(arg), std::move(what)};
  k.make = [=](const CommPtr& g, int r) {
    const at::Tensor t = at::zeros(shape);
    return BadCall{{t}, [=] { call(t, g); }, with_group ? r : 0};
  };
  return k;
}

}  // namespace

std::vector<BadInputCase> shapes_cases() {
  const auto sizes_of = [](int64_t dim) {
    return [dim](const at::Tensor& t, const CommPtr& g) { get_shard_sizes(t, dim, g); };
  };
  const auto shapes_of = [](int64_t dim, std::vector<int64_t> sizes) {
    return
        [=](const at::Tensor& t, const CommPtr&) { expand_shard_sizes_to_shapes(t, dim, sizes); };
  };
  const auto no_tensor = [](std::function<void()> f) {
    return [f](const at::Tensor&, const CommPtr&) { f(); };
  };
  return {
      shape_case("get_shard_sizes", "dim", "= ndim", true, {3, 4}, sizes_of(2)),
      shape_case("get_shard_sizes", "dim", "< -ndim", true, {3, 4}, sizes_of(-3)),
      shape_case("get_shard_sizes", "dim", "a 0-d tensor has no dim", true, {}, sizes_of(0)),
      shape_case("get_shard_sizes", "dim", "= ndim with a null group", false, {3, 4},
                 [](const at::Tensor& t, const CommPtr&) { get_shard_sizes(t, 2, nullptr); }),
      shape_case("expand_shard_sizes_to_shapes", "dim", "= ndim", false, {3, 4},
                 shapes_of(2, {1, 2})),
      shape_case("expand_shard_sizes_to_shapes", "dim", "a 0-d tensor has no dim", false, {},
                 shapes_of(0, {1, 2})),
      shape_case("expand_shard_sizes_to_shapes", "sizes", "a negative entry", false, {3, 4},
                 shapes_of(-1, {2, -1})),
      shape_case("balanced_sizes", "n", "negative", false, {},
                 no_tensor([] { balanced_sizes(-1, 2); })),
      shape_case("balanced_sizes", "parts", "0", false, {},
                 no_tensor([] { balanced_sizes(4, 0); })),
      shape_case("partition_range", "i", "= len(sizes)", false, {}, no_tensor([] {
                   partition_range({1, 2}, 2);
                 })),
      shape_case("partition_range", "i", "-1", false, {}, no_tensor([] {
                   partition_range({1, 2}, -1, 5);
                 })),
      // A list too short for the index: the empty list has no index at all.
      shape_case("partition_range", "i", "0 with an empty sizes list", false, {},
                 no_tensor([] { partition_range({}, 0); })),
  };
}

}  // namespace graphshard::props
