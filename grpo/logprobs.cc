#include "grpo/logprobs.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/check.h"

namespace r1kit::grpo {

CompletionBatch make_completion_batch(const std::vector<std::vector<int64_t>>& prompts,
                                      const std::vector<std::vector<int64_t>>& completions, torch::Device device) {
  R1_CHECK(prompts.size() == completions.size(), "completion batch: ", prompts.size(), " prompts but ",
           completions.size(), " completions");
  R1_CHECK(!prompts.empty(), "completion batch: no rows");
  const int64_t B = static_cast<int64_t>(prompts.size());
  CompletionBatch batch;
  int64_t T = 1, C = 1;
  for (int64_t i = 0; i < B; ++i) {
    R1_CHECK(!prompts[i].empty(), "completion batch: row ", i, " has an empty prompt");
    batch.prompt_lengths.push_back(static_cast<int64_t>(prompts[i].size()));
    batch.completion_lengths.push_back(static_cast<int64_t>(completions[i].size()));
    T = std::max<int64_t>(T, prompts[i].size() + completions[i].size());
    C = std::max<int64_t>(C, completions[i].size());
  }
  torch::Tensor ids = torch::zeros({B, T}, torch::kInt64);
  torch::Tensor comp = torch::zeros({B, C}, torch::kInt64);
  torch::Tensor mask = torch::zeros({B, C}, torch::kBool);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto comp_a = comp.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<bool, 2>();
  for (int64_t i = 0; i < B; ++i) {
    int64_t t = 0;
    for (int64_t id : prompts[i]) ids_a[i][t++] = id;
    for (size_t j = 0; j < completions[i].size(); ++j) {
      ids_a[i][t++] = completions[i][j];
      comp_a[i][j] = completions[i][j];
      mask_a[i][j] = true;
    }
  }
  batch.input_ids = ids.to(device);
  batch.positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T}).contiguous().to(device);
  batch.completion_ids = comp.to(device);
  batch.completion_mask = mask.to(device);
  return batch;
}

torch::Tensor entropy_from_logits(const torch::Tensor& logits) {
  torch::Tensor lse = torch::logsumexp(logits, -1);
  torch::Tensor p = torch::softmax(logits, -1);
  return lse - (p * logits).sum(-1);
}

namespace {

// Log-probs and entropies of `targets` under softmax(hidden @ W^T / temperature), chunked over
// rows: only [chunk, V] logits exist at a time. Under autograd the forward keeps the
// probabilities ([M, V]) for the backward pass when they fit keep_probs_bytes, so the lm_head
// runs once; otherwise backward recomputes each chunk's logits from the saved hidden states and W
// (the fused linear + log-softmax trick) instead of keeping every chunk alive.
class ChunkedTokenLogprob : public torch::autograd::Function<ChunkedTokenLogprob> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, torch::Tensor hidden,
                                                torch::Tensor weight, torch::Tensor targets, double temperature,
                                                int64_t chunk, bool entropy, int64_t keep_probs_bytes, int64_t kernels) {
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["kernels"] = kernels;
    const int64_t M = hidden.size(0), V = weight.size(0);
    const bool keep = M * V * int64_t(sizeof(float)) <= keep_probs_bytes;
    torch::Tensor probs = keep ? torch::empty({M, V}, hidden.options().dtype(torch::kFloat32)) : torch::Tensor();
    std::vector<torch::Tensor> lp, ent;
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t e = std::min(M, s + chunk);
      torch::Tensor logits = linear(hidden.slice(0, s, e), weight, {}, Kernels(kernels)).to(torch::kFloat32);
      if (temperature != 1.0) logits = logits / temperature;
      torch::Tensor logsm = torch::log_softmax(logits, -1);
      lp.push_back(logsm.gather(1, targets.slice(0, s, e).unsqueeze(1)).squeeze(1));
      if (keep || entropy) {
        torch::Tensor p = logsm.exp();
        if (keep) probs.slice(0, s, e).copy_(p);
        if (entropy) ent.push_back(-(p * logsm).sum(-1));
      }
    }
    ctx->saved_data["probs"] = probs;  // undefined: recompute in backward
    torch::Tensor ent_t = entropy ? torch::cat(ent) : torch::zeros({M}, hidden.options().dtype(torch::kFloat32));
    ctx->mark_non_differentiable({ent_t});
    return {torch::cat(lp), ent_t};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& targets = saved[2];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const Kernels kernels = Kernels(ctx->saved_data["kernels"].toInt());
    const torch::Tensor probs = ctx->saved_data["probs"].toTensor();
    torch::Tensor grad = grad_outputs[0];
    const int64_t M = hidden.size(0);
    torch::Tensor grad_hidden = torch::zeros_like(hidden);
    torch::Tensor grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
    auto none = [] { return torch::Tensor(); };
    if (!grad.defined()) return {grad_hidden, grad_weight.to(weight.dtype()), none(), none(), none(), none(), none(), none()};
    for (int64_t s = 0; s < M; s += chunk) {
      const int64_t e = std::min(M, s + chunk);
      torch::Tensor h = hidden.slice(0, s, e);
      torch::Tensor p;
      if (probs.defined()) {
        p = probs.slice(0, s, e).clone();
      } else {
        torch::Tensor logits = linear(h, weight, {}, kernels).to(torch::kFloat32);
        if (temperature != 1.0) logits = logits / temperature;
        p = torch::softmax(logits, -1);
      }
      // d log p[target] / d logits = onehot(target) - softmax(logits); chain rule through / T.
      torch::Tensor g = grad.slice(0, s, e).to(torch::kFloat32).unsqueeze(1);  // [n, 1]
      torch::Tensor grad_logits = p.mul_(-g);
      grad_logits.scatter_add_(1, targets.slice(0, s, e).unsqueeze(1), g);
      if (temperature != 1.0) grad_logits.div_(temperature);
      torch::Tensor gl = grad_logits.to(hidden.dtype());
      grad_hidden.slice(0, s, e).copy_(gl.matmul(weight));
      grad_weight.add_(gl.t().matmul(h).to(torch::kFloat32));
    }
    return {grad_hidden, grad_weight.to(weight.dtype()), none(), none(), none(), none(), none(), none()};
  }
};

// Log-probs (and entropies) of targets [M] from the hidden states that predict them [M, C].
std::pair<torch::Tensor, torch::Tensor> token_logprobs(Transformer& model, const torch::Tensor& selected,
                                                       const torch::Tensor& targets, const LogprobOptions& options) {
  if (torch::GradMode::is_enabled()) {
    auto outs = ChunkedTokenLogprob::apply(selected, model->lm_head_weight(), targets, options.temperature,
                                           options.chunk_size, options.entropy, options.keep_probs_bytes,
                                           static_cast<int64_t>(model->kernels()));
    return {outs[0], options.entropy ? outs[1] : torch::Tensor()};
  }
  const int64_t M = selected.size(0);
  const ComputeOptions& co = model->compute_options();  // the lm_head under autocast, as logits_from_hidden
  AutocastScope autocast(co.autocast, selected.device(), co.autocast_dtype);
  std::vector<torch::Tensor> lp_chunks, ent_chunks;
  for (int64_t s = 0; s < M; s += options.chunk_size) {
    const int64_t e = std::min(M, s + options.chunk_size);
    torch::Tensor logits =
        linear(selected.slice(0, s, e), model->lm_head_weight(), {}, model->kernels()).to(torch::kFloat32);  // [n, V]
    if (options.temperature != 1.0) logits = logits / options.temperature;
    torch::Tensor logsm = torch::log_softmax(logits, -1);
    lp_chunks.push_back(logsm.gather(1, targets.slice(0, s, e).unsqueeze(1)).squeeze(1));
    if (options.entropy) ent_chunks.push_back(-(logsm.exp() * logsm).sum(-1));
  }
  return {torch::cat(lp_chunks), options.entropy ? torch::cat(ent_chunks) : torch::Tensor()};
}

void check_options(const LogprobOptions& options) {
  R1_CHECK(options.temperature > 0, "log-probs: temperature must be > 0, got ", options.temperature);
  R1_CHECK(options.chunk_size > 0, "log-probs: chunk_size must be > 0, got ", options.chunk_size);
}

// Scatters per-token values [M] into [B*C] zeros at `dest` -> [B, C] (index_put keeps the graph).
CompletionLogprobs scatter_rows(const std::pair<torch::Tensor, torch::Tensor>& tokens, const torch::Tensor& dest_t,
                                int64_t B, int64_t C, torch::Device device) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  CompletionLogprobs out;
  out.logprobs = torch::zeros({B * C}, f32).index_put({dest_t}, tokens.first).view({B, C});
  if (tokens.second.defined())
    out.entropy = torch::zeros({B * C}, f32).index_put({dest_t}, tokens.second.detach()).view({B, C});
  return out;
}

CompletionLogprobs empty_logprobs(int64_t B, int64_t C, torch::Device device, bool entropy) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  CompletionLogprobs out;
  out.logprobs = torch::zeros({B, C}, f32);
  if (entropy) out.entropy = torch::zeros({B, C}, f32);
  return out;
}

}  // namespace

CompletionLogprobs completion_logprobs(Transformer& model, const CompletionBatch& batch,
                                       const LogprobOptions& options) {
  check_options(options);
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1), C = batch.completion_ids.size(1);
  torch::Device device = batch.input_ids.device();

  // Flat positions whose hidden state predicts a completion token: row i, token j is predicted at
  // position prompt_len + j - 1; its target is the completion token itself. The last column
  // predicts nothing (prompt + completion <= T), so the forward runs on the first T - 1.
  const int64_t Tin = T - 1;
  std::vector<int64_t> source, dest;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < batch.completion_lengths[i]; ++j) {
      source.push_back(i * Tin + batch.prompt_lengths[i] + j - 1);
      dest.push_back(i * C + j);
    }
  }
  if (source.empty()) return empty_logprobs(B, C, device, options.entropy);
  torch::Tensor dest_t = torch::tensor(dest, torch::kInt64).to(device);
  torch::Tensor hidden = model->forward_hidden(batch.input_ids.slice(1, 0, Tin).contiguous(),
                                               batch.positions.slice(1, 0, Tin).contiguous());  // [B, Tin, H]
  torch::Tensor selected = hidden.reshape({B * Tin, hidden.size(2)})
                               .index_select(0, torch::tensor(source, torch::kInt64).to(device));  // [M, H]
  torch::Tensor targets = batch.completion_ids.reshape({B * C}).index_select(0, dest_t);              // [M]
  return scatter_rows(token_logprobs(model, selected, targets, options), dest_t, B, C, device);
}

CompletionLogprobs completion_logprobs(Transformer& model, const PackedBatch& batch, const LogprobOptions& options) {
  check_options(options);
  const int64_t P = batch.prompt_ids.size(0), Tp = batch.prompt_ids.size(1);
  const int64_t R = batch.num_rows(), Tc = batch.completion_ids.size(1), G = batch.group_size;
  torch::Device device = batch.completion_ids.device();
  // Hidden states are [prompts (P*Tp) ; completions (R*Tin)]: completion token 0 of row r is
  // predicted by its prompt's last position, token j > 0 by the row's own position j - 1. The last
  // completion column predicts nothing, so the completion pass runs on the first Tin = Tc - 1.
  const int64_t Tin = Tc > 1 ? Tc - 1 : Tc;
  std::vector<int64_t> source, dest;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t p = r / G;
    for (int64_t j = 0; j < batch.completion_lengths[r]; ++j) {
      source.push_back(j == 0 ? p * Tp + batch.prompt_lengths[p] - 1 : P * Tp + r * Tin + j - 1);
      dest.push_back(r * Tc + j);
    }
  }
  if (source.empty()) return empty_logprobs(R, Tc, device, options.entropy);
  torch::Tensor dest_t = torch::tensor(dest, torch::kInt64).to(device);
  SharedPrefixHidden h = model->forward_shared_prefix(batch.prompt_ids, batch.prompt_lengths,
                                                      batch.completion_ids.slice(1, 0, Tin).contiguous(), G);
  const int64_t H = h.prompt.size(2);
  torch::Tensor flat = torch::cat({h.prompt.reshape({P * Tp, H}), h.completion.reshape({R * Tin, H})}, 0);
  torch::Tensor selected = flat.index_select(0, torch::tensor(source, torch::kInt64).to(device));  // [M, H]
  torch::Tensor targets = batch.completion_ids.reshape({R * Tc}).index_select(0, dest_t);         // [M]
  return scatter_rows(token_logprobs(model, selected, targets, options), dest_t, R, Tc, device);
}

}  // namespace r1kit::grpo
