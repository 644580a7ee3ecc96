#include "collectives.h"

#include <sstream>
#include <string>

#include <ATen/ATen.h>

#include "../check.h"
#include "graphshard/shapes.h"
#ifdef GRAPHSHARD_WITH_CUDA
#include "../cuda/kernels.h"
#endif

namespace graphshard::detail {
namespace {

std::vector<int64_t> with_dim(at::IntArrayRef shape, int64_t d, int64_t n) {
  std::vector<int64_t> s(shape.begin(), shape.end());
  s[d] = n;
  return s;
}

// Product of the extents of every dim but d (elements per unit length along d).
int64_t numel_except(at::IntArrayRef shape, int64_t d) {
  int64_t n = 1;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (i != d) n *= shape[i];
  }
  return n;
}

std::vector<int64_t> scaled(const std::vector<int64_t>& sizes, int64_t factor) {
  std::vector<int64_t> out(sizes.size());
  for (size_t q = 0; q < sizes.size(); ++q) out[q] = sizes[q] * factor;
  return out;
}

// The 1-D view of t's storage; t must be row-major contiguous (a zero-size tensor always is).
// Never a copy: collectives write through it.
at::Tensor flat(const at::Tensor& t) {
  TORCH_INTERNAL_ASSERT(t.is_contiguous());
  return t.as_strided({t.numel()}, {1}, t.storage_offset());
}

// One 1-D buffer of dtype `type` holding x's pieces along d one after another, each row-major:
// a single pass over x into the communicator's kPack scratch (the cast, if any, happens during
// the copy), or none when x is already row-major and d == 0. Piece `skip` (if >= 0) is left
// unfilled: the caller moves it without the wire.
at::Tensor pack(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                at::ScalarType type, Communicator& comm, int skip = -1) {
  if (d == 0 && type == x.scalar_type() && x.is_contiguous()) return flat(x);
  at::Tensor buf = comm.scratch(Communicator::kPack, x.numel(), x.options().dtype(type));
  if (d == 0) {
    buf.view(x.sizes()).copy_(x);
    return buf;
  }
#ifdef GRAPHSHARD_WITH_CUDA
  if (cuda_kernels::moves_pieces(x, buf, sizes.size(), true)) {  // all pieces in one launch
    cuda_kernels::pack_pieces(x, buf, d, sizes, skip);
    return buf;
  }
#endif
  const int64_t inner = numel_except(x.sizes(), d);
  int64_t at_buf = 0, at_dim = 0;
  for (int q = 0; q < static_cast<int>(sizes.size()); ++q) {
    const int64_t s = sizes[q];
    if (q != skip) {
      buf.narrow(0, at_buf, s * inner)
          .view(with_dim(x.sizes(), d, s))
          .copy_(x.narrow(d, at_dim, s));
    }
    at_buf += s * inner;
    at_dim += s;
  }
  return buf;
}

// Inverse of pack: row-major piece q of buf goes to out.narrow(d, ...), whatever out's layout;
// piece `skip` (its slot in buf left unwritten, OwnPiece::kSkip) comes from own instead.
void unpack(const at::Tensor& buf, const at::Tensor& out, int64_t d,
            const std::vector<int64_t>& sizes, int skip, const at::Tensor& own) {
#ifdef GRAPHSHARD_WITH_CUDA
  if (cuda_kernels::moves_pieces(out, buf, sizes.size(), false)) {  // all pieces in one launch
    cuda_kernels::unpack_pieces(buf, out, d, sizes, skip);
    out.narrow(d, offsets_of(sizes)[skip], sizes[skip]).copy_(own);
    return;
  }
#endif
  // One cat into out: ATen's cat moves row blocks with memcpy where the pieces are row-major;
  // a strided copy per piece (TensorIterator) was slower on the CPU, enough to make
  // all_to_all_transpose split along dim 0 (16 MiB, W = 2) 1.22x anemoi's split + cat (now
  // 0.84-0.95).
  const int64_t inner = numel_except(out.sizes(), d);
  std::vector<at::Tensor> pieces;
  int64_t at_buf = 0;
  for (int q = 0; q < static_cast<int>(sizes.size()); ++q) {
    const int64_t s = sizes[q];
    pieces.push_back(
        q == skip ? own : buf.narrow(0, at_buf, s * inner).view(with_dim(out.sizes(), d, s)));
    at_buf += s * inner;
  }
  at::Tensor target = out;  // cat_out writes into the given tensor (its sizes already right)
  at::cat_out(target, pieces, d);
}

// A received row-major result as the caller's dtype and memory format: itself when it already
// is both, else one copy that casts and lays out at once.
at::Tensor finish(const at::Tensor& t, at::ScalarType type, at::MemoryFormat fmt) {
  if (t.scalar_type() == type && t.is_contiguous(fmt)) return t;
  at::Tensor out = at::empty(t.sizes(), t.options().dtype(type).memory_format(fmt));
  out.copy_(t);
  return out;
}

// Checked mode: ranks agree on the operation, its dims and sizes, the dtype and the shape
// (dims in `varying` differ legitimately between ranks and show as '*').
void agree(Communicator& comm, const char* op, const at::Tensor& x, const std::string& args,
           std::vector<int64_t> varying) {
  if (!checked_mode()) return;
  std::ostringstream os;
  os << op << ' ' << args << " dtype=" << x.scalar_type() << " shape=[";
  for (int64_t i = 0; i < x.dim(); ++i) {
    os << (i ? ", " : "");
    bool star = false;
    for (int64_t v : varying) star = star || v == i;
    if (star) {
      os << '*';
    } else {
      os << x.size(i);
    }
  }
  os << ']';
  comm.check_agreement(os.str(), x.device());
}

std::string dim_sizes(const char* name, int64_t d, const std::vector<int64_t>& sizes) {
  return std::string(name) + "=" + std::to_string(d) + " sizes=" + str(sizes);
}

}  // namespace

at::Tensor split_piece(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                       int rank) {
  // SPEC §2: a view where the piece already is contiguous in x's format (dim 0, or every dim
  // before d of size 1), as torch.split(x, sizes, d)[rank].contiguous(format) gives; else a copy.
  return x.narrow(d, offsets_of(sizes)[rank], sizes[rank]).contiguous(get_memory_format(x));
}

at::Tensor expand_piece(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                        int rank) {
  const auto off = offsets_of(sizes);
  // at::zeros ignores the memory format of its options: allocate, then zero.
  at::Tensor out = at::empty(with_dim(x.sizes(), d, off.back()),
                             x.options().memory_format(get_memory_format(x)));
  out.zero_();
  out.narrow(d, off[rank], sizes[rank]).copy_(x);
  return out;
}

at::Tensor gather_pieces(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                         Communicator& comm) {
  const auto counts = scaled(sizes, numel_except(x.sizes(), d));
  agree(comm, "gather", x, dim_sizes("dim", d, sizes), {d});
  at::Tensor out = at::empty(with_dim(x.sizes(), d, total(sizes)),
                             x.options().memory_format(get_memory_format(x)));
  const at::Tensor send = flat(x.contiguous());
  if (d == 0 && out.is_contiguous()) {
    comm.all_gather_v(send, flat(out), counts);
    return out;
  }
  // The own piece goes from x to its place in out directly; the rest through staging.
  const int r = comm.rank();
  at::Tensor staging = comm.scratch(Communicator::kStaging, total(counts), x.options());
  comm.all_gather_v(send, staging, counts, Communicator::OwnPiece::kSkip);
  unpack(staging, out, d, sizes, r, x);
  return out;
}

// The engine's out-of-place all-reduce, read straight from x when x is row-major in the
// accumulation type (else from one packing copy that also casts), into the output.
at::Tensor reduce_sum(const at::Tensor& x, Communicator& comm) {
  agree(comm, "reduce", x, "", {});
  const at::ScalarType acc = accumulation_type(x.scalar_type());
  const at::Tensor send = pack(x, 0, {}, acc, comm);
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(acc));
  comm.all_reduce_sum(send, flat(out));
  return finish(out, x.scalar_type(), get_memory_format(x));
}

at::Tensor reduce_scatter_pieces(const at::Tensor& x, int64_t d, const std::vector<int64_t>& sizes,
                                 Communicator& comm) {
  const at::ScalarType acc = accumulation_type(x.scalar_type());
  agree(comm, "reduce_scatter", x, dim_sizes("dim", d, sizes), {});
  const int r = comm.rank();
  // Pieces cut along a non-leading dim are packed anyway: the own piece, which never crosses
  // the wire, is then summed straight from x (same dtype only: a 16-bit x is cast while packed).
  const bool own_in_place = d != 0 && acc == x.scalar_type();
  const at::Tensor send = pack(x, d, sizes, acc, comm, own_in_place ? r : -1);
  const at::Tensor own = own_in_place ? x.narrow(d, offsets_of(sizes)[r], sizes[r]) : at::Tensor();
  // Received in the accumulation type: scratch when finish() must convert it anyway.
  const auto shape = with_dim(x.sizes(), d, sizes[r]);
  at::Tensor recv = acc == x.scalar_type()
                        ? at::empty(shape, x.options())
                        : comm.scratch(Communicator::kStaging, c10::multiply_integers(shape),
                                       x.options().dtype(acc))
                              .view(shape);
  comm.reduce_scatter_v(send, flat(recv), scaled(sizes, numel_except(x.sizes(), d)), own);
  return finish(recv, x.scalar_type(), get_memory_format(x));
}

at::Tensor all_to_all_pieces(const at::Tensor& x, int64_t ds, const std::vector<int64_t>& ssizes,
                             int64_t dc, const std::vector<int64_t>& csizes, Communicator& comm) {
  const int r = comm.rank();
  const int w = comm.size();
  agree(comm, "all_to_all", x,
        dim_sizes("dim_split", ds, ssizes) + " " + dim_sizes("dim_concat", dc, csizes), {dc});
  // What rank q sends here: its piece r along ds, csizes[q] long along dc.
  const auto mine = with_dim(x.sizes(), ds, ssizes[r]);
  const int64_t recv_inner = numel_except(mine, dc);
  std::vector<int64_t> recv_counts(w);
  for (int q = 0; q < w; ++q) recv_counts[q] = csizes[q] * recv_inner;
  const auto send_counts = scaled(ssizes, numel_except(x.sizes(), ds));

  at::Tensor out =
      at::empty(with_dim(mine, dc, total(csizes)), x.options().memory_format(get_memory_format(x)));
  // The own piece skips the wire, the packing and the staging: x's piece r along ds is out's
  // piece r along dc, copied once.
  const at::Tensor send = pack(x, ds, ssizes, x.scalar_type(), comm, r);
  const auto own = [&] {
    out.narrow(dc, offsets_of(csizes)[r], csizes[r])
        .copy_(x.narrow(ds, offsets_of(ssizes)[r], ssizes[r]));
  };
  if (dc == 0 && out.is_contiguous()) {
    comm.all_to_all_v(send, send_counts, flat(out), recv_counts, Communicator::OwnPiece::kSkip);
    own();
    return out;
  }
  at::Tensor staging = comm.scratch(Communicator::kStaging, total(recv_counts), x.options());
  comm.all_to_all_v(send, send_counts, staging, recv_counts, Communicator::OwnPiece::kSkip);
  unpack(staging, out, dc, csizes, r, x.narrow(ds, offsets_of(ssizes)[r], ssizes[r]));
  return out;
}

}  // namespace graphshard::detail
