// An open-addressing hash table from a token pair (a, b) to its merge (rank,
// merged id). BPE looks a pair up for every adjacent pair of every new word;
// a flat table costs one cache miss per lookup where std::unordered_map's
// nodes cost two or three, which is most of the time of encoding unseen words.
#pragma once
#include <cstdint>
#include <vector>

namespace lldl {

struct PairMerge {
  int32_t rank, id;
};

class PairTable {
 public:
  // Adds (key -> m); false (and no change) when the key is already there.
  bool insert(uint64_t key, PairMerge m) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    size_t i = slot(key);
    if (slots_[i].key == key) return false;
    slots_[i] = {key, m};
    ++count_;
    return true;
  }
  // The merge of key, nullptr when the pair has none.
  const PairMerge* find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    const Slot& s = slots_[slot(key)];
    return s.key == key ? &s.merge : nullptr;
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // never a key: ids are below 2^31
  struct Slot {
    uint64_t key = kEmpty;
    PairMerge merge{};
  };
  // The slot holding key, or the empty slot where it would go (linear probing).
  size_t slot(uint64_t key) const {
    size_t mask = slots_.size() - 1;
    size_t i = size_t((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    while (slots_[i].key != key && slots_[i].key != kEmpty) i = (i + 1) & mask;
    return i;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
    for (const Slot& s : old)
      if (s.key != kEmpty) slots_[slot(s.key)] = s;
  }
  std::vector<Slot> slots_;
  size_t count_ = 0;
};

}  // namespace lldl
