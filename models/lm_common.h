// Checks shared by the language models (GPT, LSTM): token ids, generation
// arguments and checkpoint metadata.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lldl {

// idx [B, T]: B, T >= 1, ids in [0, vocab), T <= block_size (0: no limit).
// ValueError naming the model, the id and its position.
void check_token_ids(const char* model, const int32_t* idx, int64_t B, int64_t T, int64_t vocab,
                     int64_t block_size);
// A non-empty prompt of ids in range, max_new >= 0, valid temperature/top_k.
void check_generate_args(const char* model, const std::vector<int32_t>& prompt, int64_t max_new,
                         float temperature, int64_t top_k, int64_t vocab);
// metadata["lldl.model"] must be `kind`.
void check_model_kind(const std::map<std::string, std::string>& m, const char* kind);
int64_t metadata_int(const std::map<std::string, std::string>& m, const std::string& key);

}  // namespace lldl
