// The safetensors graph-file loader (declared in weather_graphs.h). Graph files are untrusted
// input: every size and offset in the header is checked against the file before it is used. The
// fuzz targets (props/robust/fuzz) build it with the other loader sources alone, so it needs
// nothing beyond torch and nlohmann_json.
#include "weather_graphs.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "bounded_json.h"

namespace graphshard::study {
namespace {

at::ScalarType safetensors_dtype(const std::string& path, const std::string& name,
                                 const std::string& t) {
  if (t == "I64") return at::kLong;
  if (t == "I32") return at::kInt;
  if (t == "F32") return at::kFloat;
  if (t == "F64") return at::kDouble;
  if (t == "F16") return at::kHalf;
  if (t == "BF16") return at::kBFloat16;
  TORCH_CHECK_VALUE(false, "graphshard::study::load_safetensors_graph: ", path, ": tensor '", name,
                    "': dtype: expected one of I64, I32, F32, F64, F16, BF16, got ", t);
}

// The safetensors reader over any seekable stream of file_size bytes; `path` names it in errors.
Graph read_safetensors_graph(std::istream& in, uint64_t file_size, const std::string& path) {
  const char* fn = "graphshard::study::load_safetensors_graph: ";
  uint64_t header_len = 0;
  TORCH_CHECK_VALUE(file_size >= 8 && in.read(reinterpret_cast<char*>(&header_len), 8), fn, path,
                    ": header length: expected 8 bytes, the file is shorter");
  TORCH_CHECK_VALUE(header_len <= file_size - 8, fn, path, ": header length: expected at most ",
                    file_size - 8, " bytes, got ", header_len);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  nlohmann::json meta;
  try {
    meta = parse_bounded_json(header);
  } catch (const std::exception& e) {
    TORCH_CHECK_VALUE(false, fn, path, ": header: expected JSON, got a parse error: ", e.what());
  }
  TORCH_CHECK_VALUE(meta.is_object(), fn, path, ": header: expected a JSON object");
  const uint64_t data_start = 8 + header_len;
  auto load = [&](const std::string& name) -> at::Tensor {
    if (!meta.contains(name)) return {};
    const auto& t = meta[name];
    std::string dtype_name;
    std::vector<int64_t> shape;
    std::vector<uint64_t> off;
    // Integers only: nlohmann converts a float element with a static_cast (undefined behaviour
    // out of range). An integer beyond int64 (uint64) wraps to a negative size or offset
    // below, which the range checks refuse.
    auto integers = [](const nlohmann::json& a) {
      return a.is_array() && std::all_of(a.begin(), a.end(), [](const nlohmann::json& v) {
               return v.is_number_integer();
             });
    };
    bool well_formed = false;
    try {
      dtype_name = t.at("dtype").get<std::string>();
      well_formed = integers(t.at("shape")) && integers(t.at("data_offsets"));
      if (well_formed) {
        shape = t.at("shape").get<std::vector<int64_t>>();
        off = t.at("data_offsets").get<std::vector<uint64_t>>();
      }
    } catch (const nlohmann::json::exception&) {
      well_formed = false;
    }
    TORCH_CHECK_VALUE(well_formed, fn, path, ": tensor '", name, "': expected an object with ",
                      "dtype (string), shape (list of sizes) and data_offsets (two offsets), got ",
                      t.dump());
    const at::ScalarType dtype = safetensors_dtype(path, name, dtype_name);
    for (const int64_t d : shape) {
      TORCH_CHECK_VALUE(d >= 0, fn, path, ": tensor '", name, "': shape: expected sizes >= 0, got ",
                        c10::IntArrayRef(shape));
    }
    // Compared without adding to the offsets: a huge offset would wrap around.
    TORCH_CHECK_VALUE(off.size() == 2 && off[0] <= off[1] && off[1] <= file_size - data_start, fn,
                      path, ": tensor '", name, "': data_offsets: expected a range inside the ",
                      "file");
    // The shape's byte size is checked against the data range BEFORE allocating: a header may
    // declare any shape, and only the file's bytes bound what is real. The product of the
    // nonzero sizes is bounded too, since torch's own overflow checks (zero-element tensors
    // included) raise a plain c10::Error.
    const uint64_t have = off[1] - off[0];
    const auto item = static_cast<uint64_t>(c10::elementSize(dtype));
    const uint64_t max_elements = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / item;
    uint64_t elements = 1;  // of the nonzero sizes
    bool empty = false;
    for (const int64_t d : shape) {
      if (d == 0) {
        empty = true;
        continue;
      }
      TORCH_CHECK_VALUE(elements <= max_elements / static_cast<uint64_t>(d), fn, path, ": tensor '",
                        name, "': shape: expected at most ", max_elements, " elements, got ",
                        c10::IntArrayRef(shape));
      elements *= static_cast<uint64_t>(d);
    }
    const uint64_t need = empty ? 0 : elements * item;
    TORCH_CHECK_VALUE(need == have, fn, path, ": tensor '", name, "': expected ", need,
                      " bytes for its shape ", c10::IntArrayRef(shape), ", got ", have);
    at::Tensor out = at::empty(shape, dtype);
    in.seekg(static_cast<std::streamoff>(data_start + off[0]));
    TORCH_CHECK_VALUE(
        in.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(need)), fn, path,
        ": tensor '", name, "': cannot read its ", need, " bytes");
    return out;
  };
  Graph g;
  g.name = path;
  g.edge_index = load("edge_index");
  TORCH_CHECK_VALUE(g.edge_index.defined(), fn, path, ": edge_index: expected a tensor, got none");
  TORCH_CHECK_VALUE(g.edge_index.dim() == 2 && g.edge_index.size(0) == 2, fn, path,
                    ": edge_index: expected shape [2, E], got ", g.edge_index.sizes());
  TORCH_CHECK_VALUE(!at::isFloatingType(g.edge_index.scalar_type()), fn, path,
                    ": edge_index: expected dtype I64 or I32, got ", g.edge_index.scalar_type());
  g.edge_index = g.edge_index.to(at::kLong);
  g.edge_attr = load("edge_attr");
  if (g.edge_attr.defined()) {
    TORCH_CHECK_VALUE(at::isFloatingType(g.edge_attr.scalar_type()), fn, path,
                      ": edge_attr: expected a floating dtype, got ", g.edge_attr.scalar_type());
    TORCH_CHECK_VALUE(g.edge_attr.dim() >= 1 && g.edge_attr.size(0) == g.edge_index.size(1), fn,
                      path, ": edge_attr: expected ", g.edge_index.size(1), " rows, got ",
                      g.edge_attr.sizes());
  }
  const auto& md = meta.contains("__metadata__") ? meta["__metadata__"] : nlohmann::json::object();
  auto count = [&](const char* key) -> int64_t {
    TORCH_CHECK_VALUE(md.contains(key), fn, path, ": __metadata__.", key,
                      ": expected a node count, got none");
    const auto& v = md[key];
    // safetensors metadata values are strings; a bare integer is accepted too.
    const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    size_t used = 0;
    int64_t n = -1;
    try {
      n = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TORCH_CHECK_VALUE(used == text.size() && used > 0 && n >= 0, fn, path, ": __metadata__.", key,
                      ": expected a node count (an integer >= 0), got ", v.dump());
    return n;
  };
  g.num_src = count("num_src");
  g.num_dst = count("num_dst");
  if (g.edge_index.size(1) > 0) {
    const int64_t max_src = g.edge_index[0].max().item<int64_t>();
    const int64_t max_dst = g.edge_index[1].max().item<int64_t>();
    const int64_t min_id = g.edge_index.min().item<int64_t>();
    TORCH_CHECK_VALUE(min_id >= 0 && max_src < g.num_src && max_dst < g.num_dst, fn, path,
                      ": edge_index: expected ids in [0, ", g.num_src, ") x [0, ", g.num_dst,
                      "), got range [", min_id, ", max src ", max_src, ", max dst ", max_dst, "]");
  }
  return g;
}

}  // namespace

Graph load_safetensors_graph(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK_VALUE(in, "graphshard::study::load_safetensors_graph: ", path,
                    ": cannot open the file");
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  return read_safetensors_graph(in, file_size, path);
}

Graph parse_safetensors_graph(const std::string& bytes, const std::string& origin) {
  std::istringstream in(bytes, std::ios::binary);
  return read_safetensors_graph(in, bytes.size(), origin);
}

}  // namespace graphshard::study
