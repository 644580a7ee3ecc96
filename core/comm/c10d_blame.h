// The root cause of a lost peer on the c10d engine (comm.h, "Who is blamed"). Internal to
// core/comm.
//
// The first rank to lose a peer posts whom it blames, under its own rank's key, before it raises;
// a rank that later loses a peer reads that peer's post: a peer that posted left because of what
// it blamed, so the blame passes on to that (transitively). Why the store: it outlives any one
// peer's sockets (only rank 0's death takes it), and a post is complete before the poster
// raises, so before its sockets close and anyone can see it gone.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Store.hpp>

namespace graphshard {

class BlameBoard {
 public:
  // store may be null: then every blame is what the transport named.
  BlameBoard(c10::intrusive_ptr<c10d::Store> store, int rank, int size);

  // The root cause of losing `lost` (the peer of the failing transfer; empty when the transport
  // named none). Posts it the first time (later errors are its consequences).
  std::vector<int> blame(const std::vector<int>& lost);

 private:
  void expand(int p, std::set<int>& seen, std::vector<int>& roots);
  std::vector<int> posted_blame(int q);

  c10::intrusive_ptr<c10d::Store> store_;
  int rank_, size_;
  std::string prefix_;
  bool posted_ = false;
};

// "rank 3" or "ranks [1, 2]".
std::string ranks_str(const std::vector<int>& ranks);

}  // namespace graphshard
