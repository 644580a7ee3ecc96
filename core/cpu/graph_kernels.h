// CPU kernels of the graph functions (core/graph). Internal to core.
//
// Every kernel takes a row of an edge index as (pointer, stride, length) so that rows of a
// [2, E] tensor are read in place, and is parallel over at::parallel_for chunks whose results
// are combined in a fixed order: the output is the same for every thread count.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace graphshard::cpu {

// Preconditions. The public functions validate their arguments before calling a kernel, but an
// internal caller can still hand one an inconsistent input (an id out of range, a count that
// disagrees with a tensor); the kernels check their own preconditions so that such an input is
// an error with a message, never an out-of-bounds access. O(1) checks (dims, dtypes, counts)
// always; O(E) scans (ids in range, sortedness) when scan_preconditions(). Every `row` must be
// a 1-D int32/int64 CPU tensor (always checked).
//
// Every violation raises c10::ValueError "graphshard::<kernel>: <arg>: expected <expected>,
// got <actual>" (no rank: a kernel does not know it; the public function's checks name it).
[[noreturn]] void precondition_failed(const char* kernel, const std::string& arg,
                                      const std::string& expected, const std::string& actual);
// checked_mode() || debug_checks().
bool scan_preconditions();
// Every value of the 1-D tensor `values` (any device) in [lo, hi): one aminmax, and for a
// device tensor one host synchronisation. An empty tensor passes.
void check_values_in(const char* kernel, const char* arg, const at::Tensor& values, int64_t lo,
                     int64_t hi);

// Index of the first i with row[i - 1] > row[i], or -1 when row is non-decreasing.
// row: 1-D int32/int64 CPU tensor (any stride).
int64_t first_unsorted(const at::Tensor& row);

// Stable counting sort of the keys key(row[i]) in [0, num_keys): returns the int64
// permutation perm with key(row[perm[0]]) <= key(row[perm[1]]) <= ..., ties in input order.
// blocks == 0: key = the value itself (num_keys = its exclusive bound); blocks > 0: key = the
// index of the part of balanced(num_keys, blocks) the value lies in (num_keys = number of
// values; there are `blocks` keys). Values must already be known to lie in [0, num_keys).
// key_counts (blocks > 0 only): receives the number of entries per key.
// Checks: num_keys >= 0, blocks >= 0 (always); values in [0, num_keys) (scan).
at::Tensor counting_sort_perm(const at::Tensor& row, int64_t num_keys, int64_t blocks = 0,
                              std::vector<int64_t>* key_counts = nullptr);

// Stable counting sort of a [2, E] edge index by destination (values in [0, num_keys)):
// returns (sorted edge index, int64 perm), the edges written in the sorting pass itself.
// Checks: a [2, E] int32/int64 CPU edge index, num_keys >= 0 (always); destination ids in
// [0, num_keys) (scan).
std::pair<at::Tensor, at::Tensor> counting_sort_edges(const at::Tensor& edge_index,
                                                      int64_t num_keys);

// Columns [lo, hi) of the [2, E] int32/int64 CPU edge index `ei` (any strides), copied into a
// new contiguous [2, hi - lo] tensor, in the same pass that checks every id of the whole index:
// row 0 in [0, n_src), row 1 in [0, n_dst). Undefined when some id is out of range (the caller
// reports it). Checks: the edge index, 0 <= lo <= hi <= E, counts >= 0 (always).
at::Tensor columns_if_in_range(const at::Tensor& ei, int64_t lo, int64_t hi, int64_t n_src,
                               int64_t n_dst);

// For a non-decreasing row: offsets[j] = number of entries < bounds[j] (std::lower_bound), for
// each bound. O(len(bounds) * log E). Checks: row non-decreasing when there are bounds (scan;
// an unsorted row reads nothing out of bounds but gives meaningless offsets).
std::vector<int64_t> lower_bounds(const at::Tensor& row, const std::vector<int64_t>& bounds);

struct UsedIds {
  bool in_range = true;   // false: some value lies outside [0, n); the tensors are undefined
  at::Tensor kept;        // distinct values, ascending, row dtype
  at::Tensor relabelled;  // row[i] -> its position in kept, row dtype, contiguous
};
// Mark-and-scan: a byte mask over [0, n), a prefix scan for the new ids, a relabelling pass.
// Checks: n >= 0 (always). An id outside [0, n) is not an error here but a result (in_range).
// `relabelled_into`, when defined (contiguous, row's dtype and length), receives the relabelled
// row (a row of the caller's [2, E] result: no stack afterwards) and is returned as relabelled.
UsedIds used_ids(const at::Tensor& row, int64_t n, const at::Tensor& relabelled_into = {});

}  // namespace graphshard::cpu
