#include "model/decoder_layer.h"

#include <torch/version.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <utility>
#include <vector>

#include "core/check.h"

namespace r1kit {

using torch::indexing::Slice;

torch::Tensor PrefixMask::bias(torch::ScalarType dtype) const {
  if (!bias_.defined() || bias_.scalar_type() != dtype) {
    // Rows of keys padded to a multiple of 16: CUDA's memory-efficient attention wants aligned rows
    // and would otherwise pad a copy of the mask on every call.
    const int64_t P = allowed_.size(0), T = allowed_.size(1), L = allowed_.size(2), padded = (L + 15) / 16 * 16;
    auto full = torch::full({P, 1, n_rep_ * T, padded}, -std::numeric_limits<float>::infinity(),
                            torch::TensorOptions().dtype(dtype).device(allowed_.device()));
    bias_ = full.narrow(-1, 0, L);
    bias_.view({P, n_rep_, T, L}).masked_fill_(allowed_.unsqueeze(1), 0.0);  // each query head r alike
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
  auto scores = torch::matmul(qg, keys.transpose(-1, -2)).mul_(scale).to(torch::kFloat32);  // [B,KV,R*T,L]
  const float masked = -std::numeric_limits<float>::infinity();
  if (ctx.prefix != nullptr)  // the prompt's [P,T,L] mask over its rows' heads and their R query heads
    scores.view({att_rows, -1, R, T, L})
        .masked_fill_(ctx.prefix_mask->allowed().unsqueeze(1).unsqueeze(1).logical_not(), masked);
  else
    scores.masked_fill_(mask.logical_not(), masked);
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

}  // namespace r1kit
