// Per-token log-probs (and entropies) of completion tokens under a model, computed in chunks of
// positions: forward_hidden once, then lm_head + log_softmax + gather on at most `chunk_size`
// completion positions at a time, so the [B, T, V] logits / log-softmax (V = 152k for Qwen) are
// never materialised. Prompt and padding positions never reach the lm_head at all. Under autograd
// the backward pass recomputes each chunk's logits from the saved hidden states (fused linear +
// log-softmax), so training memory is also O(chunk_size x V), not O(completion tokens x V).
//
// Batch layout: each row is prompt + completion, right-padded. The model has no padding mask,
// and right padding needs none: with causal attention a real token never sees the pads after it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/transformer.h"

namespace r1kit::grpo {

// Prompt + completion rows packed for one forward.
struct CompletionBatch {
  torch::Tensor input_ids;        // [B, T] int64: prompt_i ++ completion_i ++ pad (0)
  torch::Tensor positions;        // [B, T] int64: 0 .. T-1
  torch::Tensor completion_ids;   // [B, C] int64, right-padded with 0 (C = longest completion)
  torch::Tensor completion_mask;  // [B, C] bool: true on real completion tokens
  std::vector<int64_t> prompt_lengths;      // per row, >= 1
  std::vector<int64_t> completion_lengths;  // per row, >= 0
};

// Packs rows; prompts must be non-empty. Tensors go to `device`.
CompletionBatch make_completion_batch(const std::vector<std::vector<int64_t>>& prompts,
                                      const std::vector<std::vector<int64_t>>& completions,
                                      torch::Device device = torch::kCPU);

struct LogprobOptions {
  double temperature = 1.0;  // logits are divided by it (match the sampler's temperature)
  int64_t chunk_size = 512;  // completion positions per lm_head + log_softmax call
  bool entropy = false;      // also compute per-token entropy of the tempered distribution (no grad)
};

struct CompletionLogprobs {
  torch::Tensor logprobs;  // [B, C] float32, 0 at padding; differentiable when grad mode is on
  torch::Tensor entropy;   // [B, C] float32, 0 at padding; undefined unless options.entropy
};

// log softmax(logits(t-1) / temperature)[completion token t] for every completion token.
// Runs under the caller's grad mode: wrap in torch::NoGradGuard for old / reference log-probs.
CompletionLogprobs completion_logprobs(Transformer& model, const CompletionBatch& batch,
                                       const LogprobOptions& options = {});

// Entropy -sum p log p of each row of logits [N, V] (float32), computed as logsumexp - E_p[z].
torch::Tensor entropy_from_logits(const torch::Tensor& logits);

}  // namespace r1kit::grpo
