// The catalogue's fixed instances and the runners that check a case on simulated ranks or on
// one rank of a real group. The violations themselves are in badinput_primitive_cases.cpp,
// badinput_graph_cases.cpp, badinput_graph_shard_cases.cpp and badinput_shapes_cases.cpp.
#include "badinput_catalogue.h"

#include <chrono>
#include <exception>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <typeinfo>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <c10/util/Type.h>

#include "counting_comm.h"
#include "graphshard/graph.h"
#include "sim.h"

namespace graphshard::props {

std::string BadInputCase::name() const {
  return function + " / " + argument + " / " + violation;
}

std::string describe(WrongLength l) {
  switch (l) {
    case WrongLength::kOneMore:
      return "W + 1 entries";
    case WrongLength::kOneLess:
      return "W - 1 entries";
    case WrongLength::kEmpty:
      break;
  }
  return "an empty list";
}

std::vector<int64_t> with_length(std::vector<int64_t> s, WrongLength l) {
  switch (l) {
    case WrongLength::kOneMore:
      s.push_back(0);
      break;
    case WrongLength::kOneLess:
      if (s.size() >= 2) s[s.size() - 2] += s.back();
      if (!s.empty()) s.pop_back();
      break;
    case WrongLength::kEmpty:
      s.clear();
      break;
  }
  return s;
}

namespace {

// A simulated rank that waits this long in a collective has been left behind: far more than
// any case needs, far less than a test's time limit.
constexpr std::chrono::milliseconds kSimTimeout{2000};

// The process-wide debug-check switch, set for one case and restored after it.
class DebugChecksFor {
 public:
  explicit DebugChecksFor(bool on) : saved_(debug_checks()) { set_debug_checks(on); }
  ~DebugChecksFor() { set_debug_checks(saved_); }
  DebugChecksFor(const DebugChecksFor&) = delete;
  DebugChecksFor& operator=(const DebugChecksFor&) = delete;

 private:
  bool saved_;
};

std::string type_name(const std::exception& e) {
  return c10::demangle(typeid(e).name());
}

// This rank's side of a case: build, snapshot, call, check 1, 2 and 5. "" when all hold.
std::string run_on_rank(const BadInputCase& c, const CommPtr& comm, bool expect_error) {
  BadCall call;
  try {
    call = c.make(comm, comm->rank());
  } catch (const std::exception& e) {
    return "building the inputs failed: " + type_name(e) + ": " + e.what();
  }
  std::vector<at::Tensor> before;
  for (const at::Tensor& t : call.inputs) {
    before.push_back(t.defined() ? t.detach().clone() : at::Tensor());
  }
  std::string problem;
  try {
    call.call();
    if (expect_error) problem = "accepted the bad input (no error raised)";
  } catch (const c10::ValueError& e) {
    const std::string msg = e.what_without_backtrace();
    const std::string prefix = "graphshard::" + c.function + ": " + c.argument;
    const std::string rank = "(rank " + std::to_string(call.message_rank) + ")";
    if (!expect_error) {
      problem = "raised where W = 1 must accept the call: " + msg;
    } else if (msg.find(prefix) == std::string::npos || msg.find(rank) == std::string::npos) {
      problem = "the message does not name '" + prefix + "' and '" + rank + "': " + msg;
    }
  } catch (const c10::Error& e) {
    problem =
        "raised " + type_name(e) + " instead of c10::ValueError: " + e.what_without_backtrace();
  } catch (const std::exception& e) {
    problem = "raised " + type_name(e) + " instead of c10::ValueError: " + e.what();
  } catch (...) {
    problem = "raised a non-standard exception";
  }
  for (size_t i = 0; i < before.size(); ++i) {
    const at::Tensor& now = call.inputs[i];
    if (before[i].defined() && !at::equal(now.detach(), before[i])) {
      problem += (problem.empty() ? "" : "; ") + std::string("input ") + std::to_string(i) +
                 " was modified";
    }
  }
  return problem;
}

bool expects_error(const BadInputCase& c, int world_size) {
  return !(c.accepted_at_w1 && world_size == 1);
}

}  // namespace

std::string run_case_on_sim(const BadInputCase& c, int world_size) {
  if (world_size < c.min_world) return "";
  const bool expect_error = expects_error(c, world_size);
  DebugChecksFor debug(c.debug_checks);
  const auto world = sim::SimWorld::create(world_size, kSimTimeout);
  std::vector<std::string> problems(world_size);
  const auto outcomes = sim::run_ranks_collect(world, [&](const CommPtr& comm) {
    problems[comm->rank()] = run_on_rank(c, comm, expect_error);
  });
  const auto ops = world->op_counts();
  std::ostringstream report;
  for (int r = 0; r < world_size; ++r) {
    if (!outcomes[r].ok) report << "\n  rank " << r << ": escaped: " << outcomes[r].error;
    if (!problems[r].empty()) report << "\n  rank " << r << ": " << problems[r];
    if (ops[r] != 0) {
      report << "\n  rank " << r << ": entered " << ops[r]
             << " collective(s); the arguments must be checked before any communication";
    }
  }
  const std::string s = report.str();
  return s.empty() ? s : c.name() + " (sim, W=" + std::to_string(world_size) + "):" + s;
}

std::string run_case_on_comm(const BadInputCase& c, const CommPtr& comm) {
  const int w = comm->size(), r = comm->rank();
  if (w < c.min_world) return "";
  const auto counting = std::make_shared<study::CountingCommunicator>(comm);
  std::string mine;
  {
    DebugChecksFor debug(c.debug_checks);
    mine = run_on_rank(c, counting, expects_error(c, w));
  }
  int64_t calls = 0;
  for (const auto& [op, traffic] : counting->traffic()) calls += traffic.calls;
  if (calls != 0) {
    mine += (mine.empty() ? "" : "; ") + std::string("completed ") + std::to_string(calls) +
            " collective(s); the arguments must be checked before any communication";
  }
  // One all-reduce of the failure flags: the ranks leave the case together and all know. If a
  // rank is still in a collective of the case, the group's timeout ends the wait.
  at::Tensor failed = at::zeros({w}, at::kLong);
  failed[r] = mine.empty() ? 0 : 1;
  try {
    comm->all_reduce_sum(failed);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        c.name() + ": the ranks fell out of step (" + e.what() + ")" +
        (mine.empty() ? std::string() : "; rank " + std::to_string(r) + ": " + mine));
  }
  if (failed.sum().item<int64_t>() == 0) return "";
  std::string ranks;
  for (int q = 0; q < w; ++q) {
    if (failed[q].item<int64_t>() != 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(q);
  }
  return c.name() + " (" + comm->engine() + ", W=" + std::to_string(w) + ") failed on ranks [" +
         ranks + "]" + (mine.empty() ? std::string() : "; rank " + std::to_string(r) + ": " + mine);
}

// ---- The fixed instances ---------------------------------------------------------------------

namespace {

// Uneven sizes with a zero, cycled to W entries.
std::vector<int64_t> cycled(std::vector<int64_t> pattern, int world_size) {
  std::vector<int64_t> s(world_size);
  for (int q = 0; q < world_size; ++q) s[q] = pattern[q % pattern.size()];
  return s;
}

// Two primitive cases: float32 requiring grad (the autograd path), contiguous, negative dims; and
// int64 (no autograd), a strided view, non-negative dims.
std::vector<std::pair<std::string, PrimCase>> prim_variants(int world_size) {
  PrimCase a;
  a.dtype = DType{at::kFloat};
  a.shape = {2, 3, 4};
  a.dim = -2;
  a.sizes = cycled({2, 0, 3, 1}, world_size);
  a.dim2 = -3;
  a.sizes2 = cycled({1, 2, 0, 2}, world_size);
  a.flag = true;
  a.seed = 7;
  PrimCase b = a;
  b.dtype = DType{at::kLong};
  b.dim = 0;
  b.dim2 = 2;
  b.layout.strided = true;
  b.flag = false;
  b.seed = 11;
  return {{"f32", a}, {"i64 strided", b}};
}

// A bipartite graph (5 sources, 6 destinations, 10 edges, dst-sorted, one hub destination, a
// repeated source) whose balanced destination parts all hold edges for W <= 4; as int64 with the
// sorted flags on, and as int32 with them off.
std::vector<std::pair<std::string, GraphFixture>> graph_variants() {
  const at::Tensor ei = at::tensor({0, 3, 1, 4, 2, 0, 1, 4, 3, 0,   // sources
                                    0, 0, 1, 2, 2, 3, 4, 4, 5, 5},  // destinations
                                   at::kLong)
                            .reshape({2, 10});
  return {{"i64", GraphFixture{5, 6, ei, true}},
          {"i32 unsorted flag", GraphFixture{5, 6, ei.to(at::kInt), false}}};
}

void append(std::vector<BadInputCase>& out, std::vector<BadInputCase> more,
            const std::string& tag) {
  for (auto& c : more) {
    if (!tag.empty()) c.violation += " [" + tag + "]";
    out.push_back(std::move(c));
  }
}

}  // namespace

std::vector<BadInputCase> badinput_catalogue(int world_size) {
  std::vector<BadInputCase> out;
  for (const auto& [tag, c] : prim_variants(world_size)) append(out, primitive_cases(c), tag);
  for (const auto& [tag, f] : graph_variants()) append(out, graph_cases(f, world_size), tag);
  append(out, shapes_cases(), "");
  return out;
}

std::vector<BadInputCase> cases_of(const std::string& function, std::vector<BadInputCase> cases) {
  std::vector<BadInputCase> out;
  for (auto& c : cases) {
    if (c.function == function) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace graphshard::props
