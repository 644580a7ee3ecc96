// Graphs loaded from safetensors files: the format export_graph.py writes, dst-sorting of
// unsorted files (attributes follow their edges), and clear errors for malformed files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "study_config.h"
#include "study_run.h"

namespace graphshard::study {
namespace {

namespace fs = std::filesystem;

struct Entry {
  std::string name, dtype;
  at::Tensor data;
};

// Writes a safetensors file; `header_patch` may overwrite header fields to make it malformed.
void write_safetensors(const fs::path& path, const std::vector<Entry>& entries,
                       const nlohmann::json& metadata, const nlohmann::json& header_patch = {}) {
  nlohmann::json header;
  header["__metadata__"] = metadata;
  uint64_t off = 0;
  std::string blob;
  for (const auto& e : entries) {
    const at::Tensor t = e.data.contiguous();
    const auto n = static_cast<uint64_t>(t.nbytes());
    header[e.name] = {
        {"dtype", e.dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {off, off + n}}};
    blob.append(static_cast<const char*>(t.data_ptr()), n);
    off += n;
  }
  if (!header_patch.is_null()) header.merge_patch(header_patch);
  const std::string text = header.dump();
  const uint64_t len = text.size();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(&len), 8);
  f << text << blob;
}

class SafetensorsGraph : public ::testing::Test {
 protected:
  fs::path dir =
      fs::temp_directory_path() / ("graphshard-file-test-" + std::to_string(::getpid()) + "-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override {
    // Not fs::remove_all: the symbol resolves into libtorch.so, whose copy crashes (torch 2.11).
    for (const auto& e : fs::directory_iterator(dir)) fs::remove(e.path());
    fs::remove(dir);
  }

  // Unsorted edges with attributes that encode their edge (src * 100 + dst).
  std::vector<Entry> unsorted_graph() const {
    const at::Tensor ei = at::tensor({4, 0, 2, 1, 3, 0, 1, 0, 2, 1, 0, 2}, at::kLong).view({2, 6});
    const at::Tensor attr = (ei[0] * 100 + ei[1]).to(at::kFloat).unsqueeze(1);
    return {{"edge_index", "I64", ei}, {"edge_attr", "F32", attr}};
  }

  void expect_error(const std::vector<Entry>& entries, const nlohmann::json& meta,
                    const nlohmann::json& patch, const std::string& needle) {
    const fs::path p = dir / "bad.safetensors";
    write_safetensors(p, entries, meta, patch);
    try {
      load_safetensors_graph(p.string());
      ADD_FAILURE() << "no error; wanted " << needle;
    } catch (const c10::ValueError& e) {
      const std::string msg = e.what_without_backtrace();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg << "\nwanted: " << needle;
    }
  }
};

const nlohmann::json kMeta = {{"num_src", "6"}, {"num_dst", "3"}};

TEST_F(SafetensorsGraph, StudyGraphIsDstSortedWithAttributesFollowingTheirEdges) {
  write_safetensors(dir / "g.safetensors", unsorted_graph(), kMeta);
  // Relative paths in a config resolve against the config's folder.
  std::ofstream(dir / "study.json") << R"({"name": "file", "world_sizes": [1, 2],
    "graph": {"kind": "file", "path": "g.safetensors"}})";
  const StudyConfig c = load_study_config((dir / "study.json").string());
  EXPECT_EQ(fs::path(c.graph.path), dir / "g.safetensors");
  const Graph g = build_graph(c.graph);
  EXPECT_EQ(g.num_src, 6);
  EXPECT_EQ(g.num_dst, 3);
  // Stable sort by destination of (4,1) (0,0) (2,2) (1,1) (3,0) (0,2).
  const at::Tensor want = at::tensor({0, 3, 4, 1, 2, 0, 0, 0, 1, 1, 2, 2}, at::kLong).view({2, 6});
  EXPECT_TRUE(at::equal(g.edge_index, want)) << g.edge_index;
  EXPECT_TRUE(at::equal(g.edge_attr.squeeze(1), (want[0] * 100 + want[1]).to(at::kFloat)));
}

TEST_F(SafetensorsGraph, Int32EdgeIndexIsWidened) {
  auto entries = unsorted_graph();
  entries[0] = {"edge_index", "I32", entries[0].data.to(at::kInt)};
  write_safetensors(dir / "g.safetensors", entries, {{"num_src", 6}, {"num_dst", 3}});
  const Graph g = load_safetensors_graph((dir / "g.safetensors").string());
  EXPECT_EQ(g.edge_index.scalar_type(), at::kLong);
  EXPECT_TRUE(at::equal(g.edge_index, unsorted_graph()[0].data));
}

TEST_F(SafetensorsGraph, MalformedFilesRaiseNamingTheFileAndTheField) {
  const auto good = unsorted_graph();
  expect_error(good, {{"num_src", "6"}}, {}, "num_dst");
  expect_error(good, {{"num_src", "six"}, {"num_dst", "3"}}, {}, "num_src");
  expect_error(good, {{"num_src", "4"}, {"num_dst", "3"}}, {}, "edge_index: expected ids in");
  expect_error(good, kMeta, {{"edge_index", {{"dtype", "U8"}}}}, "dtype: expected one of");
  expect_error(good, kMeta, {{"edge_index", {{"shape", {2, 7}}}}}, "bytes for its shape");
  expect_error(good, kMeta, {{"edge_index", {{"shape", "two"}}}}, "edge_index");
  expect_error(good, kMeta, {{"edge_attr", {{"data_offsets", {0, 1 << 20}}}}}, "data_offsets");
  expect_error({good[1]}, kMeta, {}, "edge_index: expected a tensor");
  expect_error({{"edge_index", "F32", good[0].data.to(at::kFloat)}}, kMeta, {},
               "edge_index: expected dtype I64 or I32");
  expect_error({good[0], {"edge_attr", "F32", at::zeros({5, 1})}}, kMeta, {},
               "edge_attr: expected 6 rows");
  // A header length beyond the end of the file.
  const fs::path p = dir / "short.safetensors";
  std::ofstream(p, std::ios::binary) << std::string("\xff\xff\x00\x00\x00\x00\x00\x00{}", 10);
  EXPECT_THROW(load_safetensors_graph(p.string()), c10::ValueError);
}

}  // namespace
}  // namespace graphshard::study
