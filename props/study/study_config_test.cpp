// Study configs are validated on load with errors that name the key path.
#include <gtest/gtest.h>

#include "study_config.h"

namespace graphshard::study {
namespace {

void expect_error(const std::string& text, const std::string& needle) {
  try {
    parse_study_config(text, "test.json");
    ADD_FAILURE() << "no error for " << text;
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message: " << e.what() << "\nwanted: " << needle;
  }
}

const char* kValid = R"({"name": "t", "world_sizes": [1, 2],
  "graph": {"kind": "encoder", "grid_n": 8, "mesh_refinement": 2, "knn": 4},
  "features": {"channels": 16, "dtype": "float64"}, "inputs": {"src": "replicated"}})";

TEST(StudyConfig, ParsesAValidConfig) {
  const StudyConfig c = parse_study_config(kValid, "test.json");
  EXPECT_EQ(c.name, "t");
  EXPECT_EQ(c.graph.kind, "encoder");
  EXPECT_EQ(c.graph.grid_n, 8);
  EXPECT_EQ(c.graph.knn, 4);
  EXPECT_EQ(c.channels, 16);
  EXPECT_EQ(c.dtype, at::kDouble);
  EXPECT_FALSE(c.src_sharded);
  EXPECT_TRUE(c.dst_sharded);
  EXPECT_EQ(c.world_sizes, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.engine, "sim");
  EXPECT_FALSE(c.verify.has_value());
}

TEST(StudyConfig, UnknownKeysAreErrorsNamingTheirPath) {
  expect_error(R"({"name": "t", "world_sizes": [1], "graph": {"kind": "processor",
    "mesh_refinement": 2, "colour": 1}})",
               "graph.colour: unknown key");
  expect_error(R"({"name": "t", "world_sizes": [1], "wordl_sizes": [2],
    "graph": {"kind": "processor", "mesh_refinement": 2}})",
               "wordl_sizes: unknown key");
}

TEST(StudyConfig, WrongTypesAndRangesNameTheKeyAndTheExpectation) {
  expect_error(R"({"name": "t", "world_sizes": [1], "graph": {"kind": "processor",
    "mesh_refinement": 12}})",
               "graph.mesh_refinement: expected an integer in [0, 9], got 12");
  expect_error(R"({"name": "t", "world_sizes": [1, "two"], "graph": {"kind": "processor",
    "mesh_refinement": 1}})",
               "world_sizes[1]: expected an integer in [1, 4096]");
  expect_error(R"({"name": 3, "world_sizes": [1], "graph": {"kind": "processor",
    "mesh_refinement": 1}})",
               "name: expected a string, got 3");
  expect_error(R"({"name": "t", "world_sizes": [1], "graph": {"kind": "torus"}})",
               "graph.kind: expected one of");
  expect_error(R"({"name": "t", "world_sizes": [1], "graph": {"kind": "random", "num_src": 5,
    "num_dst": 5, "avg_degree": 2, "knn": 3}})",
               "graph.knn: expected no such key");
  expect_error(R"({"name": "t", "world_sizes": [128], "graph": {"kind": "processor",
    "mesh_refinement": 1}})",
               "set plan_only");
  expect_error(R"({"name": "t", "graph": {"kind": "processor", "mesh_refinement": 1}})",
               "world_sizes: expected a value (required key)");
  expect_error("{not json", "expected JSON");
}

TEST(StudyConfig, PartitionSchemesAndSourceExchanges) {
  const StudyConfig d = parse_study_config(kValid, "test.json");
  EXPECT_EQ(d.schemes, (std::vector<std::string>{"contiguous"}));
  EXPECT_EQ(d.src_exchanges, (std::vector<std::string>{"all_gather"}));
  EXPECT_EQ(d.num_variants(), 1u);
  const StudyConfig c = parse_study_config(
      R"({"name": "t", "world_sizes": [2], "graph": {"kind": "processor", "mesh_refinement": 1},
          "partition": {"scheme": ["metis", "hilbert"], "seed": 4}, "src_exchange": "halo"})",
      "test.json");
  EXPECT_EQ(c.schemes, (std::vector<std::string>{"metis", "hilbert"}));
  EXPECT_EQ(c.partition_seed, 4u);
  EXPECT_EQ(c.src_exchanges, (std::vector<std::string>{"halo"}));
  EXPECT_EQ(c.num_variants(), 2u);
  const char* head = R"({"name": "t", "world_sizes": [2], )";
  const std::string processor = R"("graph": {"kind": "processor", "mesh_refinement": 1}, )";
  expect_error(std::string(head) + processor + R"("partition": {"scheme": "kmeans"}})",
               "partition.scheme: expected one of contiguous | edge_balanced");
  expect_error(std::string(head) + processor + R"("partition": {"scheme": []}})",
               "partition.scheme: expected one of");
  expect_error(std::string(head) + processor + R"("partition": {"scheme": ["metis", "metis"]}})",
               "a non-empty array of distinct ones");
  expect_error(std::string(head) + processor + R"("partition": {"schema": "metis"}})",
               "partition.scheme: expected a value (required key)");
  expect_error(std::string(head) + processor + R"("src_exchange": "broadcast"})",
               "src_exchange: expected one of all_gather | halo");
  expect_error(std::string(head) +
                   R"("graph": {"kind": "random", "num_src": 5, "num_dst": 5, "avg_degree": 2},
                       "partition": {"scheme": ["contiguous", "latlon_boxes"]}})",
               "latlon_boxes needs node coordinates");
}

}  // namespace
}  // namespace graphshard::study
