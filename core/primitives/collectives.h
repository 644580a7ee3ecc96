// The data movements behind the seven primitives, without autograd (used by the forward and
// backward passes alike). Internal to core.
//
// Preconditions (checked by the public functions, never here): W > 1, dims normalised, sizes of
// length W that agree with the tensor's shape. Every output is laid out in the input's memory
// format (get_memory_format) and is a fresh tensor, but split_piece's, which is a view of the
// input where the piece already has that layout; any strided input is accepted.
//
// Wire layout: every piece travels row-major (contiguous), whatever the tensors' memory
// formats. Ranks cannot agree on a memory format without communicating: get_memory_format is
// decided per rank from the local strides, and a piece with size-1 dims is contiguous in both
// formats, so ranks holding pieces of one contiguous tensor can see different formats (e.g. a
// split along C with sizes [3, 1]: the [N, 1, H, W] piece reads as channels-last). Only the
// output is laid out in the local format.
//
// Copies: gather along dim 0 receives straight into the output when the output is row-major
// (contiguous, or channels-last with size-1 dims that make it row-major too); otherwise the
// other ranks' pieces land in a staging buffer and are copied once into the output, while this
// rank's own piece goes from x to its place directly (Communicator::OwnPiece::kSkip).
// Reduce-scatter and all-to-all pack once (piece q along the cut dim row-major; a 16-bit float
// upcast is folded into that copy) and all-to-all unpacks once, its own piece skipping both; a
// cut (or concatenation) along dim 0 of a row-major tensor needs no packing (or unpacking) at
// all. On CUDA, a row-major tensor's pieces are packed (or unpacked) by one kernel launch for
// all of them (core/cuda/pieces_kernels.cu), elsewhere by one copy per piece. Channels-last
// tensors therefore pay one copy on each side of the wire. Staging and
// packing buffers are the communicator's scratch (Communicator::scratch), reused from call to
// call; only outputs are fresh. The all-reduce reads x and writes the output directly (the
// engine's out-of-place all_reduce_sum): no copy of x first.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/comm.h"

namespace graphshard::detail {

// Piece `rank` of x along d in x's memory format: a view of x when the piece already is
// contiguous in that format (SPEC §2), else a copy.
at::Tensor split_piece(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes, int rank);

// Full-shape tensor: piece `rank` along d is x, every other piece is zero (deterministic).
at::Tensor expand_piece(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                        int rank);

// All-gather along d: x is piece r; result is the concatenation of all pieces in rank order.
at::Tensor gather_pieces(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                         Communicator& comm);

// All-reduce sum in the accumulation type (float32 for float16/bfloat16, else x's dtype); the
// result has x's dtype. x is not modified.
at::Tensor reduce_sum(const at::Tensor& x, Communicator& comm);

// Sum over ranks, keeping piece r along d: one reduce-scatter.
at::Tensor reduce_scatter_pieces(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                                 Communicator& comm);

// Rank r sends piece q along ds to rank q and concatenates what it receives along dc.
at::Tensor all_to_all_pieces(const at::Tensor& x, int64_t ds, const std::vector<int64_t>& ssizes,
                             int64_t dc, const std::vector<int64_t>& csizes, Communicator& comm);

}  // namespace graphshard::detail
