#include "model/transformer.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "model/activation_checkpoint.h"

namespace r1kit {

using torch::indexing::Slice;

// ---------------------------------------------------------------------------------------------
// RMSNorm: normalise in float32, cast back, then scale (HF LlamaRMSNorm / Qwen2RMSNorm order).

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto xf = x.to(torch::kFloat32);                                  // [..., C] f32
  auto rms = torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);  // [..., 1]
  return weight * (xf * rms).to(x.scalar_type());
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

// x [B,T,heads,D] -> x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x[D/2:], x[:D/2]).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

}  // namespace

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

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const CacheStep& step) {
  const int64_t B = x.size(0), T = x.size(1), H = n_heads_, KV = n_kv_, D = head_dim_, R = H / KV;
  auto q = apply_rope(q_proj(x).view({B, T, H, D}), cos, sin);   // [B,T,H,D]
  auto k = apply_rope(k_proj(x).view({B, T, KV, D}), cos, sin);  // [B,T,KV,D]
  auto v = v_proj(x).view({B, T, KV, D});                        // [B,T,KV,D]
  const double scale = 1.0 / std::sqrt(double(D));

  torch::Tensor keys, values, mask;  // keys/values [B,KV,L,D]; mask [B,1,R*T,L] bool or undefined
  if (step.cache == nullptr) {
    keys = k.transpose(1, 2);    // [B,KV,T,D]
    values = v.transpose(1, 2);  // [B,KV,T,D]
#if TORCH_VERSION_MAJOR >= 2
    // Causal fused attention (flash / memory-efficient on CUDA): repeat K/V per query head.
    if (R > 1) {
      keys = keys.repeat_interleave(R, 1);
      values = values.repeat_interleave(R, 1);
    }
    auto y = at::scaled_dot_product_attention(q.transpose(1, 2), keys, values, {}, 0.0, /*is_causal=*/true);  // [B,H,T,D]
    return o_proj(y.transpose(1, 2).reshape({B, T, H * D}));
#else
    auto causal = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).tril();
    mask = causal.unsqueeze(0).expand({R, T, T}).reshape({1, 1, R * T, T});  // [1,1,R*T,T]
#endif
  } else {
    // Write the T new K/V of batch row b to slots slot_index[b] of cache row row_index[b].
    torch::Tensor& ck = step.cache->k(layer_);  // [N,KV,max_len,D]
    torch::Tensor& cv = step.cache->v(layer_);
    auto row_idx = step.row_index.unsqueeze(1);  // [B,1]
    ck.index_put_({row_idx, Slice(), step.slot_index}, k.to(ck.scalar_type()));  // value [B,T,KV,D]
    cv.index_put_({row_idx, Slice(), step.slot_index}, v.to(cv.scalar_type()));
    if (step.first_row >= 0) {
      keys = ck.narrow(0, step.first_row, B).narrow(2, 0, step.attend_len);  // [B,KV,L,D] view
      values = cv.narrow(0, step.first_row, B).narrow(2, 0, step.attend_len);
    } else {
      keys = ck.narrow(2, 0, step.attend_len).index_select(0, step.row_index);  // [B,KV,L,D] gathered
      values = cv.narrow(2, 0, step.attend_len).index_select(0, step.row_index);
    }
    if (keys.scalar_type() != x.scalar_type()) {
      keys = keys.to(x.scalar_type());
      values = values.to(x.scalar_type());
    }
    mask = step.mask;
  }

  // Grouped attention: [B,T,H,D] -> [B,H,T,D] -> [B,KV,R*T,D] (heads h = kv*R + r).
  auto qg = q.transpose(1, 2).reshape({B, KV, R * T, D});
#if TORCH_VERSION_MAJOR >= 2
  auto y = at::scaled_dot_product_attention(qg, keys, values, mask, 0.0, false);  // [B,KV,R*T,D]
#else
  auto scores = torch::matmul(qg, keys.transpose(-1, -2)).mul_(scale);  // [B,KV,R*T,L]
  scores = scores.to(torch::kFloat32).masked_fill_(mask.logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1).to(x.scalar_type());  // [B,KV,R*T,L]
  auto y = torch::matmul(probs, values);                        // [B,KV,R*T,D]
#endif
  (void)scale;
  // [B,KV,R*T,D] -> [B,H,T,D] -> [B,T,H*D]
  return o_proj(y.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D}));
}

// ---------------------------------------------------------------------------------------------

MLPImpl::MLPImpl(const ModelConfig& cfg) {
  const int64_t C = cfg.hidden_size, I = cfg.intermediate_size;
  gate_proj = register_module("gate_proj", Linear(torch::nn::LinearOptions(C, I).bias(false)));
  up_proj = register_module("up_proj", Linear(torch::nn::LinearOptions(C, I).bias(false)));
  down_proj = register_module("down_proj", Linear(torch::nn::LinearOptions(I, C).bias(false)));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));  // [B,T,I] -> [B,T,C]
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_index) {
  self_attn = register_module("self_attn", Attention(cfg, layer_index));
  mlp = register_module("mlp", MLP(cfg));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const CacheStep& step) {
  auto h = x + self_attn(input_layernorm(x), cos, sin, step);  // [B,T,C]
  return h + mlp(post_attention_layernorm(h));                 // [B,T,C]
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

torch::Tensor TransformerImpl::forward_hidden(const torch::Tensor& ids, const torch::Tensor& positions,
                                              KvCache* cache, const std::vector<int64_t>* rows) {
  R1_CHECK(ids.dim() == 2 && positions.sizes() == ids.sizes(), "Transformer::forward: ids and positions must both be "
           "[B,T], got ", ids.sizes(), " and ", positions.sizes());
  const int64_t B = ids.size(0), T = ids.size(1), R = cfg_.n_rep();
  const auto dev = device();
  AutocastScope autocast(compute_.autocast, dev, compute_.autocast_dtype);
  auto tok = ids.to(dev, torch::kLong);
  auto pos = positions.to(dev, torch::kLong);

  CacheStep step;
  if (cache != nullptr) {
    R1_CHECK(cache->n_layers() == cfg_.num_hidden_layers, "Transformer::forward: cache has ", cache->n_layers(),
             " layers, model has ", cfg_.num_hidden_layers);
    R1_CHECK(!rows || int64_t(rows->size()) == B, "Transformer::forward: ", rows->size(), " cache rows for batch ", B);
    std::vector<int64_t> row_ids(B);
    for (int64_t b = 0; b < B; ++b) row_ids[b] = rows ? (*rows)[b] : b;
    std::vector<int64_t> slots(B * T), limits(B * T);
    int64_t max_end = 0;
    bool contiguous = true;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = cache->length(row_ids[b]);  // checks the range
      R1_CHECK(len + T <= cache->max_len(), "Transformer::forward: cache row ", row_ids[b], " holds ", len,
               " tokens, ", T, " more exceed max_len ", cache->max_len());
      for (int64_t c = 0; c < b; ++c)
        R1_CHECK(row_ids[c] != row_ids[b], "Transformer::forward: cache row ", row_ids[b], " used twice in one batch");
      if (row_ids[b] != row_ids[0] + b) contiguous = false;
      for (int64_t t = 0; t < T; ++t) slots[b * T + t] = len + t;
      max_end = std::max(max_end, len + T);
    }
    auto long_opts = torch::TensorOptions().dtype(torch::kLong);
    step.cache = cache;
    step.row_index = torch::tensor(row_ids, long_opts).to(dev);
    step.slot_index = torch::tensor(slots, long_opts).view({B, T}).to(dev);
    step.first_row = contiguous ? row_ids[0] : -1;
    step.attend_len = max_end;
    // Query t of row b may attend slots s <= slot_index[b,t]; repeated for the R grouped heads.
    auto allowed = torch::arange(max_end, long_opts.device(dev)).view({1, 1, max_end}) <= step.slot_index.unsqueeze(-1);
    step.mask = allowed.unsqueeze(1).unsqueeze(1).expand({B, 1, R, T, max_end}).reshape({B, 1, R * T, max_end});
  }

  auto x = embed_tokens(tok);  // [B,T,C]
  auto [cos, sin] = rope_.cos_sin(pos);                              // [B,T,D] f32
  cos = cos.unsqueeze(2).to(x.scalar_type());                        // [B,T,1,D]
  sin = sin.unsqueeze(2).to(x.scalar_type());
  const bool recompute = compute_.activation_checkpointing && is_training() && cache == nullptr &&
                         torch::GradMode::is_enabled();
  for (const auto& layer : *layers) {
    if (recompute) {  // keep only the layer's input; backward runs the layer again
      x = checkpoint_activations([layer, cos, sin, step](const torch::Tensor& in) {
        return layer->as<DecoderLayer>()->forward(in, cos, sin, step);
      }, x, layer->parameters());
    } else {
      x = layer->as<DecoderLayer>()->forward(x, cos, sin, step);  // [B,T,C]
    }
  }
  if (cache != nullptr)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t r = rows ? (*rows)[b] : b;
      cache->set_length(r, cache->length(r) + T);
    }
  return norm(x);  // [B,T,C]
}

torch::Tensor TransformerImpl::logits_from_hidden(const torch::Tensor& hidden) {
  AutocastScope autocast(compute_.autocast, hidden.device(), compute_.autocast_dtype);
  return torch::nn::functional::linear(hidden, lm_head_weight()).to(torch::kFloat32);  // [...,V] f32
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& ids, const torch::Tensor& positions, KvCache* cache,
                                       const std::vector<int64_t>* rows) {
  return logits_from_hidden(forward_hidden(ids, positions, cache, rows));  // [B,T,V] f32
}

}  // namespace r1kit
