// The decoder shared by HF model_type qwen2 and llama: token embedding, N pre-norm blocks
// (RMSNorm -> attention with RoPE and grouped-query heads -> residual, RMSNorm -> SwiGLU MLP ->
// residual), final RMSNorm, lm_head (tied to the embedding or not).
// Submodule names follow HF, so named_parameters() are the HF tensor names minus "model."
// (lm_head.weight stays "lm_head.weight").
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

// Which keys the shared-prefix forward's completion queries may see, once per prompt:
// [P,1,R*Tc,Tp+Tc] bool in the grouped-heads layout (query row r*Tc + t; R query heads per KV head).
// The attention runs a prompt's G completions as one batch row of G*KV heads, so the mask broadcasts
// over them: P*R*Tc*(Tp+Tc) bytes, not G times that and once more per layer.
class PrefixMask {
 public:
  explicit PrefixMask(torch::Tensor allowed) : allowed_(std::move(allowed)) {}
  const torch::Tensor& allowed() const { return allowed_; }
  // The same as an additive mask (0 or -inf) in `dtype`, made on the first call and shared by every
  // layer after it (given a bool mask, SDPA makes such a copy on each call and keeps it for backward).
  torch::Tensor bias(torch::ScalarType dtype) const;

 private:
  torch::Tensor allowed_;
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
