#include "model/transformer.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "core/check.h"
#include "model/activation_checkpoint.h"

namespace r1kit {

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
    cctx.prefix_mask = std::make_shared<const PrefixMask>(torch::cat({prompt_part, own_part}, 2), R);  // [P,Tc,L]
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
