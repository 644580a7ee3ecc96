#include "c10d_blame.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace graphshard {
namespace {

// Communicators made over one store, counted in the order this process made them: ranks make
// them in the same order, so the count keys one communicator's posts apart from another's.
int store_index(const c10d::Store* store) {
  static std::mutex m;
  static std::unordered_map<const c10d::Store*, int> made;
  std::lock_guard<std::mutex> lk(m);
  return made[store]++;
}

}  // namespace

BlameBoard::BlameBoard(c10::intrusive_ptr<c10d::Store> store, int rank, int size)
    : store_(std::move(store)), rank_(rank), size_(size) {
  if (store_) prefix_ = "graphshard/blame/" + std::to_string(store_index(store_.get())) + "/";
}

std::vector<int> BlameBoard::blame(const std::vector<int>& lost) {
  if (!store_) return lost;
  std::vector<int> roots;
  try {
    std::set<int> seen{rank_};
    if (!lost.empty()) {
      for (int p : lost) expand(p, seen, roots);
    } else {  // the transport named no peer: take what the others reported
      for (int q = 0; q < size_; ++q) {
        if (q == rank_) continue;
        for (int p : posted_blame(q)) expand(p, seen, roots);
      }
    }
    std::sort(roots.begin(), roots.end());
    if (!posted_ && !roots.empty()) {
      posted_ = true;
      std::ostringstream v;
      for (size_t i = 0; i < roots.size(); ++i) v << (i ? "," : "") << roots[i];
      const std::string text = v.str();
      store_->set(prefix_ + std::to_string(rank_), std::vector<uint8_t>(text.begin(), text.end()));
    }
  } catch (const std::exception&) {  // the store went with rank 0: blame what we saw
    return lost;
  }
  return roots;
}

// Rank p is a root cause unless it posted a blame of ranks not yet seen (a cycle of ranks that
// timed out on each other ends at the first rank met twice).
void BlameBoard::expand(int p, std::set<int>& seen, std::vector<int>& roots) {
  if (!seen.insert(p).second) return;
  std::vector<int> next;
  for (int q : posted_blame(p))
    if (!seen.count(q)) next.push_back(q);
  if (next.empty()) {
    if (std::find(roots.begin(), roots.end(), p) == roots.end()) roots.push_back(p);
    return;
  }
  for (int q : next) expand(q, seen, roots);
}

std::vector<int> BlameBoard::posted_blame(int q) {
  const std::string key = prefix_ + std::to_string(q);
  if (!store_->check({key})) return {};
  const auto bytes = store_->get(key);
  std::vector<int> out;
  std::stringstream in(std::string(bytes.begin(), bytes.end()));
  for (std::string item; std::getline(in, item, ',');) {
    const int x = std::atoi(item.c_str());
    if (x >= 0 && x < size_) out.push_back(x);
  }
  return out;
}

std::string ranks_str(const std::vector<int>& ranks) {
  if (ranks.size() == 1) return "rank " + std::to_string(ranks[0]);
  std::string s = "ranks [";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s + "]";
}

}  // namespace graphshard
