// Single-sequence generation with the KV cache: prefill the prompt, then one token per step,
// greedy (temperature 0) or sampled from softmax(logits / temperature). The batched rollout
// engine lives in rollout/; this is the simple reference path used by `r1kit generate` and tests.
#pragma once
#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace r1kit {

struct GenerateOptions {
  int64_t max_new_tokens = 64;        // stop after this many new tokens
  double temperature = 0.0;           // 0: greedy argmax
  double top_p = 1.0;                 // nucleus sampling mass (1: off)
  uint64_t seed = 0;                  // sampling seed (same seed, same tokens)
  std::vector<int64_t> stop_ids;      // generation stops after emitting one of these (kept in output)
};

// Returns the new token ids (without the prompt). The prompt must be non-empty.
std::vector<int64_t> generate_tokens(Transformer& model, const std::vector<int64_t>& prompt_ids,
                                     const GenerateOptions& opts);

}  // namespace r1kit
