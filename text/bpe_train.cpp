// BpeTokenizer::train: incremental pair counting over distinct chunks.
//
// The corpus is pre-split (BpeTokenizer::chunks) and reduced to its distinct
// chunks ("words") with their frequencies. Pair counts are kept for the whole
// corpus (each pair counted freq times per occurrence in a word), together with
// an index pair -> words that may hold it. A merge rewrites only the words in
// the merged pair's index and updates the counts of the pairs those words
// lose and gain. The most frequent pair comes from a max-heap with lazy
// deletion: an entry whose count is stale is dropped, or pushed again with the
// current count when that is lower (a raised count was pushed when it rose).
#include <algorithm>
#include <queue>

#include "core/error.h"
#include "text/bpe.h"

namespace lldl {

namespace {

struct Word {
  std::vector<int32_t> sym;
  int64_t freq;
};

struct Entry {
  int64_t count;
  uint64_t key;
};
struct Delta {
  uint64_t key;
  int64_t d;
};
// Max-heap order: higher count first; on ties the smaller key (a, b) first.
struct EntryLess {
  bool operator()(const Entry& x, const Entry& y) const {
    return x.count != y.count ? x.count < y.count : x.key > y.key;
  }
};

class Trainer {
 public:
  explicit Trainer(const std::string& corpus) {
    std::unordered_map<std::string_view, int64_t> freq;
    for (std::string_view c : BpeTokenizer::chunks(corpus)) ++freq[c];
    words_.reserve(freq.size());
    for (const auto& [chunk, f] : freq) {
      Word w{std::vector<int32_t>(chunk.size()), f};
      for (size_t i = 0; i < chunk.size(); ++i) w.sym[i] = static_cast<unsigned char>(chunk[i]);
      words_.push_back(std::move(w));
    }
    // Sorted words make the index lists (and so the work order) independent
    // of the hash map's iteration order; the counts never depended on it.
    std::sort(words_.begin(), words_.end(), [](const Word& x, const Word& y) { return x.sym < y.sym; });
    for (size_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.sym.size(); ++i) {
        uint64_t k = bpe_pair_key(word.sym[i], word.sym[i + 1]);
        count_[k] += word.freq;
        auto& idx = where_[k];
        if (idx.empty() || idx.back() != int32_t(w)) idx.push_back(int32_t(w));
      }
    }
    for (const auto& [k, c] : count_) heap_.push({c, k});
  }

  // The most frequent pair, or false when no pair is left.
  bool best(uint64_t* key) {
    while (!heap_.empty()) {
      Entry e = heap_.top();
      heap_.pop();
      auto it = count_.find(e.key);
      int64_t cur = it == count_.end() ? 0 : it->second;
      if (cur == e.count) {
        *key = e.key;
        return true;
      }
      if (cur > 0 && cur < e.count) heap_.push({cur, e.key});
    }
    return false;
  }

  // Replaces every (a, b) by z in the words that hold it.
  void merge(uint64_t key, int32_t a, int32_t b, int32_t z) {
    std::vector<int32_t> ws = std::move(where_[key]);
    where_.erase(key);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    for (int32_t w : ws) rewrite(w, a, b, z);
  }

 private:
  void rewrite(int32_t w, int32_t a, int32_t b, int32_t z) {
    Word& word = words_[size_t(w)];
    std::vector<int32_t>& s = word.sym;
    bool found = false;
    for (size_t i = 0; i + 1 < s.size() && !found; ++i) found = s[i] == a && s[i + 1] == b;
    if (!found) return;  // a stale index entry
    delta_.clear();
    for (size_t i = 0; i + 1 < s.size(); ++i) delta_.push_back({bpe_pair_key(s[i], s[i + 1]), -word.freq});
    size_t o = 0;
    for (size_t r = 0; r < s.size();) {
      if (r + 1 < s.size() && s[r] == a && s[r + 1] == b) {
        s[o++] = z;
        r += 2;
      } else {
        s[o++] = s[r++];
      }
    }
    s.resize(o);
    for (size_t i = 0; i + 1 < s.size(); ++i) delta_.push_back({bpe_pair_key(s[i], s[i + 1]), word.freq});
    std::sort(delta_.begin(), delta_.end(),
              [](const Delta& x, const Delta& y) { return x.key < y.key; });
    for (size_t i = 0; i < delta_.size();) {
      uint64_t k = delta_[i].key;
      int64_t d = 0;
      for (; i < delta_.size() && delta_[i].key == k; ++i) d += delta_[i].d;
      if (d == 0) continue;
      int64_t& c = count_[k];
      c += d;
      if (d > 0) {
        heap_.push({c, k});
        where_[k].push_back(w);
      } else if (c <= 0) {
        count_.erase(k);
      }
    }
  }

  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> count_;
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;
  std::priority_queue<Entry, std::vector<Entry>, EntryLess> heap_;
  std::vector<Delta> delta_;  // (pair key, count change) scratch for rewrite
};

}  // namespace

BpeTokenizer BpeTokenizer::train(const std::string& corpus, int vocab_size) {
  if (corpus.empty()) throw ValueError("BpeTokenizer.train: empty corpus");
  if (vocab_size < 256)
    throw ValueError("BpeTokenizer.train: vocab_size " + std::to_string(vocab_size) +
                     " is below 256 (the byte tokens)");
  if (vocab_size > 256 + (1 << 24))
    throw ValueError("BpeTokenizer.train: vocab_size " + std::to_string(vocab_size) +
                     " is above the limit " + std::to_string(256 + (1 << 24)));
  BpeTokenizer t;
  Trainer tr(corpus);
  uint64_t key;
  while (t.vocab_size() < vocab_size && tr.best(&key)) {
    int32_t a = int32_t(key >> 32), b = int32_t(key & 0xffffffffu), z = t.vocab_size();
    t.add_merge(a, b);
    tr.merge(key, a, b, z);
  }
  return t;
}

}  // namespace lldl
