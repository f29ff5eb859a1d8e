#include "models/lm_train.h"

#include <cmath>

#include "core/error.h"

namespace lldl {

void LMTrainConfig::validate() const {
  auto bad = [](const std::string& what) { throw ValueError("train: " + what); };
  if (steps < 1) bad("steps must be >= 1, got " + std::to_string(steps));
  if (batch < 1) bad("batch must be >= 1, got " + std::to_string(batch));
  if (seq < 1) bad("seq (block) must be >= 1, got " + std::to_string(seq));
  if (!(lr > 0) || !std::isfinite(lr)) bad("lr must be a positive number, got " + std::to_string(lr));
  if (!(min_lr >= 0) || min_lr > lr) bad("min_lr must be in [0, lr], got " + std::to_string(min_lr));
  if (warmup < 0) bad("warmup must be >= 0, got " + std::to_string(warmup));
  if (!(grad_clip >= 0)) bad("grad_clip must be >= 0 (0: off), got " + std::to_string(grad_clip));
  if (eval_every < 0 || eval_batches < 1)
    bad("eval_every must be >= 0 and eval_batches >= 1, got " + std::to_string(eval_every) +
        " and " + std::to_string(eval_batches));
  if (ckpt_every < 0) bad("ckpt_every must be >= 0, got " + std::to_string(ckpt_every));
}

void print_progress(int64_t step, int64_t steps, double loss, double lr, double tokens_per_s,
                    double val_loss, bool newline) {
  constexpr int kWidth = 24;
  int filled = static_cast<int>(kWidth * step / steps);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
  bar[kWidth] = 0;
  std::fprintf(stderr, "\rstep %6lld/%lld [%s] loss %.4f lr %.2e %8.0f tok/s", (long long)step,
               (long long)steps, bar, loss, lr, tokens_per_s);
  if (val_loss >= 0) std::fprintf(stderr, " val %.4f", val_loss);
  if (newline) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace lldl
