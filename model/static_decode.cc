#include "model/static_decode.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

#include <ATen/autocast_mode.h>

#include "core/check.h"
#include "model/autocast.h"

#ifdef R1_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace r1kit {

using torch::indexing::Slice;

// Device tensors the step reads (fixed addresses, so a captured graph reads what step() wrote),
// and the host tensors staged into them.
struct StaticDecoder::Buffers {
  const void* cache_ptr = nullptr;  // the cache these were built for
  int64_t rows = 0, max_len = 0;
  torch::Tensor ids, slot, active, row_index;  // [N] on the model's device
  torch::Tensor ids_host, slot_host, active_host;
  torch::Tensor cos, sin;  // [max_len, D] float32 rope tables
};

#ifdef R1_TORCH_CUDA
struct StaticDecoder::Graph {
  at::cuda::CUDAGraph graph;
  torch::Tensor logits;             // output of the captured step
  std::vector<const void*> params;  // parameter addresses the graph reads
  const void* cache_ptr = nullptr;
};
#else
struct StaticDecoder::Graph {};
#endif

namespace {

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

#ifdef R1_TORCH_CUDA
// The captured graph holds raw parameter addresses: a reload that moves them needs a new capture.
std::vector<const void*> param_ptrs(Transformer& model) {
  std::vector<const void*> out;
  for (const auto& p : model->parameters()) out.push_back(p.data_ptr());
  return out;
}
#endif

}  // namespace

StaticDecoder::StaticDecoder(Transformer model, bool cuda_graph) : model_(std::move(model)), cuda_graph_(cuda_graph) {}
StaticDecoder::~StaticDecoder() = default;

bool StaticDecoder::uses_cuda_graph() const {
#ifdef R1_TORCH_CUDA
  return cuda_graph_ && model_->device().is_cuda();
#else
  return false;
#endif
}

void StaticDecoder::prepare(KvCache& cache) {
  const void* ptr = cache.k(0).data_ptr();
  if (buf_ && buf_->cache_ptr == ptr && buf_->rows == cache.n_rows() && buf_->max_len == cache.max_len()) return;
  const ModelConfig& cfg = model_->config();
  R1_CHECK(cache.n_layers() == cfg.num_hidden_layers, "static decode: cache has ", cache.n_layers(), " layers, model ",
           cfg.num_hidden_layers);
  R1_CHECK(cache.device() == model_->device(), "static decode: cache on ", cache.device(), ", model on ",
           model_->device());
  auto b = std::make_unique<Buffers>();
  b->cache_ptr = ptr;
  b->rows = cache.n_rows();
  b->max_len = cache.max_len();
  const auto dev = model_->device();
  auto on_dev = torch::TensorOptions().device(dev);
  b->ids = torch::zeros({b->rows}, on_dev.dtype(torch::kLong));
  b->slot = torch::zeros({b->rows}, on_dev.dtype(torch::kLong));
  b->active = torch::zeros({b->rows}, on_dev.dtype(torch::kBool));
  b->row_index = torch::arange(b->rows, on_dev.dtype(torch::kLong));
  const bool pin = dev.is_cuda();
  auto host = [&](torch::Dtype t) { return torch::zeros({b->rows}, torch::TensorOptions().dtype(t).pinned_memory(pin)); };
  b->ids_host = host(torch::kLong);
  b->slot_host = host(torch::kLong);
  b->active_host = host(torch::kBool);
  // RoPE for every slot, computed once (the step only gathers rows: no host data inside a graph).
  auto [cos, sin] = RotaryEmbedding(cfg).cos_sin(torch::arange(b->max_len, torch::kLong).unsqueeze(0));
  b->cos = cos.squeeze(0).to(dev);  // [L, D] f32
  b->sin = sin.squeeze(0).to(dev);
  buf_ = std::move(b);
  graph_.reset();
}

torch::Tensor StaticDecoder::forward(KvCache& cache) {
  const ModelConfig& cfg = model_->config();
  const int64_t N = buf_->rows, L = buf_->max_len, H = cfg.num_attention_heads, KV = cfg.num_key_value_heads;
  const int64_t D = cfg.head_dim, R = H / KV;
  const ComputeOptions& co = model_->compute_options();
  AutocastScope autocast(co.autocast, model_->device(), co.autocast_dtype);
  // Autocast's cache of cast weights must stay off while a graph is captured (its entries are freed when
  // the outermost autocast scope closes); the weights are read in place on every replay anyway.
  const bool cache_was = at::autocast::is_autocast_cache_enabled();
  if (co.autocast) at::autocast::set_autocast_cache_enabled(false);
  struct RestoreCache {
    bool on;
    ~RestoreCache() { at::autocast::set_autocast_cache_enabled(on); }
  } restore{cache_was};

  auto x = model_->embed_tokens(buf_->ids.view({N, 1}));  // [N,1,C]
  auto cos = buf_->cos.index_select(0, buf_->slot).view({N, 1, 1, D}).to(x.scalar_type());
  auto sin = buf_->sin.index_select(0, buf_->slot).view({N, 1, 1, D}).to(x.scalar_type());
  // Query of row n attends slots s <= slot[n] (its past and the token written now).
  auto allowed = torch::arange(L, buf_->slot.options()).view({1, L}) <= buf_->slot.view({N, 1});  // [N,L]
  auto mask = allowed.view({N, 1, 1, L}).expand({N, 1, R, L});
  auto keep = buf_->active.view({N, 1, 1});
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    auto* layer = model_->layers[l]->as<DecoderLayer>();
    auto* attn = layer->self_attn.get();
    auto h = layer->input_layernorm(x);
    auto q = apply_rope(attn->q_proj(h).view({N, 1, H, D}), cos, sin);
    auto k = apply_rope(attn->k_proj(h).view({N, 1, KV, D}), cos, sin);
    auto v = attn->v_proj(h).view({N, 1, KV, D});
    torch::Tensor& ck = cache.k(l);  // [N,KV,L,D]
    torch::Tensor& cv = cache.v(l);
    // Active rows write their new K/V at slot; idle rows write back what the slot already holds.
    auto k_old = ck.index({buf_->row_index, Slice(), buf_->slot});  // [N,KV,D]
    auto v_old = cv.index({buf_->row_index, Slice(), buf_->slot});
    ck.index_put_({buf_->row_index, Slice(), buf_->slot}, torch::where(keep, k.view({N, KV, D}).to(ck.scalar_type()), k_old));
    cv.index_put_({buf_->row_index, Slice(), buf_->slot}, torch::where(keep, v.view({N, KV, D}).to(cv.scalar_type()), v_old));
    auto keys = ck, values = cv;
    auto qg = q.view({N, KV, R, D});  // heads h = kv*R + r, one query position
    if (keys.scalar_type() != qg.scalar_type() && !co.autocast) {
      keys = keys.to(qg.scalar_type());
      values = values.to(qg.scalar_type());
    }
#if TORCH_VERSION_MAJOR >= 2
    auto y = at::scaled_dot_product_attention(qg, keys, values, mask, 0.0, false);  // [N,KV,R,D]
#else
    auto scores = torch::matmul(qg, keys.transpose(-1, -2).to(qg.scalar_type())).mul_(1.0 / std::sqrt(double(D)));
    scores = scores.to(torch::kFloat32).masked_fill_(mask.logical_not(), -std::numeric_limits<float>::infinity());
    auto y = torch::matmul(torch::softmax(scores, -1).to(qg.scalar_type()), values.to(qg.scalar_type()));
#endif
    x = x + attn->o_proj(y.reshape({N, 1, H * D}));
    x = x + layer->mlp(layer->post_attention_layernorm(x));
  }
  return model_->logits_from_hidden(model_->norm(x).select(1, 0));  // [N,V] f32
}

torch::Tensor StaticDecoder::step(KvCache& cache, const std::vector<int64_t>& rows, const std::vector<int64_t>& ids) {
  R1_CHECK(rows.size() == ids.size() && !rows.empty(), "static decode: ", rows.size(), " rows for ", ids.size(), " ids");
  torch::NoGradGuard no_grad;
  prepare(cache);
  const int64_t N = buf_->rows, L = buf_->max_len;
  // 1. Stage the inputs of every cache row: idle rows keep their state (slot clamped to the row).
  auto ids_h = buf_->ids_host.accessor<int64_t, 1>();
  auto slot_h = buf_->slot_host.accessor<int64_t, 1>();
  auto active_h = buf_->active_host.accessor<bool, 1>();
  for (int64_t r = 0; r < N; ++r) {
    ids_h[r] = 0;
    slot_h[r] = std::min(cache.length(r), L - 1);
    active_h[r] = false;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    R1_CHECK(r >= 0 && r < N, "static decode: row ", r, " outside the cache's ", N, " rows");
    R1_CHECK(!active_h[r], "static decode: row ", r, " given twice");
    R1_CHECK(cache.length(r) < L, "static decode: cache row ", r, " is full (", L, " tokens)");
    R1_CHECK(ids[i] >= 0 && ids[i] < model_->config().vocab_size, "static decode: token id ", ids[i], " out of range");
    ids_h[r] = ids[i];
    active_h[r] = true;
  }
  const bool async = model_->device().is_cuda();
  buf_->ids.copy_(buf_->ids_host, async);
  buf_->slot.copy_(buf_->slot_host, async);
  buf_->active.copy_(buf_->active_host, async);

  // 2. Run the step: replay the captured graph (capturing it first when needed), or eagerly.
  torch::Tensor logits;
#ifdef R1_TORCH_CUDA
  if (uses_cuda_graph()) {
    const std::vector<const void*> ptrs = param_ptrs(model_);
    if (!graph_ || graph_->params != ptrs || graph_->cache_ptr != buf_->cache_ptr) {
      graph_.reset();
      auto g = std::make_unique<Graph>();
      g->params = ptrs;
      g->cache_ptr = buf_->cache_ptr;
      c10::cuda::CUDAGuard device_guard(model_->device());
      auto current = c10::cuda::getCurrentCUDAStream();
      auto side = c10::cuda::getStreamFromPool();  // capture needs a stream other than the default one
      at::cuda::CUDAEvent staged;
      staged.record(current);  // the inputs were copied on the current stream
      staged.block(side);
      {
        c10::cuda::CUDAStreamGuard stream_guard(side);
        // Warm-up runs (cuBLAS handles, allocator) write the same K/V the step writes: idempotent.
        for (int i = 0; i < 2; ++i) forward(cache);
        g->graph.capture_begin();
        g->logits = forward(cache);
        g->graph.capture_end();
      }
      at::cuda::CUDAEvent captured;
      captured.record(side);
      captured.block(current);
      graph_ = std::move(g);
      ++captures_;
    }
    graph_->graph.replay();
    logits = graph_->logits;
  }
#endif
  if (!logits.defined()) logits = forward(cache);

  // 3. Advance the decoded rows and return their logits.
  for (int64_t r : rows) cache.set_length(r, cache.length(r) + 1);
  auto index = torch::tensor(rows, torch::kLong).to(logits.device());
  return logits.index_select(0, index);  // a copy: the graph's output buffer is reused
}

}  // namespace r1kit
