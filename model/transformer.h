// The decoder shared by HF model_type qwen2 and llama: token embedding, N pre-norm blocks
// (RMSNorm -> attention with RoPE and grouped-query heads -> residual, RMSNorm -> SwiGLU MLP ->
// residual), final RMSNorm, lm_head (tied to the embedding or not).
// Submodule names follow HF, so named_parameters() are the HF tensor names minus "model."
// (lm_head.weight stays "lm_head.weight").
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "model/autocast.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/model_config.h"

namespace r1kit {

// RMSNorm computed in float32 (as HF does for bf16 models): w * x / sqrt(mean(x^2) + eps).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// Rotary position embedding, HF half-split layout, with default / linear / llama3 frequencies.
// Holds no parameters; inv_freq is computed in float32 like HF.
class RotaryEmbedding {
 public:
  RotaryEmbedding() = default;
  explicit RotaryEmbedding(const ModelConfig& cfg);
  // positions [B,T] int64 -> cos, sin [B,T,head_dim] (float32, on positions' device).
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& positions) const;
  const torch::Tensor& inv_freq() const { return inv_freq_; }  // [head_dim/2] float32, CPU

 private:
  torch::Tensor inv_freq_;
};

// What one forward call with a KV cache shares across layers (built once by TransformerImpl).
struct CacheStep {
  KvCache* cache = nullptr;     // null: no cache, causal attention over the call's T tokens
  torch::Tensor row_index;      // [B] int64: cache row of each batch row
  torch::Tensor slot_index;     // [B,T] int64: cache slot each new token's K/V goes to
  int64_t first_row = -1;       // rows are first_row .. first_row+B-1 (slice, no gather); -1 otherwise
  int64_t attend_len = 0;       // slots [0, attend_len) are read: max over rows of length + T
  torch::Tensor mask;           // [B,1,n_rep*T,attend_len] bool, true = may attend
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& cfg, int64_t layer_index);
  // x [B,T,C]; cos/sin [B,T,1,D] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const CacheStep& step);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};  // model/linear.h: + optional LoRA

 private:
  int64_t n_heads_, n_kv_, head_dim_, layer_;
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const CacheStep& step);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

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
  // lm_head applied to hidden [..., C] -> float32 logits [..., V].
  torch::Tensor logits_from_hidden(const torch::Tensor& hidden);

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
  ModelConfig cfg_;
  RotaryEmbedding rope_;
  ComputeOptions compute_;
};
TORCH_MODULE(Transformer);

}  // namespace r1kit
