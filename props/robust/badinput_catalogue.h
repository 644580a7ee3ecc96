// The bad-input catalogue (SPEC §5): for every public function, each documented precondition
// violated on purpose, with what every rank must then see.
//
// A case names the function, the argument its error must name and the violation, and builds on
// each rank (deterministically, from the rank and the group size only) the inputs and the call.
// Running a case on W ranks checks, on every rank:
//   1. the call raises c10::ValueError (not a crash, a CommError or another exception type);
//   2. the message starts "graphshard::<function>: <argument>" and names the rank;
//   3. every rank raises (the check depends only on what every rank is given);
//   4. no rank entered a collective (checks precede communication), so none is left waiting;
//   5. no input tensor was modified (compared with a clone taken before the call).
// Where a world of one rank makes the violation moot (the bypass of SPEC §0, or "not
// distributed"), W = 1 instead checks that the call is accepted, without communication and
// without touching the inputs.
//
// The per-function lists take a case description (PrimCase, GraphFixture), so the random
// properties (primitives_errors_props.cpp, graph_errors_props.cpp) draw the same violations on
// random tensors and graphs; badinput_catalogue(W) instantiates them on fixed ones.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/comm.h"
#include "primitives_cases.h"

namespace graphshard::props {

// One rank's side of a case: the tensors it passes and the call that passes them.
struct BadCall {
  std::vector<at::Tensor> inputs;  // checked unchanged after the call (undefined ones skipped)
  std::function<void()> call;
  int message_rank = 0;  // the rank the message must name (0 for functions without a group)
};

struct BadInputCase {
  std::string function;   // as messages name it: "shard_tensor", "GraphPartition::materialise"
  std::string argument;   // the message starts "graphshard::<function>: <argument>"
  std::string violation;  // what is wrong, for reports
  std::function<BadCall(const CommPtr& group, int rank)> make;
  int min_world = 1;            // smaller worlds cannot express the violation: not run
  bool accepted_at_w1 = false;  // W = 1 bypasses / is not distributed: the call must succeed
  bool debug_checks = false;    // a check that exists only under set_debug_checks(true)
  std::string name() const;     // "function / argument / violation"
};

// Every case at world size W: the same cases in the same order for every W.
std::vector<BadInputCase> badinput_catalogue(int world_size);

// Runs case c on W fresh simulated ranks (short timeout) and checks 1-5 (or the acceptance at
// W = 1). Returns "" or what went wrong, rank by rank. W < c.min_world: nothing to run, "".
std::string run_case_on_sim(const BadInputCase& c, int world_size);

// Runs this process's side of case c on comm (one rank of a real group, e.g. Gloo; collectives
// are counted through a wrapper). The ranks then agree on the outcome in one all-reduce, which
// keeps them in step. Returns "" when every rank passed, else what went wrong (this rank's
// problem, if any, and the failing ranks). Every rank must call it with the same case.
std::string run_case_on_comm(const BadInputCase& c, const CommPtr& comm);

// ---- Violation lists -------------------------------------------------------------------------

// The wrong lengths every check of a list of one entry per rank must reject: one entry too many,
// one too few (at W = 1 the empty list) and none. Each is its own case, so a check that only
// catches lists that are too long (or reads past a short one) fails one of them.
enum class WrongLength { kOneMore, kOneLess, kEmpty };
inline constexpr WrongLength kWrongLengths[] = {WrongLength::kOneMore, WrongLength::kOneLess,
                                                WrongLength::kEmpty};
// The violation as cases name it: "W + 1 entries", "W - 1 entries", "an empty list".
std::string describe(WrongLength l);
// The correct list s at length l, keeping its sum where the length allows (a 0 appended, the
// last two entries merged), so that only the length is wrong and nothing but the length check
// can reject it.
std::vector<int64_t> with_length(std::vector<int64_t> s, WrongLength l);

// The cases of the seven tensor primitives, from a PrimCase of W = c.sizes.size() ranks with
// ndim >= 2.
std::vector<BadInputCase> primitive_cases(const PrimCase& c);

// A dst-sorted graph with n_src >= 1, n_dst >= 2 and E >= 1 edges (the cases build the bad
// variants from it), and the value passed for the edges_are_dst_sorted flags that a violation
// does not depend on.
struct GraphFixture {
  int64_t n_src = 0, n_dst = 0;
  at::Tensor edge_index;
  bool sorted_flag = true;
};

// The cases of the graph functions for a world of W ranks (partitions have W parts; cases the
// graph cannot express at that W, e.g. unsorted edges when all destinations are equal, are left
// out).
std::vector<BadInputCase> graph_cases(const GraphFixture& f, int world_size);

// The cases of the shape utilities (shapes.h).
std::vector<BadInputCase> shapes_cases();

// The cases of one function (as BadInputCase::function names it).
std::vector<BadInputCase> cases_of(const std::string& function, std::vector<BadInputCase> cases);

}  // namespace graphshard::props
