// Per-token log-probs (and entropies) of completion tokens under a model, computed in chunks of
// positions: one forward for the hidden states, then lm_head + log_softmax + gather on at most
// `chunk_size` completion positions at a time, so the [B, T, V] logits / log-softmax (V = 152k for
// Qwen) are never materialised. Prompt and padding positions never reach the lm_head at all. Under
// autograd the lm_head runs once: the backward pass reuses the forward's probabilities while they
// fit `keep_probs_bytes`, and only past that budget recomputes each chunk's logits from the saved
// hidden states (fused linear + log-softmax), so memory stays bounded either way.
//
// Two batch layouts: CompletionBatch (prompt + completion per row), and PackedBatch
// (grpo/packed_batch.h: a group's prompt runs once for its G completions).
//
// Batch layout: each row is prompt + completion, right-padded. The model has no padding mask,
// and right padding needs none: with causal attention a real token never sees the pads after it.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "grpo/packed_batch.h"
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
  int64_t keep_probs_bytes = int64_t{256} << 20;  // under autograd: keep the softmax for backward up to this
};

struct CompletionLogprobs {
  torch::Tensor logprobs;  // [B, C] float32, 0 at padding; differentiable when grad mode is on
  torch::Tensor entropy;   // [B, C] float32, 0 at padding; undefined unless options.entropy
};

// log softmax(logits(t-1) / temperature)[completion token t] for every completion token.
// Runs under the caller's grad mode: wrap in torch::NoGradGuard for old / reference log-probs.
CompletionLogprobs completion_logprobs(Transformer& model, const CompletionBatch& batch,
                                       const LogprobOptions& options = {});
// The same for a packed micro-batch: [batch.num_rows(), Tc], row r = completion row r of the batch.
CompletionLogprobs completion_logprobs(Transformer& model, const PackedBatch& batch, const LogprobOptions& options = {});

// Entropy -sum p log p of each row of logits [N, V] (float32), computed as logsumexp - E_p[z].
torch::Tensor entropy_from_logits(const torch::Tensor& logits);

}  // namespace r1kit::grpo
