#include "study_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "bounded_json.h"
#include "graphshard/partition_scheme.h"

namespace graphshard::study {
namespace {

using json = nlohmann::json;

// A JSON object being read, with its key path for messages and the keys it accepts.
class Reader {
 public:
  Reader(const json& j, std::string path, std::string origin)
      : j_(j), path_(std::move(path)), origin_(std::move(origin)) {
    if (!j_.is_object()) fail(path_.empty() ? "(top level)" : path_, "an object", j_);
  }

  [[noreturn]] void fail(const std::string& key, const std::string& expected,
                         const json& got) const {
    std::string shown = got.dump();
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    TORCH_CHECK_VALUE(false, "graphshard study config ", origin_, ": ", key, ": expected ",
                      expected, ", got ", shown);
  }
  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool has(const std::string& key) {
    seen_.insert(key);
    return j_.contains(key);
  }
  const json& get(const std::string& key) {
    if (!has(key)) fail(at(key), "a value (required key)", json());
    return j_.at(key);
  }

  std::string string(const std::string& key, const std::set<std::string>& allowed = {}) {
    const json& v = get(key);
    if (!v.is_string()) fail(at(key), "a string", v);
    const auto s = v.get<std::string>();
    if (!allowed.empty() && !allowed.count(s)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
      fail(at(key), "one of " + list, v);
    }
    return s;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) {
    const json& v = get(key);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      fail(at(key), "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", v);
    }
    return v.get<int64_t>();
  }
  double number(const std::string& key, double lo, double hi) {
    const json& v = get(key);
    if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
      std::ostringstream os;
      os << "a number in [" << lo << ", " << hi << "]";
      fail(at(key), os.str(), v);
    }
    return v.get<double>();
  }
  // One name or a non-empty array of distinct names, each from `allowed`.
  std::vector<std::string> names(const std::string& key, const std::vector<std::string>& allowed) {
    const json& v = get(key);
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
    const std::string expected = "one of " + list + ", or a non-empty array of distinct ones";
    const json items = v.is_array() ? v : json::array({v});
    if (items.empty()) fail(at(key), expected, v);
    std::vector<std::string> out;
    for (const auto& item : items) {
      if (!item.is_string()) fail(at(key), expected, v);
      const auto s = item.get<std::string>();
      if (std::find(allowed.begin(), allowed.end(), s) == allowed.end() ||
          std::find(out.begin(), out.end(), s) != out.end()) {
        fail(at(key), expected, v);
      }
      out.push_back(s);
    }
    return out;
  }
  bool boolean(const std::string& key) {
    const json& v = get(key);
    if (!v.is_boolean()) fail(at(key), "true or false", v);
    return v.get<bool>();
  }
  Reader object(const std::string& key) { return Reader(get(key), at(key), origin_); }

  // Every key present must have been read: unknown keys are errors, not silently ignored.
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.count(it.key())) {
        std::string known;
        for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
        TORCH_CHECK_VALUE(false, "graphshard study config ", origin_, ": ", at(it.key()),
                          ": unknown key (known here: ", known, ")");
      }
    }
  }
  const std::string& origin() const { return origin_; }

 private:
  const json& j_;
  std::string path_, origin_;
  std::set<std::string> seen_;
};

GraphSpec parse_graph(Reader r) {
  GraphSpec g;
  g.kind = r.string("kind", {"encoder", "decoder", "processor", "random", "file"});
  // Declare every key this section may hold, so finish() names the right ones.
  for (const char* k : {"grid_n", "mesh_refinement", "knn", "radius_factor", "num_src", "num_dst",
                        "avg_degree", "seed", "path"})
    r.has(k);
  auto forbid = [&](const char* key) {
    if (r.has(key)) r.fail(r.at(key), "no such key for kind '" + g.kind + "'", r.get(key));
  };
  if (g.kind == "encoder" || g.kind == "decoder") {
    g.grid_n = r.integer("grid_n", 1, 2560);
    g.mesh_refinement = static_cast<int>(r.integer("mesh_refinement", 0, 9));
  }
  if (g.kind == "processor")
    g.mesh_refinement = static_cast<int>(r.integer("mesh_refinement", 0, 9));
  if (g.kind == "encoder") {
    const bool has_knn = r.has("knn"), has_radius = r.has("radius_factor");
    if (has_knn == has_radius) {
      r.fail(r.at("knn"), "exactly one of knn and radius_factor for an encoder",
             has_knn ? r.get("knn") : nlohmann::json());
    }
    if (has_knn) g.knn = static_cast<int>(r.integer("knn", 1, 256));
    if (has_radius) g.radius_factor = r.number("radius_factor", 0.01, 10.0);
  } else if (g.kind == "decoder") {
    g.knn = r.has("knn") ? static_cast<int>(r.integer("knn", 1, 256)) : 3;
    forbid("radius_factor");
  } else {
    forbid("knn");
    forbid("radius_factor");
  }
  if (g.kind != "encoder" && g.kind != "decoder") forbid("grid_n");
  if (g.kind == "random" || g.kind == "file") forbid("mesh_refinement");
  if (g.kind == "random") {
    g.num_src = r.integer("num_src", 1, int64_t{1} << 34);
    g.num_dst = r.integer("num_dst", 0, int64_t{1} << 34);
    g.avg_degree = r.number("avg_degree", 0, 1024);
    g.seed = r.has("seed") ? static_cast<uint64_t>(r.integer("seed", 0, int64_t{1} << 62)) : 0;
  } else {
    for (const char* k : {"num_src", "num_dst", "avg_degree", "seed"}) forbid(k);
  }
  if (g.kind == "file") {
    g.path = r.string("path");
  } else {
    forbid("path");
  }
  r.finish();
  return g;
}

}  // namespace

StudyConfig parse_study_config(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = parse_bounded_json(text);
  } catch (const std::exception& e) {
    TORCH_CHECK_VALUE(false, "graphshard study config ", origin, ": expected JSON, got a parse ",
                      "error: ", e.what());
  }
  Reader r(j, "", origin);
  StudyConfig c;
  c.name = r.string("name");
  c.graph = parse_graph(r.object("graph"));
  if (r.has("features")) {
    Reader f = r.object("features");
    if (f.has("channels")) c.channels = f.integer("channels", 1, 65536);
    if (f.has("edge_channels")) c.edge_channels = f.integer("edge_channels", 1, 65536);
    if (f.has("dtype")) {
      const auto d = f.string("dtype", {"float16", "bfloat16", "float32", "float64"});
      c.dtype = d == "float16"    ? at::kHalf
                : d == "bfloat16" ? at::kBFloat16
                : d == "float32"  ? at::kFloat
                                  : at::kDouble;
    }
    f.finish();
  }
  if (r.has("inputs")) {
    Reader in = r.object("inputs");
    if (in.has("src")) c.src_sharded = in.string("src", {"sharded", "replicated"}) == "sharded";
    if (in.has("dst")) c.dst_sharded = in.string("dst", {"sharded", "replicated"}) == "sharded";
    in.finish();
  }
  const json& ws = r.get("world_sizes");
  if (!ws.is_array() || ws.empty()) r.fail("world_sizes", "a non-empty array of integers", ws);
  for (size_t i = 0; i < ws.size(); ++i) {
    if (!ws[i].is_number_integer() || ws[i].get<int64_t>() < 1 || ws[i].get<int64_t>() > 4096) {
      r.fail("world_sizes[" + std::to_string(i) + "]", "an integer in [1, 4096]", ws[i]);
    }
    c.world_sizes.push_back(ws[i].get<int>());
  }
  if (r.has("engine")) c.engine = r.string("engine", {"sim", "gloo"});
  if (r.has("plan_only")) c.plan_only = r.boolean("plan_only");
  if (r.has("repeats")) c.repeats = static_cast<int>(r.integer("repeats", 1, 1000));
  if (r.has("warmup")) c.warmup = static_cast<int>(r.integer("warmup", 0, 100));
  if (r.has("verify")) c.verify = r.boolean("verify");
  if (r.has("partition")) {
    Reader p = r.object("partition");
    std::vector<std::string> all;
    for (const auto s : all_partition_schemes()) all.push_back(to_string(s));
    c.schemes = p.names("scheme", all);
    if (p.has("seed")) c.partition_seed = static_cast<uint64_t>(p.integer("seed", 0, int64_t{1} << 30));
    // hilbert and latlon_boxes place nodes by their coordinates: generated graphs have them.
    const bool has_coordinates = c.graph.kind != "random" && c.graph.kind != "file";
    for (const auto& s : c.schemes) {
      if (!has_coordinates && scheme_needs_coordinates(partition_scheme_from_string(s))) {
        p.fail("partition.scheme",
               "schemes a '" + c.graph.kind + "' graph supports (" + s +
                   " needs node coordinates: encoder, decoder and processor graphs have them)",
               j.at("partition").at("scheme"));
      }
    }
    p.finish();
  }
  if (r.has("src_exchange")) c.src_exchanges = r.names("src_exchange", {"all_gather", "halo"});
  r.finish();
  if (!c.plan_only) {
    for (size_t i = 0; i < c.world_sizes.size(); ++i) {
      if (c.world_sizes[i] > 64) {
        r.fail("world_sizes[" + std::to_string(i) + "]",
               "at most 64 ranks when features run (set plan_only for more)", ws[i]);
      }
    }
  }
  return c;
}

StudyConfig load_study_config(const std::string& path) {
  std::ifstream in(path);
  TORCH_CHECK_VALUE(in, "graphshard study config ", path, ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  StudyConfig c = parse_study_config(ss.str(), path);
  // A graph file named relative to its config, as one would keep them side by side.
  if (c.graph.kind == "file" && std::filesystem::path(c.graph.path).is_relative()) {
    c.graph.path = (std::filesystem::path(path).parent_path() / c.graph.path).string();
  }
  return c;
}

}  // namespace graphshard::study
