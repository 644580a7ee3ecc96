// The fuzz corpora (props/robust/fuzz/corpus) as unit tests of every build, sanitizers or not: files
// named valid-* are accepted; every other file (malformed seeds, and the inputs that crashed
// the loaders before their fixes, named regress-*) raises c10::ValueError, never another
// exception, and never an allocation of the size a header merely declares.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include "study_config.h"
#include "weather_graphs.h"

namespace graphshard::study {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> corpus(const std::string& kind) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(GRAPHSHARD_FUZZ_CORPUS) / kind))
    files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

bool named_valid(const fs::path& p) {
  return p.filename().string().rfind("valid-", 0) == 0;
}

// Runs load on every file of a corpus: valid-* must succeed, the others must raise a
// c10::ValueError naming the file. Returns how many files it ran.
size_t expect_corpus_loads_or_raises(const std::string& kind,
                                     const std::function<void(const fs::path&)>& load) {
  const std::vector<fs::path> files = corpus(kind);
  for (const fs::path& p : files) {
    SCOPED_TRACE(p.string());
    try {
      load(p);
      EXPECT_TRUE(named_valid(p)) << "accepted a malformed input";
    } catch (const c10::ValueError& e) {
      EXPECT_FALSE(named_valid(p)) << e.what_without_backtrace();
      EXPECT_NE(std::string(e.what_without_backtrace()).find(p.string()), std::string::npos)
          << "the error does not name the file: " << e.what_without_backtrace();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a c10::ValueError: " << e.what();
    }
  }
  return files.size();
}

TEST(FuzzCorpus, StudyConfigsParseOrRaiseValueErrorNamingTheFile) {
  const size_t n = expect_corpus_loads_or_raises(
      "study_config", [](const fs::path& p) { load_study_config(p.string()); });
  EXPECT_GE(n, 10u);
}

TEST(FuzzCorpus, GraphFilesLoadOrRaiseValueErrorNamingTheFile) {
  const size_t n = expect_corpus_loads_or_raises(
      "graph_file", [](const fs::path& p) { load_safetensors_graph(p.string()); });
  EXPECT_GE(n, 10u);
}

// The in-memory loader the fuzzer drives agrees with the file loader on every input.
TEST(FuzzCorpus, InMemoryGraphLoaderAgreesWithTheFileLoader) {
  for (const fs::path& p : corpus("graph_file")) {
    SCOPED_TRACE(p.string());
    std::ifstream in(p, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (!named_valid(p)) {
      EXPECT_THROW(parse_safetensors_graph(bytes, p.string()), c10::ValueError);
      continue;
    }
    const Graph a = load_safetensors_graph(p.string());
    const Graph b = parse_safetensors_graph(bytes, p.string());
    EXPECT_EQ(a.num_src, b.num_src);
    EXPECT_EQ(a.num_dst, b.num_dst);
    EXPECT_TRUE(at::equal(a.edge_index, b.edge_index));
    EXPECT_EQ(a.edge_attr.defined(), b.edge_attr.defined());
    if (a.edge_attr.defined()) EXPECT_TRUE(at::equal(a.edge_attr, b.edge_attr));
  }
}

std::string graph_error(const std::string& file) {
  const fs::path p = fs::path(GRAPHSHARD_FUZZ_CORPUS) / "graph_file" / file;
  try {
    load_safetensors_graph(p.string());
  } catch (const c10::ValueError& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return std::string("not a c10::ValueError: ") + e.what();
  }
  return "no error";
}

// A header declaring [2, 2^40] int64 (16 TiB) over 48 bytes of data: the loader used to
// allocate the declared shape before comparing its size with the data range.
TEST(FuzzRegressions, HugeDeclaredShapeFailsOnItsSizeBeforeAnyAllocation) {
  EXPECT_NE(graph_error("regress-huge-shape.safetensors").find("bytes for its shape"),
            std::string::npos);
}

// Sizes whose product overflows int64 (with a zero size: zero elements): torch's own overflow
// check raised a plain c10::Error.
TEST(FuzzRegressions, ShapeWhoseSizesOverflowIsAValueError) {
  EXPECT_NE(graph_error("regress-overflowing-shape.safetensors").find("shape: expected at most"),
            std::string::npos);
}

// data_offsets near 2^64: data_start + offset wrapped around into the header, whose bytes were
// then loaded as edge ids.
TEST(FuzzRegressions, DataOffsetsThatWrapAroundAreOutsideTheFile) {
  EXPECT_NE(graph_error("regress-wrapping-offsets.safetensors").find("data_offsets"),
            std::string::npos);
}

// Float sizes and offsets (1e300, -1.5e300): converted with an out-of-range static_cast
// (undefined behaviour, reported by UBSan).
TEST(FuzzRegressions, FloatSizesAndOffsetsAreRefused) {
  for (const char* file :
       {"regress-float-shape.safetensors", "regress-negative-float-offset.safetensors"}) {
    EXPECT_NE(graph_error(file).find("expected an object with dtype"), std::string::npos) << file;
  }
}

// A value nested a million levels deep (2 MB, too big for the corpus, which holds a 100-level
// one): the error message dumped it recursively and overflowed the stack. Now the parse stops
// at kMaxJsonDepth levels.
std::string nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

template <typename F>
std::string value_error_of(F&& f) {
  try {
    f();
  } catch (const c10::ValueError& e) {
    return e.what_without_backtrace();
  }
  return "no error";
}

TEST(FuzzRegressions, DeeplyNestedConfigIsAValueErrorNotAStackOverflow) {
  const std::string text = R"({"name": )" + nested(1000000) + "}";
  EXPECT_NE(value_error_of([&] { parse_study_config(text, "deep.json"); }).find("nesting deeper"),
            std::string::npos);
}

TEST(FuzzRegressions, DeeplyNestedGraphHeaderIsAValueErrorNotAStackOverflow) {
  const std::string header = R"({"edge_index": )" + nested(1000000) + "}";
  const uint64_t len = header.size();
  const std::string bytes = std::string(reinterpret_cast<const char*>(&len), 8) + header;
  EXPECT_NE(value_error_of([&] {
              parse_safetensors_graph(bytes, "deep.safetensors");
            }).find("nesting deeper"),
            std::string::npos);
}

}  // namespace
}  // namespace graphshard::study
