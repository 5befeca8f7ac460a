#include "model/transformer.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "core/check.h"
#include "model/activation_checkpoint.h"
#include "model/train_ops.h"

namespace r1kit {

using torch::indexing::Slice;

torch::Tensor PrefixMask::bias(torch::ScalarType dtype) const {
  if (!bias_.defined() || bias_.scalar_type() != dtype) {
    // Rows of keys padded to a multiple of 16: CUDA's memory-efficient attention wants aligned rows
    // and would otherwise pad a copy of the mask on every call.
    const int64_t L = allowed_.size(-1), padded = (L + 15) / 16 * 16;
    std::vector<int64_t> shape(allowed_.sizes().begin(), allowed_.sizes().end());
    shape.back() = padded;
    auto full = torch::full(shape, -std::numeric_limits<float>::infinity(),
                            torch::TensorOptions().dtype(dtype).device(allowed_.device()));
    bias_ = full.narrow(-1, 0, L);
    bias_.masked_fill_(allowed_, 0.0);
  }
  return bias_;
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: normalise in float32, cast back, then scale (HF LlamaRMSNorm / Qwen2RMSNorm order).

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x, Kernels kernels, bool train_ops) {
  if (train_ops) return train_rms_norm(x, weight, eps_);
  return rms_norm(x, weight, eps_, kernels);  // [..., C]
}

std::pair<torch::Tensor, torch::Tensor> RMSNormImpl::forward_add(const torch::Tensor& x, const torch::Tensor& a) {
  return train_add_rms_norm(x, a, weight, eps_);
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding. inv_freq[i] = theta^(-2i/D), i < D/2, computed in float32 like HF, then
// rescaled per rope type. Angles pos * inv_freq in float32.

RotaryEmbedding::RotaryEmbedding(const ModelConfig& cfg) {
  const int64_t D = cfg.head_dim;
  auto exponents = torch::arange(0, D, 2, torch::kLong).to(torch::kFloat32) / float(D);
  inv_freq_ = 1.0 / torch::pow(torch::tensor(float(cfg.rope_theta)), exponents);  // [D/2] f32
  const RopeScaling& rs = cfg.rope_scaling;
  if (rs.type == "linear") {
    inv_freq_ = inv_freq_ / float(rs.factor);
  } else if (rs.type == "llama3") {
    // Long wavelengths (low frequencies) are divided by `factor`, short ones kept, and the band
    // between is a linear blend in 1/wavelength (HF _compute_llama3_parameters).
    const double orig = double(rs.original_max_position_embeddings);
    const double low_wavelen = orig / rs.low_freq_factor, high_wavelen = orig / rs.high_freq_factor;
    auto f = inv_freq_.accessor<float, 1>();
    for (int64_t i = 0; i < f.size(0); ++i) {
      const float freq = f[i];
      const float wavelen = float(2 * M_PI) / freq;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f[i] = freq / float(rs.factor);
      } else {
        const float s = float((orig / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor));
        f[i] = (1 - s) * freq / float(rs.factor) + s * freq;
      }
    }
  }
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::cos_sin(const torch::Tensor& positions) const {
  auto inv = inv_freq_.to(positions.device());
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv;  // [B,T,D/2]
  auto emb = torch::cat({freqs, freqs}, -1);                        // [B,T,D]
  return {emb.cos(), emb.sin()};
}

namespace {

// The layer's output with the chosen kernels, plus its LoRA update when an adapter is active
// (model/linear.h: LinearImpl::forward's arithmetic).
torch::Tensor apply_linear(LinearImpl& l, const torch::Tensor& x, Kernels kernels) {
  torch::Tensor y = linear(x, l.weight, l.bias, kernels, nullptr, &l.decode_copy);
  if (l.lora && l.lora->enabled) y = y + l.lora->delta(x, l.is_training()).to(y.scalar_type());
  return y;
}

bool has_adapter(const LinearImpl& l) { return l.lora && l.lora->enabled; }

// The layers' outputs side by side [..., sum of their out features] (they all have a bias or none).
// one_matmul and no active adapter: one matmul on their weights concatenated for this call (autograd
// splits the gradient); else each layer on its own.
torch::Tensor concat_linear(std::initializer_list<LinearImpl*> layers, const torch::Tensor& x, Kernels kernels,
                            bool one_matmul) {
  bool adapters = false;
  for (const LinearImpl* l : layers) adapters = adapters || has_adapter(*l);
  std::vector<torch::Tensor> weights, biases, outputs;
  for (LinearImpl* l : layers) {
    if (one_matmul && !adapters) {
      weights.push_back(l->weight);
      if (l->bias.defined()) biases.push_back(l->bias);
    } else {
      outputs.push_back(apply_linear(*l, x, kernels));
    }
  }
  if (!outputs.empty()) return torch::cat(outputs, -1);
  return linear(x, torch::cat(weights, 0), biases.empty() ? torch::Tensor() : torch::cat(biases, 0), kernels);
}

// x [B,T,heads,D] -> x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x[D/2:], x[:D/2]).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FusedRows: parameters re-pointed into row blocks of one tensor.

void FusedRows::fuse(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  // A normal tensor even when fused under InferenceMode (the rollout engine): its version counter
  // tells the decode copies (copy_) about writes.
  c10::InferenceMode not_inference(false);
  int64_t rows = 0;
  for (const auto& p : params) rows += p.size(0);
  std::vector<int64_t> shape(params[0].sizes().begin(), params[0].sizes().end());
  shape[0] = rows;
  fused_ = torch::empty(shape, params[0].options().requires_grad(false));
  int64_t offset = 0;
  for (const auto& p : params) {
    auto block = fused_.narrow(0, offset, p.size(0));
    block.copy_(p);
    torch::Tensor handle = p;  // same TensorImpl as the module's parameter
    handle.set_data(block);
    offset += p.size(0);
  }
}

bool FusedRows::valid(const std::vector<torch::Tensor>& params) const {
  if (!fused_.defined()) return false;
  int64_t offset = 0;
  for (const auto& p : params) {
    if (p.scalar_type() != fused_.scalar_type() || p.device() != fused_.device() || p.dim() != fused_.dim() ||
        offset + p.size(0) > fused_.size(0) || !p.is_contiguous() ||
        p.data_ptr() != fused_.narrow(0, offset, p.size(0)).data_ptr())
      return false;
    offset += p.size(0);
  }
  return offset == fused_.size(0);
}

// ---------------------------------------------------------------------------------------------
// Attention. Query head h reads KV head h / n_rep. Grouping the n_rep query heads of one KV
// head into the "sequence" dimension ([B,KV,n_rep*T,D]) lets every head share the K/V tensors
// without repeating them.

AttentionImpl::AttentionImpl(const ModelConfig& cfg, int64_t layer_index)
    : n_heads_(cfg.num_attention_heads), n_kv_(cfg.num_key_value_heads), head_dim_(cfg.head_dim), layer_(layer_index) {
  const int64_t C = cfg.hidden_size, D = cfg.head_dim;
  const bool bias = cfg.attention_bias;
  q_proj = register_module("q_proj", Linear(torch::nn::LinearOptions(C, n_heads_ * D).bias(bias)));
  k_proj = register_module("k_proj", Linear(torch::nn::LinearOptions(C, n_kv_ * D).bias(bias)));
  v_proj = register_module("v_proj", Linear(torch::nn::LinearOptions(C, n_kv_ * D).bias(bias)));
  o_proj = register_module("o_proj", Linear(torch::nn::LinearOptions(n_heads_ * D, C).bias(false)));
}

std::vector<torch::Tensor> AttentionImpl::qkv_weights() const { return {q_proj->weight, k_proj->weight, v_proj->weight}; }
std::vector<torch::Tensor> AttentionImpl::qkv_biases() const { return {q_proj->bias, k_proj->bias, v_proj->bias}; }

void AttentionImpl::fuse_projections() {
  if (!qkv_weight_.valid(qkv_weights())) qkv_weight_.fuse(qkv_weights());
  if (q_proj->bias.defined() && !qkv_bias_.valid(qkv_biases())) qkv_bias_.fuse(qkv_biases());
}

torch::Tensor AttentionImpl::project_qkv(const torch::Tensor& x, Kernels kernels, bool concat_weights) {
  const bool bias = q_proj->bias.defined();
  const bool adapters = has_adapter(*q_proj) || has_adapter(*k_proj) || has_adapter(*v_proj);
  if (!adapters && qkv_weight_.valid(qkv_weights()) && (!bias || qkv_bias_.valid(qkv_biases())))
    return linear(x, qkv_weight_.tensor(), bias ? qkv_bias_.tensor() : torch::Tensor(), kernels, nullptr,
                  qkv_weight_.decode_copy(), qkv_weights());
  return concat_linear({q_proj.get(), k_proj.get(), v_proj.get()}, x, kernels, concat_weights);
}

// Decoding on the CPU: one matmul for q|k|v, RoPE in place, K/V written to the cache, attention
// read straight from each row's cache slots (model/cpu_kernels.h).
torch::Tensor AttentionImpl::forward_native_cached(const torch::Tensor& x, const ForwardContext& ctx) {
  const int64_t B = x.size(0), T = x.size(1), H = n_heads_, KV = n_kv_, D = head_dim_;
  torch::Tensor qkv = project_qkv(x.reshape({B * T, x.size(2)}), Kernels::kNative);  // [B*T, (H+2KV)*D]
  native_rope_(qkv, 0, H, ctx.cos, ctx.sin);                                          // q
  native_rope_(qkv, H * D, KV, ctx.cos, ctx.sin);                                     // k
  torch::Tensor& ck = ctx.cache->k(layer_);  // [N,KV,max_len,D]
  torch::Tensor& cv = ctx.cache->v(layer_);
  native_cache_write(qkv, H * D, (H + KV) * D, ck, cv, ctx.rows, ctx.past, T);
  torch::Tensor y = native_cached_attention(qkv, ck, cv, ctx.rows, ctx.past, T, H, KV, D);  // [B*T, H*D]
  return apply_linear(*o_proj, y, Kernels::kNative).view({B, T, -1});
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const ForwardContext& ctx) {
  if (ctx.cache != nullptr && ctx.kernels == Kernels::kNative) return forward_native_cached(x, ctx);
  const int64_t B = x.size(0), T = x.size(1), H = n_heads_, KV = n_kv_, D = head_dim_, R = H / KV;
  const Kernels kn = ctx.kernels;
  torch::Tensor q, k, v;
  if (ctx.cache != nullptr) {  // decoding: one matmul when q/k/v are fused
    torch::Tensor qkv = project_qkv(x.reshape({B * T, x.size(2)}), kn).view({B, T, -1});
    q = qkv.narrow(2, 0, H * D), k = qkv.narrow(2, H * D, KV * D), v = qkv.narrow(2, (H + KV) * D, KV * D);
  } else if (ctx.train_ops) {
    if (ctx.first_query > 0) return forward_train_last_queries(x, ctx);
    return forward_train(project_qkv(x, kn, /*concat_weights=*/true), ctx);  // qkv [B,T,(H+2KV)*D]
  } else {
    q = apply_linear(*q_proj, x, kn);
    k = apply_linear(*k_proj, x, kn);
    v = apply_linear(*v_proj, x, kn);
  }
  q = apply_rope(q.view({B, T, H, D}), ctx.cos, ctx.sin);   // [B,T,H,D]
  k = apply_rope(k.view({B, T, KV, D}), ctx.cos, ctx.sin);  // [B,T,KV,D]
  v = v.view({B, T, KV, D});                                // [B,T,KV,D]
  const double scale = 1.0 / std::sqrt(double(D));

  torch::Tensor keys, values, mask;  // keys/values [B,KV,L,D]; mask [B,1,R*T,L] bool or undefined
  if (ctx.cache != nullptr) {
    // Write the T new K/V of batch row b to slots slot_index[b] of cache row row_index[b].
    torch::Tensor& ck = ctx.cache->k(layer_);  // [N,KV,max_len,D]
    torch::Tensor& cv = ctx.cache->v(layer_);
    auto row_idx = ctx.row_index.unsqueeze(1);  // [B,1]
    ck.index_put_({row_idx, Slice(), ctx.slot_index}, k.to(ck.scalar_type()));  // value [B,T,KV,D]
    cv.index_put_({row_idx, Slice(), ctx.slot_index}, v.to(cv.scalar_type()));
    if (ctx.first_row >= 0) {
      keys = ck.narrow(0, ctx.first_row, B).narrow(2, 0, ctx.attend_len);  // [B,KV,L,D] view
      values = cv.narrow(0, ctx.first_row, B).narrow(2, 0, ctx.attend_len);
    } else {
      keys = ck.narrow(2, 0, ctx.attend_len).index_select(0, ctx.row_index);  // [B,KV,L,D] gathered
      values = cv.narrow(2, 0, ctx.attend_len).index_select(0, ctx.row_index);
    }
    if (keys.scalar_type() != x.scalar_type()) {
      keys = keys.to(x.scalar_type());
      values = values.to(x.scalar_type());
    }
    mask = ctx.mask;
  } else if (ctx.prefix != nullptr) {
    // Completions of shared prompts: the prompt's K/V (one copy per completion row) come first.
    const int64_t G = ctx.rows_per_prefix;
    auto per_row = [&](const torch::Tensor& t) {  // [P,KV,Tp,D] -> [P*G,KV,Tp,D]
      return t.unsqueeze(1).expand({t.size(0), G, KV, t.size(2), D}).reshape({B, KV, t.size(2), D});
    };
    keys = torch::cat({per_row(ctx.prefix->k[layer_]), k.transpose(1, 2)}, 2);  // [B,KV,Tp+T,D]
    values = torch::cat({per_row(ctx.prefix->v[layer_]), v.transpose(1, 2)}, 2);
  } else {
    keys = k.transpose(1, 2);    // [B,KV,T,D]
    values = v.transpose(1, 2);  // [B,KV,T,D]
    if (ctx.record != nullptr) {
      ctx.record->k[layer_] = keys;
      ctx.record->v[layer_] = values;
    }
#if TORCH_VERSION_MAJOR >= 2
    // Causal fused attention (flash / memory-efficient on CUDA): repeat K/V per query head. Packed
    // rows pass their block-diagonal causal mask instead (memory-efficient / math kernels).
    if (R > 1) {
      keys = keys.repeat_interleave(R, 1);
      values = values.repeat_interleave(R, 1);
    }
    auto y = ctx.packed_mask.defined()
                 ? at::scaled_dot_product_attention(q.transpose(1, 2), keys, values, ctx.packed_mask, 0.0, false)
                 : at::scaled_dot_product_attention(q.transpose(1, 2), keys, values, {}, 0.0, /*is_causal=*/true);
    return project_out(y.transpose(1, 2).reshape({B, T, H * D}), ctx);  // y [B,H,T,D]
#else
    if (ctx.packed_mask.defined()) {  // [B,1,T,T] -> [B,1,R*T,T], the layout of the grouped heads
      mask = ctx.packed_mask.unsqueeze(2).expand({B, 1, R, T, T}).reshape({B, 1, R * T, T});
    } else {
      auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).tril();
      mask = causal.unsqueeze(0).expand({R, T, T}).reshape({1, 1, R * T, T});  // [1,1,R*T,T]
    }
#endif
  }

  // Grouped attention: [B,T,H,D] -> [B,H,T,D] -> [B,KV,R*T,D] (heads h = kv*R + r). Shared-prefix
  // completions: the G rows of a prompt as one row of G*KV heads, [P,G*KV,R*T,D], which its mask
  // ([P,1,R*T,L]) broadcasts over.
  const int64_t att_rows = ctx.prefix != nullptr ? B / ctx.rows_per_prefix : B, L = keys.size(2);
  auto qg = q.transpose(1, 2).reshape({att_rows, -1, R * T, D});
  keys = keys.reshape({att_rows, -1, L, D});
  values = values.reshape({att_rows, -1, L, D});
#if TORCH_VERSION_MAJOR >= 2
  if (ctx.prefix != nullptr) {
    // An additive mask in the dtype SDPA computes in (autocast's, else q's), made once per forward.
    const torch::ScalarType dt =
        AutocastScope::enabled(x.device()) ? AutocastScope::dtype(x.device()) : qg.scalar_type();
    qg = qg.to(dt), keys = keys.to(dt), values = values.to(dt);
    mask = ctx.prefix_mask->bias(dt);
  }
  auto y = at::scaled_dot_product_attention(qg, keys, values, mask, 0.0, false);  // [B,KV,R*T,D]
#else
  if (ctx.prefix != nullptr) mask = ctx.prefix_mask->allowed();
  auto scores = torch::matmul(qg, keys.transpose(-1, -2)).mul_(scale);  // [B,KV,R*T,L]
  scores = scores.to(torch::kFloat32).masked_fill_(mask.logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1).to(x.scalar_type());  // [B,KV,R*T,L]
  auto y = torch::matmul(probs, values);                        // [B,KV,R*T,D]
#endif
  (void)scale;
  // [B,KV,R*T,D] -> [B,H,T,D] -> [B,T,H*D]
  // reshape: CUDA SDPA kernels may return y in a transposed layout.
  return project_out(y.reshape({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D}), ctx);
}

torch::Tensor AttentionImpl::project_out(const torch::Tensor& y, const ForwardContext& ctx) {
  if (!ctx.keep_rows.defined()) return apply_linear(*o_proj, y, ctx.kernels);  // [B,T,C]
  // y [B,T,H*D], or with first_query [B,Tq,H*D] whose rows query_rows picks (undefined: all).
  const torch::Tensor rows = y.reshape({-1, y.size(-1)});
  const torch::Tensor& pick = ctx.first_query > 0 ? ctx.query_rows : ctx.keep_rows;
  return apply_linear(*o_proj, pick.defined() ? rows.index_select(0, pick) : rows, ctx.kernels);  // [N,C]
}

torch::Tensor AttentionImpl::forward_train(const torch::Tensor& qkv, const ForwardContext& ctx) {
  const int64_t B = qkv.size(0), T = qkv.size(1), H = n_heads_, KV = n_kv_, D = head_dim_;
  // qkv is this forward's own projection: rotated in place and read where it lies, unless its
  // rotated K/V are recorded or a prefix comes first.
  if (ctx.record == nullptr && ctx.prefix == nullptr && qkv.is_contiguous())
    return project_out(train_rope_attention(qkv, H, KV, ctx.cos, ctx.sin, ctx.first_key), ctx);
  const auto qkv_rot = train_rope_split(qkv, H, KV, ctx.cos, ctx.sin);
  const torch::Tensor &q = qkv_rot[0], &k = qkv_rot[1], &v = qkv_rot[2];  // [B,T,H*D], [B,T,KV*D] x 2
  if (ctx.record != nullptr) {  // PrefixKv's layout [B,KV,T,D]: views of the [B,T,KV,D] tensors
    ctx.record->k[layer_] = k.view({B, T, KV, D}).transpose(1, 2);
    ctx.record->v[layer_] = v.view({B, T, KV, D}).transpose(1, 2);
  }
  const TrainAttentionPrefix prefix = train_prefix(ctx);
  auto y = train_attention(q, k, v, H, KV, ctx.first_key, ctx.prefix != nullptr ? &prefix : nullptr);  // [B,T,H*D]
  return project_out(y, ctx);
}

TrainAttentionPrefix AttentionImpl::train_prefix(const ForwardContext& ctx) const {
  TrainAttentionPrefix prefix;
  if (ctx.prefix == nullptr) return prefix;
  const torch::Tensor& pk = ctx.prefix->k[layer_];  // [P,KV,Tp,D]
  prefix.k = pk.transpose(1, 2).reshape({pk.size(0), pk.size(2), n_kv_ * head_dim_});
  prefix.v = ctx.prefix->v[layer_].transpose(1, 2).reshape({pk.size(0), pk.size(2), n_kv_ * head_dim_});
  prefix.length = ctx.prefix_length;
  prefix.group = ctx.rows_per_prefix;
  return prefix;
}

torch::Tensor AttentionImpl::forward_train_last_queries(const torch::Tensor& x, const ForwardContext& ctx) {
  const int64_t B = x.size(0), T = x.size(1), q0 = ctx.first_query, Tq = T - q0, H = n_heads_, KV = n_kv_,
                D = head_dim_;
  // Keys and values at every position, queries (projection, RoPE, attention rows) from q0 on.
  const auto q = concat_linear({q_proj.get()}, x.narrow(1, q0, Tq), ctx.kernels, true);           // [B,Tq,H*D]
  const auto kv = concat_linear({k_proj.get(), v_proj.get()}, x, ctx.kernels, true);               // [B,T,2*KV*D]
  auto from_q0 = [&](const torch::Tensor& t) {  // [B*T,D] -> the query positions' [B*Tq,D]
    return t.view({B, T, D}).narrow(1, q0, Tq).reshape({B * Tq, D}).contiguous();
  };
  const torch::Tensor q_rot = train_rope_split(q, H, 0, from_q0(ctx.cos), from_q0(ctx.sin))[0];
  const auto kv_rot = train_rope_split(kv, 0, KV, ctx.cos, ctx.sin);
  const TrainAttentionPrefix prefix = train_prefix(ctx);
  return project_out(train_attention(q_rot, kv_rot[1], kv_rot[2], H, KV, torch::Tensor(),
                                     ctx.prefix != nullptr ? &prefix : nullptr),
                     ctx);  // y [B,Tq,H*D]
}

// ---------------------------------------------------------------------------------------------

MLPImpl::MLPImpl(const ModelConfig& cfg) {
  const int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", Linear(torch::nn::LinearOptions(C, I).bias(false)));
  up_proj = register_module("up_proj", Linear(torch::nn::LinearOptions(C, I).bias(false)));
  down_proj = register_module("down_proj", Linear(torch::nn::LinearOptions(I, C).bias(false)));
}

void MLPImpl::fuse_projections() {
  if (!gate_up_.valid({gate_proj->weight, up_proj->weight})) gate_up_.fuse({gate_proj->weight, up_proj->weight});
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x, Kernels kernels, bool use_fused, bool train_ops) {
  if (train_ops) {
    const auto gate_up = concat_linear({gate_proj.get(), up_proj.get()}, x, kernels, /*one_matmul=*/true);  // [B,T,2I]
    return apply_linear(*down_proj, train_swiglu(gate_up), kernels);  // [B,T,C]
  }
  if (use_fused && !has_adapter(*gate_proj) && !has_adapter(*up_proj) &&
      gate_up_.valid({gate_proj->weight, up_proj->weight})) {
    auto gate_up = linear(x, gate_up_.tensor(), {}, kernels, nullptr, gate_up_.decode_copy(),
                          {gate_proj->weight, up_proj->weight});  // [B,T,2I]
    return apply_linear(*down_proj, silu_gate(gate_up, kernels), kernels);  // [B,T,C]
  }
  auto gate = apply_linear(*gate_proj, x, kernels);                        // [B,T,I]
  auto up = apply_linear(*up_proj, x, kernels);                            // [B,T,I]
  return apply_linear(*down_proj, torch::silu(gate) * up, kernels);  // [B,T,C]
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_index) {
  self_attn = register_module("self_attn", Attention(cfg, layer_index));
  mlp = register_module("mlp", MLP(cfg));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

namespace {
// The residual rows the layer continues on: x, or its ctx.keep_rows ([N,C]).
torch::Tensor kept_rows(const torch::Tensor& x, const ForwardContext& ctx) {
  return ctx.keep_rows.defined() ? x.reshape({-1, x.size(-1)}).index_select(0, ctx.keep_rows) : x;
}
}  // namespace

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const ForwardContext& ctx) {
  const bool decoding = ctx.cache != nullptr;                                        // fused q|k|v, gate|up
  const bool fused = ctx.train_ops;
  // keep_rows: the residual and the MLP continue on those rows only ([N,C]).
  const torch::Tensor skip = kept_rows(x, ctx);
  auto h = skip + self_attn(input_layernorm(x, ctx.kernels, fused), ctx);                          // [B,T,C]
  return h + mlp(post_attention_layernorm(h, ctx.kernels, fused), ctx.kernels, decoding, fused);  // [B,T,C]
}

std::pair<torch::Tensor, torch::Tensor> DecoderLayerImpl::forward_pending(const torch::Tensor& x_in,
                                                                          const torch::Tensor& pending,
                                                                          const ForwardContext& ctx) {
  torch::Tensor x = x_in, normed;
  if (pending.defined())
    std::tie(x, normed) = input_layernorm->forward_add(x_in, pending);  // x = x_in + pending
  else
    normed = input_layernorm(x, ctx.kernels, /*train_ops=*/true);
  const torch::Tensor skip = kept_rows(x, ctx);
  auto [h, normed2] = post_attention_layernorm->forward_add(skip, self_attn(normed, ctx));  // h = skip + attention
  return {h, mlp(normed2, ctx.kernels, /*use_fused=*/false, /*train_ops=*/true)};
}

// ---------------------------------------------------------------------------------------------

TransformerImpl::TransformerImpl(const ModelConfig& cfg) : cfg_(cfg), rope_(cfg) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) layers->push_back(DecoderLayer(cfg, l));
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  if (!cfg.tie_word_embeddings)
    lm_head = register_module(
        "lm_head", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden_size, cfg.vocab_size).bias(false)));
}

torch::Dtype TransformerImpl::dtype() const { return embed_tokens->weight.scalar_type(); }
torch::Device TransformerImpl::device() const { return embed_tokens->weight.device(); }
torch::Tensor TransformerImpl::lm_head_weight() const {
  return cfg_.tie_word_embeddings ? embed_tokens->weight : lm_head->weight;
}

void TransformerImpl::fuse_projections() {
  for (const auto& layer : *layers) {
    auto& l = *layer->as<DecoderLayer>();
    l.self_attn->fuse_projections();
    l.mlp->fuse_projections();
  }
}

ForwardContext TransformerImpl::cache_context(int64_t B, int64_t T, KvCache* cache, const std::vector<int64_t>* rows,
                                              const torch::Tensor& x) {
  R1_CHECK(cache->n_layers() == cfg_.num_hidden_layers, "Transformer::forward: cache has ", cache->n_layers(),
           " layers, model has ", cfg_.num_hidden_layers);
  R1_CHECK(!rows || int64_t(rows->size()) == B, "Transformer::forward: ", rows->size(), " cache rows for batch ", B);
  ForwardContext ctx;
  ctx.cache = cache;
  ctx.rows.resize(B);
  ctx.past.resize(B);
  int64_t max_end = 0;
  bool contiguous = true;
  for (int64_t b = 0; b < B; ++b) {
    ctx.rows[b] = rows ? (*rows)[b] : b;
    ctx.past[b] = cache->length(ctx.rows[b]);  // checks the range
    R1_CHECK(ctx.past[b] + T <= cache->max_len(), "Transformer::forward: cache row ", ctx.rows[b], " holds ",
             ctx.past[b], " tokens, ", T, " more exceed max_len ", cache->max_len());
    for (int64_t c = 0; c < b; ++c)
      R1_CHECK(ctx.rows[c] != ctx.rows[b], "Transformer::forward: cache row ", ctx.rows[b], " used twice in one batch");
    if (ctx.rows[b] != ctx.rows[0] + b) contiguous = false;
    max_end = std::max(max_end, ctx.past[b] + T);
  }
  const torch::Tensor& w = embed_tokens->weight;
  if (native_applies({&x, &w}) && cache->dtype() == torch::kFloat32 && cache->device().is_cpu()) {
    ctx.kernels = Kernels::kNative;  // reads rows / past directly: no index tensors or masks
    return ctx;
  }
  const auto dev = x.device();
  const int64_t R = cfg_.n_rep();
  std::vector<int64_t> slots(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) slots[b * T + t] = ctx.past[b] + t;
  auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  ctx.row_index = torch::tensor(ctx.rows, long_opts).to(dev);
  ctx.slot_index = torch::tensor(slots, long_opts).view({B, T}).to(dev);
  ctx.first_row = contiguous ? ctx.rows[0] : -1;
  ctx.attend_len = max_end;
  // Query t of row b may attend slots s <= slot_index[b,t]; repeated for the R grouped heads.
  auto allowed = torch::arange(max_end, long_opts.device(dev)).view({1, 1, max_end}) <= ctx.slot_index.unsqueeze(-1);
  ctx.mask = allowed.unsqueeze(1).unsqueeze(1).expand({B, 1, R, T, max_end}).reshape({B, 1, R * T, max_end});
  return ctx;
}

torch::Tensor TransformerImpl::forward_hidden(const torch::Tensor& ids, const torch::Tensor& positions,
                                              KvCache* cache, const std::vector<int64_t>* rows) {
  return hidden_states(ids, positions, cache, rows, torch::Tensor());
}

torch::Tensor TransformerImpl::forward_hidden_packed(const torch::Tensor& ids, const torch::Tensor& positions,
                                                     const torch::Tensor& segments) {
  R1_CHECK(segments.defined(), "Transformer::forward_hidden_packed: no segments given");
  return hidden_states(ids, positions, nullptr, nullptr, segments);
}

torch::Tensor TransformerImpl::forward_hidden_rows(const torch::Tensor& ids, const torch::Tensor& positions,
                                                   const torch::Tensor& segments, const torch::Tensor& keep) {
  R1_CHECK(keep.defined() && keep.dim() == 1 && keep.scalar_type() == torch::kLong,
           "Transformer::forward_hidden_rows: keep must be [N] int64 row indices");
  return hidden_states(ids, positions, nullptr, nullptr, segments, keep.to(device()));
}

namespace {
// The last layer's context for a loss over `keep` ([N] indices into B x T rows; undefined: all):
// o_proj, the MLP and the final norm on those rows only, and with the fused training ops (no
// per-query key ranges) queries only from the first kept position on: before it, keys only.
ForwardContext last_layer_context(const ForwardContext& ctx, const torch::Tensor& keep, int64_t B, int64_t T) {
  ForwardContext last = ctx;
  last.keep_rows = keep;
  if (!keep.defined() || keep.numel() == 0 || !ctx.train_ops || ctx.cache != nullptr || ctx.first_key.defined())
    return last;
  const torch::Tensor t = keep.remainder(T);
  const int64_t q0 = t.min().item<int64_t>(), Tq = T - q0;
  if (q0 == 0) return last;
  last.first_query = q0;
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(keep.device());
  const torch::Tensor all = (torch::arange(B, long_opts) * T).unsqueeze(1) + torch::arange(q0, T, long_opts);
  if (keep.numel() != B * Tq || !torch::equal(keep, all.reshape({-1})))
    last.query_rows = keep.div(T, "floor") * Tq + (t - q0);
  return last;
}
}  // namespace

torch::Tensor TransformerImpl::hidden_states(const torch::Tensor& ids, const torch::Tensor& positions, KvCache* cache,
                                             const std::vector<int64_t>* rows, const torch::Tensor& segments,
                                             const torch::Tensor& keep) {
  R1_CHECK(ids.dim() == 2 && positions.sizes() == ids.sizes(), "Transformer::forward: ids and positions must both be "
           "[B,T], got ", ids.sizes(), " and ", positions.sizes());
  R1_CHECK(!segments.defined() || segments.sizes() == ids.sizes(), "Transformer::forward: segments must be [B,T] like ids ",
           ids.sizes(), ", got ", segments.sizes());
  const int64_t B = ids.size(0), T = ids.size(1);
  const auto dev = device();
  AutocastScope autocast(compute_.autocast, dev, compute_.autocast_dtype);
  auto x = embed_tokens(ids.to(dev, torch::kLong));  // [B,T,C]
  ForwardContext ctx;
  if (cache != nullptr) {
    ctx = cache_context(B, T, cache, rows, x);
  } else {
    ctx.kernels = kernels_;
  }
  if (cache == nullptr && use_train_ops(x)) {
    ctx.train_ops = true;
    if (segments.defined()) {
      ctx.first_key = first_keys_from_segments(segments);
      ctx.train_ops = ctx.first_key.defined();  // else a segment id in two runs: the masked path
    }
  }
  if (segments.defined() && !ctx.train_ops) {
    // Key s is visible to query t when both lie in one document and s <= t (block-diagonal causal).
    const torch::Tensor seg = segments.to(dev, torch::kLong);
    const torch::Tensor causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(dev)).tril();
    ctx.packed_mask = (seg.unsqueeze(2) == seg.unsqueeze(1)).logical_and(causal).unsqueeze(1);  // [B,1,T,T]
  }
  auto [cos, sin] = rope_.cos_sin(positions.to(dev, torch::kLong));  // [B,T,D] f32
  if (ctx.kernels == Kernels::kNative || ctx.train_ops) {
    ctx.cos = cos.reshape({B * T, cos.size(2)}).contiguous();  // [B*T,D]
    ctx.sin = sin.reshape({B * T, sin.size(2)}).contiguous();
  } else {
    ctx.cos = cos.unsqueeze(2).to(x.scalar_type());  // [B,T,1,D]
    ctx.sin = sin.unsqueeze(2).to(x.scalar_type());
  }
  const bool recompute = checkpointing() && cache == nullptr;
  const ForwardContext last_ctx = last_layer_context(ctx, keep, B, T);
  if (ctx.train_ops && !recompute && cache == nullptr) {  // each residual add inside the norm after it
    torch::Tensor pending;
    for (size_t l = 0; l < layers->size(); ++l)
      std::tie(x, pending) =
          (*layers)[l]->as<DecoderLayer>()->forward_pending(x, pending, l + 1 == layers->size() ? last_ctx : ctx);
    return norm->forward_add(x, pending).second;  // [B,T,C] ([N,C] with keep)
  }
  for (size_t l = 0; l < layers->size(); ++l) {
    const auto& layer = (*layers)[l];
    const ForwardContext& lctx = l + 1 == layers->size() ? last_ctx : ctx;
    if (recompute) {  // keep only the layer's input; backward runs the layer again
      x = checkpoint_activations([layer, lctx](const torch::Tensor& in) {
        return layer->as<DecoderLayer>()->forward(in, lctx);
      }, x, layer->parameters());
    } else {
      x = layer->as<DecoderLayer>()->forward(x, lctx);  // [B,T,C]; the last one [N,C] with keep
    }
  }
  if (cache != nullptr)
    for (int64_t b = 0; b < B; ++b) cache->set_length(ctx.rows[b], ctx.past[b] + T);
  return norm(x, ctx.kernels, ctx.train_ops);  // [B,T,C] ([N,C] with keep)
}

SharedPrefixHidden TransformerImpl::forward_shared_prefix(const torch::Tensor& prompt_ids,
                                                          const std::vector<int64_t>& prompt_lengths,
                                                          const torch::Tensor& completion_ids, int64_t group_size,
                                                          const torch::Tensor& keep) {
  const int64_t P = prompt_ids.size(0), Tp = prompt_ids.size(1), G = group_size;
  R1_CHECK(prompt_ids.dim() == 2 && completion_ids.dim() == 2 && G >= 1 && completion_ids.size(0) == P * G &&
               int64_t(prompt_lengths.size()) == P,
           "Transformer::forward_shared_prefix: prompts ", prompt_ids.sizes(), ", ", prompt_lengths.size(),
           " lengths, completions ", completion_ids.sizes(), ", group size ", G);
  const int64_t Tc = completion_ids.size(1), R = cfg_.n_rep();
  R1_CHECK(!keep.defined() || (keep.dim() == 1 && keep.scalar_type() == torch::kLong),
           "Transformer::forward_shared_prefix: keep must be [N] int64 completion row indices");
  const auto dev = device();
  AutocastScope autocast(compute_.autocast, dev, compute_.autocast_dtype);
  auto long_opts = torch::TensorOptions().dtype(torch::kLong);
  for (int64_t len : prompt_lengths)
    R1_CHECK(len >= 1 && len <= Tp, "Transformer::forward_shared_prefix: prompt length ", len, " not in [1, ", Tp, "]");
  auto lens = torch::tensor(prompt_lengths, long_opts).to(dev);                     // [P]
  auto row_lens = lens.repeat_interleave(G);                                        // [P*G]
  auto prompt_pos = torch::arange(Tp, long_opts.device(dev)).unsqueeze(0).expand({P, Tp});
  auto completion_pos = row_lens.unsqueeze(1) + torch::arange(Tc, long_opts.device(dev)).unsqueeze(0);  // [P*G,Tc]

  auto xp = embed_tokens(prompt_ids.to(dev, torch::kLong));      // [P,Tp,C]
  auto xc = embed_tokens(completion_ids.to(dev, torch::kLong));  // [P*G,Tc,C]
  PrefixKv kv;
  kv.k.resize(cfg_.num_hidden_layers);
  kv.v.resize(cfg_.num_hidden_layers);
  ForwardContext pctx, cctx;
  pctx.kernels = cctx.kernels = kernels_;
  pctx.record = &kv;
  cctx.prefix = &kv;
  cctx.rows_per_prefix = G;
  const bool fused = use_train_ops(xp);
  if (fused) {
    pctx.train_ops = cctx.train_ops = true;
    cctx.prefix_length = row_lens.to(torch::kCPU);
  }
  for (auto [ctx, pos] : {std::pair<ForwardContext*, torch::Tensor>{&pctx, prompt_pos}, {&cctx, completion_pos}}) {
    auto [cos, sin] = rope_.cos_sin(pos);
    if (fused) {
      ctx->cos = cos.reshape({-1, cos.size(2)}).contiguous();  // [B*T,D] f32
      ctx->sin = sin.reshape({-1, sin.size(2)}).contiguous();
    } else {
      ctx->cos = cos.unsqueeze(2).to(xp.scalar_type());  // [B,T,1,D]
      ctx->sin = sin.unsqueeze(2).to(xp.scalar_type());
    }
  }
  // Completion query t of prompt p's rows sees prompt slots j < length and its own tokens s <= t
  // (the fused attention takes the lengths instead of a mask).
  if (!fused) {
    auto prompt_part = (torch::arange(Tp, long_opts.device(dev)).unsqueeze(0) < lens.unsqueeze(1))
                           .unsqueeze(1).expand({P, Tc, Tp});                                           // [P,Tc,Tp]
    auto own_part = torch::ones({Tc, Tc}, torch::TensorOptions().dtype(torch::kBool).device(dev)).tril()
                        .unsqueeze(0).expand({P, Tc, Tc});                                              // [P,Tc,Tc]
    auto allowed = torch::cat({prompt_part, own_part}, 2);                                              // [P,Tc,L]
    cctx.prefix_mask = std::make_shared<const PrefixMask>(
        allowed.unsqueeze(1).expand({P, R, Tc, Tp + Tc}).reshape({P, 1, R * Tc, Tp + Tc}));
  }

  if (checkpointing()) {
    // One recomputed block per layer over both parts (flattened into one tensor, as the
    // checkpoint takes one input); the prompt K/V are recorded again inside each recompute.
    const int64_t C = xp.size(2), np = P * Tp, L = cfg_.num_hidden_layers;
    auto x = torch::cat({xp.reshape({np, C}), xc.reshape({P * G * Tc, C})}, 0);
    for (const auto& layer : *layers) {
      x = checkpoint_activations([layer, pctx, cctx, P, Tp, G, Tc, C, np, L](const torch::Tensor& in) {
        PrefixKv local;  // pctx.record points into this call's frame, gone by backward
        local.k.resize(L);
        local.v.resize(L);
        ForwardContext p = pctx, c = cctx;
        p.record = &local;
        c.prefix = &local;
        auto& l = *layer->as<DecoderLayer>();
        auto yp = l.forward(in.narrow(0, 0, np).view({P, Tp, C}), p);
        auto yc = l.forward(in.narrow(0, np, in.size(0) - np).view({P * G, Tc, C}), c);
        return torch::cat({yp.reshape({np, C}), yc.reshape({P * G * Tc, C})}, 0);
      }, x, layer->parameters());
    }
    xp = x.narrow(0, 0, np).view({P, Tp, C});
    xc = x.narrow(0, np, x.size(0) - np).view({P * G, Tc, C});
    if (keep.defined()) xc = xc.reshape({-1, C}).index_select(0, keep.to(dev));
    return {norm(xp, kernels_, fused), norm(xc, kernels_, fused)};
  }
  const size_t L = layers->size();
  const ForwardContext last = last_layer_context(cctx, keep.defined() ? keep.to(dev) : keep, P * G, Tc);
  if (fused) {  // each residual add inside the norm after it, as in hidden_states
    torch::Tensor pending_p, pending_c;
    for (size_t l = 0; l < L; ++l) {
      auto& layer = *(*layers)[l]->as<DecoderLayer>();
      std::tie(xp, pending_p) = layer.forward_pending(xp, pending_p, pctx);  // records this layer's prompt K/V
      std::tie(xc, pending_c) = layer.forward_pending(xc, pending_c, l + 1 == L ? last : cctx);  // attends to them
    }
    return {norm->forward_add(xp, pending_p).second, norm->forward_add(xc, pending_c).second};
  }
  for (size_t l = 0; l < L; ++l) {
    auto& layer = *(*layers)[l]->as<DecoderLayer>();
    xp = layer.forward(xp, pctx);
    xc = layer.forward(xc, l + 1 == L ? last : cctx);
  }
  return {norm(xp, kernels_, fused), norm(xc, kernels_, fused)};
}

torch::Tensor TransformerImpl::logits_from_hidden(const torch::Tensor& hidden) {
  AutocastScope autocast(compute_.autocast, hidden.device(), compute_.autocast_dtype);
  return torch::nn::functional::linear(hidden, lm_head_weight()).to(torch::kFloat32);  // [...,V] f32
}

torch::Tensor TransformerImpl::decode_logits(const torch::Tensor& hidden, torch::Tensor* reuse) {
  const torch::Tensor w = lm_head_weight();
  if (native_applies({&hidden, &w})) return linear(hidden, w, {}, Kernels::kNative, reuse, &lm_head_copy_);  // [...,V] f32
  return logits_from_hidden(hidden);
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& ids, const torch::Tensor& positions, KvCache* cache,
                                       const std::vector<int64_t>* rows) {
  return logits_from_hidden(forward_hidden(ids, positions, cache, rows));  // [B,T,V] f32
}

}  // namespace r1kit
