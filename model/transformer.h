// The decoder shared by HF model_type qwen2 and llama: token embedding, N pre-norm blocks
// (RMSNorm -> attention with RoPE and grouped-query heads -> residual, RMSNorm -> SwiGLU MLP ->
// residual), final RMSNorm, lm_head (tied to the embedding or not).
// Submodule names follow HF, so named_parameters() are the HF tensor names minus "model."
// (lm_head.weight stays "lm_head.weight").
// The layers themselves: model/decoder_layer.h.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/autocast.h"
#include "model/decoder_layer.h"
#include "model/kv_cache.h"
#include "model/layer_ops.h"
#include "model/model_config.h"
#include "model/train_ops.h"

namespace r1kit {

// Output of forward_shared_prefix: final-normed hidden states.
struct SharedPrefixHidden {
  torch::Tensor prompt;      // [P, Tp, C]
  torch::Tensor completion;  // [P*G, Tc, C]
};

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const ModelConfig& cfg);

  // ids, positions: [B,T] int64. Without cache: causal attention over the T tokens of each row.
  // With cache: batch row b uses cache row rows[b] (rows == nullptr: b). Its T new K/V go to slots
  // length(row) .. length(row)+T-1; query t attends slots [0, length(row)+t]; then length(row) += T.
  // Different rows may have different lengths in one call (batched decode, T = 1).
  // Returns logits [B,T,V] float32.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& positions, KvCache* cache = nullptr,
                        const std::vector<int64_t>* rows = nullptr);
  // Same arguments; the final-normed hidden states [B,T,C] in the model dtype (before lm_head).
  torch::Tensor forward_hidden(const torch::Tensor& ids, const torch::Tensor& positions, KvCache* cache = nullptr,
                               const std::vector<int64_t>* rows = nullptr);
  // Packed rows (sequence packing, sft/sft_packing.h): each row holds several documents, and
  // segments [B,T] int64 says which (equal value = same document). Query t attends key s only when
  // s <= t and segments[b,s] == segments[b,t], so no document sees another; `positions` should
  // restart at 0 with each document (RoPE then sees each one as if it were alone). Without a cache;
  // equals forward_hidden of every document on its own (up to float rounding).
  torch::Tensor forward_hidden_packed(const torch::Tensor& ids, const torch::Tensor& positions,
                                      const torch::Tensor& segments);
  // The hidden states of forward_hidden (segments undefined) or forward_hidden_packed only at
  // `keep` ([N] int64 indices into the B*T flattened rows) -> [N, C], as a loss over some positions
  // needs them: the last layer's o_proj, MLP and the final norm run on those rows only (its
  // attention still runs over all rows). Equal to the full forward's rows up to float rounding.
  torch::Tensor forward_hidden_rows(const torch::Tensor& ids, const torch::Tensor& positions,
                                    const torch::Tensor& segments, const torch::Tensor& keep);
  // Training forward for groups of completions sharing a prompt: prompt p's tokens run through the
  // model once, and its G completions attend to its K/V. prompt_ids [P, Tp] right-padded, with
  // prompt_lengths[p] real tokens; completion_ids [P*G, Tc] right-padded, rows p*G .. p*G+G-1
  // continuing prompt p at positions prompt_lengths[p] + t. Equal to forward_hidden on the
  // concatenated rows (up to float rounding), at the cost of P instead of P*G prompts.
  // With `keep` ([N] int64 indices into the P*G*Tc completion rows) the completion's hidden states
  // only at those rows, [N,C], as forward_hidden_rows does (SFT rows sharing their first tokens).
  SharedPrefixHidden forward_shared_prefix(const torch::Tensor& prompt_ids, const std::vector<int64_t>& prompt_lengths,
                                           const torch::Tensor& completion_ids, int64_t group_size,
                                           const torch::Tensor& keep = {});
  // lm_head applied to hidden [..., C] -> float32 logits [..., V] (ATen: the reference arithmetic).
  torch::Tensor logits_from_hidden(const torch::Tensor& hidden);
  // The same for decoding: the batch-invariant native kernel on CPU float32, else as above.
  // `reuse`: a buffer kept between decode steps (see linear() in model/layer_ops.h).
  torch::Tensor decode_logits(const torch::Tensor& hidden, torch::Tensor* reuse = nullptr);

  // Kernels of the forward without a cache (model/layer_ops.h): kAten (default, reference
  // arithmetic) or kOneDnn (trainers on CPU). Forwards with a cache always decode with kNative
  // where it applies.
  void set_kernels(Kernels kernels) { kernels_ = kernels; }
  Kernels kernels() const { return kernels_; }
  // The fused CPU float32 training ops (model/train_ops.h) in forwards without a cache: RMSNorm,
  // RoPE, SiLU-gate and attention, each one autograd node. Off by default (the eager formula); the
  // trainers turn it on. Changes values only by float32 rounding. R1_TRAIN_OPS=0 keeps it off.
  void set_train_ops(bool on) { train_ops_ = on && train_ops_enabled(); }
  bool train_ops() const { return train_ops_; }
  // Whether a forward from token ids made now runs them (on, CPU float32, no autocast here or from
  // compute_options): the forwards whose shared-prefix attention takes no mask.
  bool train_ops_active() const { return use_train_ops(embed_tokens->weight) && !compute_.autocast; }
  // Re-homes every layer's q/k/v and gate/up parameters into one tensor each (FusedRows) so that
  // decoding runs one matmul per group. Idempotent; for inference replicas (the rollout engine).
  void fuse_projections();

  // Autocast and activation checkpointing (model/autocast.h); not saved with the weights.
  void set_compute_options(const ComputeOptions& options) { compute_ = options; }
  const ComputeOptions& compute_options() const { return compute_; }

  const ModelConfig& config() const { return cfg_; }
  torch::Dtype dtype() const;    // dtype of the parameters
  torch::Device device() const;  // device of the parameters
  // The lm_head weight [V,C]: embed_tokens.weight when tied.
  torch::Tensor lm_head_weight() const;

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  // The fused training ops apply to a forward from x (embedded tokens): on, CPU float32, no autocast
  // (whose bf16 matmul outputs they do not take).
  bool use_train_ops(const torch::Tensor& x) const {
    return train_ops_ && train_ops_apply(x) && !AutocastScope::enabled(x.device());
  }
  // Activation checkpointing applies to this call (training forward with gradients).
  bool checkpointing() const {
    return compute_.activation_checkpointing && is_training() && torch::GradMode::is_enabled();
  }
  ForwardContext cache_context(int64_t B, int64_t T, KvCache* cache, const std::vector<int64_t>* rows,
                               const torch::Tensor& x);
  // forward_hidden, forward_hidden_packed (segments undefined: unpacked) and forward_hidden_rows
  // (keep defined).
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& positions, KvCache* cache,
                              const std::vector<int64_t>* rows, const torch::Tensor& segments,
                              const torch::Tensor& keep = {});
  ModelConfig cfg_;
  RotaryEmbedding rope_;
  Kernels kernels_ = Kernels::kAten;
  bool train_ops_ = false;
  ComputeOptions compute_;
  DecodeWeightCopy lm_head_copy_;  // decode_logits' copies of the lm_head weight
};
TORCH_MODULE(Transformer);

}  // namespace r1kit
