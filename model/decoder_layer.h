// One pre-norm decoder block of the qwen2 / llama decoder (model/transformer.h) and its parts:
// RMSNorm, rotary embedding, grouped-query attention (cache, shared-prefix, packed and training
// paths), SwiGLU MLP, and the ForwardContext a forward call shares across its layers.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "model/autocast.h"
#include "model/kv_cache.h"
#include "model/layer_ops.h"
#include "model/linear.h"
#include "model/model_config.h"
#include "model/train_ops.h"

namespace r1kit {

// RMSNorm computed in float32 (as HF does for bf16 models): w * x / sqrt(mean(x^2) + eps).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  // train_ops: the fused training op (model/train_ops.h; the caller checked that it applies).
  torch::Tensor forward(const torch::Tensor& x, Kernels kernels = Kernels::kAten, bool train_ops = false);
  // Training ops only: (x + a, forward(x + a)) in one op (model/train_ops.h's train_add_rms_norm).
  std::pair<torch::Tensor, torch::Tensor> forward_add(const torch::Tensor& x, const torch::Tensor& a);
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

// Prompt K/V per layer ([P, KV, Tp, D], after RoPE) for the shared-prefix forward.
struct PrefixKv {
  std::vector<torch::Tensor> k, v;
};

// Which keys the shared-prefix forward's completion queries may see, once per prompt: [P,Tc,Tp+Tc]
// bool, true where completion query t may see key j (the prompt's real tokens, then its own s <= t).
// The attention runs a prompt's G completions as one batch row of G*KV heads, each KV head's R query
// heads one after another ([P,G*KV,R*Tc,D]), so the mask broadcasts over all of them: P*Tc*(Tp+Tc)
// bytes, not G*R times that and once more per layer.
class PrefixMask {
 public:
  PrefixMask(torch::Tensor allowed, int64_t n_rep) : allowed_(std::move(allowed)), n_rep_(n_rep) {}
  const torch::Tensor& allowed() const { return allowed_; }  // [P,Tc,Tp+Tc]
  // The same as an additive mask (0 or -inf) in `dtype` in the grouped-heads layout,
  // [P,1,R*Tc,Tp+Tc], made on the first call and shared by every layer after it (given a bool mask,
  // SDPA makes such a copy on each call and keeps it for backward).
  torch::Tensor bias(torch::ScalarType dtype) const;

 private:
  torch::Tensor allowed_;
  int64_t n_rep_;
  mutable torch::Tensor bias_;  // one forward's layers run one after another: no lock
};

// What one forward call shares across layers (built once by TransformerImpl).
struct ForwardContext {
  Kernels kernels = Kernels::kAten;
  torch::Tensor cos, sin;       // [B,T,1,D] in x's dtype; kNative and train_ops: [B*T, D] float32
  // With a KV cache: batch row b uses cache row rows[b], whose length before the call is past[b].
  KvCache* cache = nullptr;
  std::vector<int64_t> rows, past;
  torch::Tensor row_index;      // [B] int64 (ATen path)
  torch::Tensor slot_index;     // [B,T] int64: cache slot each new token's K/V goes to (ATen path)
  int64_t first_row = -1;       // rows are first_row .. first_row+B-1 (slice, no gather); -1 otherwise
  int64_t attend_len = 0;       // slots [0, attend_len) are read: max over rows of length + T
  torch::Tensor mask;           // [B,1,R*T,L] bool, true = may attend (cache path)
  // Packed rows without a cache (sequence packing): [B,1,T,T] bool, true where query t may attend
  // key s (same document and s <= t). Undefined: plain causal attention over the whole row.
  torch::Tensor packed_mask;
  // Shared-prefix forward: the prompt pass records its K/V; the completion pass (rows_per_prefix
  // rows per prompt) attends to them first.
  PrefixKv* record = nullptr;
  const PrefixKv* prefix = nullptr;
  int64_t rows_per_prefix = 1;
  std::shared_ptr<const PrefixMask> prefix_mask;  // without the fused training ops (they take lengths)
  // The fused training ops (TransformerImpl::set_train_ops) on this call; packed rows' first visible
  // key per query [B*T] (model/train_ops.h); with a prefix, the prompt keys each completion row sees
  // [B] int64 CPU.
  bool train_ops = false;
  torch::Tensor first_key, prefix_length;
  // Set on the last layer's context by forward_hidden_rows: [N] int64 indices into the B*T rows.
  // The layer's attention runs over all rows (they are keys), o_proj and the MLP only on these,
  // and it returns [N, C]. Without a cache only.
  torch::Tensor keep_rows;
  // With keep_rows and the fused training ops (no packing): the last layer's queries
  // (q projection, RoPE, attention rows) only at positions t >= first_query, the smallest kept t
  // (0: at all); query_rows are keep_rows as indices into those B * (T - first_query) rows
  // (undefined: all of them, in order).
  int64_t first_query = 0;
  torch::Tensor query_rows;
};

// Parameters of one layer re-homed as consecutive row blocks of one tensor (q/k/v, gate/up), so
// decoding runs one matmul for them. Names, shapes and values of the parameters do not change
// (HF save/load is unaffected); in-place updates (optimizer steps, load_hf_state_dict) keep the
// fused tensor current. Anything that replaces a parameter's storage (Module::to) unfuses it,
// which valid() detects.
class FusedRows {
 public:
  void fuse(const std::vector<torch::Tensor>& params);
  bool valid(const std::vector<torch::Tensor>& params) const;
  const torch::Tensor& tensor() const { return fused_; }
  // The fused tensor's copies for decoding (model/decode_weight_copy.h; the parameters are its writers).
  DecodeWeightCopy* decode_copy() { return &copy_; }

 private:
  torch::Tensor fused_;
  DecodeWeightCopy copy_;
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& cfg, int64_t layer_index);
  // x [B,T,C] -> [B,T,C].
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext& ctx);
  void fuse_projections();
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};  // model/linear.h: + optional LoRA

 private:
  torch::Tensor forward_native_cached(const torch::Tensor& x, const ForwardContext& ctx);
  // o_proj of the attention output y [B,T,H*D] -> [B,T,C], or [N,C] on ctx.keep_rows.
  torch::Tensor project_out(const torch::Tensor& y, const ForwardContext& ctx);
  // Without a cache, with the fused training ops (ctx.train_ops): qkv [B,T,(H+2KV)*D] projections.
  torch::Tensor forward_train(const torch::Tensor& qkv, const ForwardContext& ctx);
  // The same with queries from ctx.first_query on (x [B,T,C]): q projected from those rows only.
  torch::Tensor forward_train_last_queries(const torch::Tensor& x, const ForwardContext& ctx);
  // The prompt K/V this layer's completion rows attend to first (ctx.prefix set).
  TrainAttentionPrefix train_prefix(const ForwardContext& ctx) const;
  // [..., (H + 2*KV) * D]: q | k | v, from the fused weight when it is valid; else with
  // concat_weights (training) one matmul on the weights concatenated for this call; else, and with an
  // active adapter, three projections.
  torch::Tensor project_qkv(const torch::Tensor& x, Kernels kernels, bool concat_weights = false);
  std::vector<torch::Tensor> qkv_weights() const;
  std::vector<torch::Tensor> qkv_biases() const;
  int64_t n_heads_, n_kv_, head_dim_, layer_;
  FusedRows qkv_weight_, qkv_bias_;
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  explicit MLPImpl(const ModelConfig& cfg);
  // down(silu(gate(x)) * up(x)); use_fused: one matmul for gate|up when fused and no adapter is
  // active on them (decoding).
  // train_ops: one matmul for gate|up and the fused SiLU-gate of model/train_ops.h (the caller
  // checked that they apply).
  torch::Tensor forward(const torch::Tensor& x, Kernels kernels = Kernels::kAten, bool use_fused = false,
                        bool train_ops = false);
  void fuse_projections();
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};  // model/linear.h: + optional LoRA

 private:
  FusedRows gate_up_;
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext& ctx);
  // Training ops (ctx.train_ops), no cache: the same layer with its residual adds left to the norms
  // that read them. Input: the residual stream x plus `pending` (the previous layer's MLP output,
  // undefined for the first layer); returns (h, mlp output), whose sum is forward()'s result.
  std::pair<torch::Tensor, torch::Tensor> forward_pending(const torch::Tensor& x, const torch::Tensor& pending,
                                                          const ForwardContext& ctx);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace r1kit
