#include "models/lm_common.h"

#include <stdexcept>

#include "core/error.h"
#include "models/sampling.h"

namespace lldl {

void check_token_ids(const char* model, const int32_t* idx, int64_t B, int64_t T, int64_t vocab,
                     int64_t block_size) {
  const std::string m = model;
  if (B < 1 || T < 1)
    throw ValueError(m + ": idx must be [B, T] with B, T >= 1, got [" + std::to_string(B) + ", " +
                     std::to_string(T) + "] (empty batch or sequence)");
  if (block_size > 0 && T > block_size)
    throw ValueError(m + ": sequence length " + std::to_string(T) + " is longer than block_size " +
                     std::to_string(block_size));
  for (int64_t i = 0; i < B * T; ++i)
    if (idx[i] < 0 || idx[i] >= vocab)
      throw ValueError(m + ": token id " + std::to_string(idx[i]) + " at [" +
                       std::to_string(i / T) + ", " + std::to_string(i % T) +
                       "] is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

void check_generate_args(const char* model, const std::vector<int32_t>& prompt, int64_t max_new,
                         float temperature, int64_t top_k, int64_t vocab) {
  const std::string m = model;
  if (prompt.empty()) throw ValueError(m + ": generate: the prompt is empty (give at least one token)");
  if (max_new < 0)
    throw ValueError(m + ": generate: max_new_tokens must be >= 0, got " + std::to_string(max_new));
  check_sampling(temperature, top_k);
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= vocab)
      throw ValueError(m + ": generate: prompt token " + std::to_string(prompt[i]) +
                       " at position " + std::to_string(i) + " is outside the vocabulary [0, " +
                       std::to_string(vocab) + ")");
}

void check_model_kind(const std::map<std::string, std::string>& m, const char* kind) {
  auto it = m.find("lldl.model");
  if (it == m.end() || it->second != kind)
    throw ValueError(std::string("checkpoint is not an lldl ") + kind +
                     " model (metadata 'lldl.model' is " +
                     (it == m.end() ? std::string("missing") : "'" + it->second + "'") + ")");
}

int64_t metadata_int(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) throw ValueError("checkpoint metadata has no '" + key + "'");
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing characters");
    return v;
  } catch (const std::exception&) {
    throw ValueError("checkpoint metadata '" + key + "' is not an integer: '" + it->second + "'");
  }
}

}  // namespace lldl
