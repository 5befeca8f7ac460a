// Token sampling for the rollout engine: temperature, top-k, top-p, min-p, repetition penalty,
// with a counter-based random stream per sample so that a seeded request draws the same tokens
// whatever else shares its batch, and the sampling log-prob GRPO's importance ratio needs.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace r1kit {

struct SamplingOptions {
  double temperature = 1.0;              // 0: greedy (argmax); else softmax(logits / temperature)
  double top_p = 1.0;                    // nucleus mass in (0, 1]; 1: off
  int64_t top_k = 0;                     // keep the k most likely tokens; 0: off
  double min_p = 0.0;                    // drop tokens with prob < min_p * max prob; 0: off
  double repetition_penalty = 1.0;       // HF/CTRL penalty on prompt + completion tokens; 1: off
  int64_t max_new_tokens = 256;          // finish "length" after this many completion tokens
  std::vector<int64_t> stop_token_ids;   // finish "stop" after emitting one (added to the model's EOS)
  bool ignore_eos = false;               // true: the model's EOS ids do not stop generation
  std::vector<std::string> stop_strings; // finish "stop" when the decoded completion contains one
  uint64_t seed = 0;                     // base seed; request i gets derive_seed(seed, i) unless it has its own

  // Throws Error naming the field on out-of-range values.
  void validate() const;
  bool greedy() const { return temperature == 0.0; }
};

// The seed of request `index` under base seed `seed` (a bijective mix, so distinct requests
// never share a random stream).
uint64_t derive_seed(uint64_t seed, uint64_t index);

// Uniform in [0, 1) from the counter (seed, sample_index, step): the random number sample
// `sample_index` of a request uses for its `step`-th completion token. Pure function: the
// same triple always gives the same number, independent of batching or threads.
double counter_uniform(uint64_t seed, uint64_t sample_index, uint64_t step);

// One row of a sampling call.
struct SampleRow {
  const SamplingOptions* options = nullptr;  // not owned
  uint64_t seed = 0;                         // the request's seed
  int64_t sample_index = 0;                  // which of the request's G samples
  int64_t step = 0;                          // completion position of the token being drawn
};

struct SampledTokens {
  std::vector<int64_t> tokens;   // one per row
  std::vector<float> logprobs;   // log_softmax(logits / T)[token] (T = 1 for greedy rows)
};

// Draws one token per row of `logits` [n, V] (float32, any device).
// `seen` [n, V] bool marks tokens already in the row's prompt + completion; it is only read for
// rows whose repetition_penalty != 1 (pass an undefined tensor when no row uses the penalty).
//
// The draw: logits -> repetition penalty -> / temperature -> top-k -> top-p (on the top-k
// renormalised distribution) -> min-p -> inverse-CDF with counter_uniform(seed, sample, step).
// The returned log-prob is that of the *unmodified* distribution softmax(logits / T): penalties
// and truncation change what is drawn, not the value the trainer recomputes.
SampledTokens sample_tokens(const torch::Tensor& logits, const std::vector<SampleRow>& rows,
                            const torch::Tensor& seen = torch::Tensor());

}  // namespace r1kit
