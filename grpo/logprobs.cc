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

CompletionLogprobs completion_logprobs(Transformer& model, const CompletionBatch& batch,
                                       const LogprobOptions& options) {
  R1_CHECK(options.temperature > 0, "log-probs: temperature must be > 0, got ", options.temperature);
  R1_CHECK(options.chunk_size > 0, "log-probs: chunk_size must be > 0, got ", options.chunk_size);
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1), C = batch.completion_ids.size(1);
  torch::Device device = batch.input_ids.device();

  // Flat positions whose hidden state predicts a completion token: row i, token j is predicted at
  // position prompt_len + j - 1; its target is the completion token itself.
  std::vector<int64_t> source, dest;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < batch.completion_lengths[i]; ++j) {
      source.push_back(i * T + batch.prompt_lengths[i] + j - 1);
      dest.push_back(i * C + j);
    }
  }
  const int64_t M = static_cast<int64_t>(source.size());
  CompletionLogprobs out;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  torch::Tensor dest_t = torch::tensor(dest, torch::kInt64).to(device);
  if (M == 0) {
    out.logprobs = torch::zeros({B, C}, f32);
    if (options.entropy) out.entropy = torch::zeros({B, C}, f32);
    return out;
  }
  torch::Tensor hidden = model->forward_hidden(batch.input_ids, batch.positions);  // [B, T, H]
  torch::Tensor selected = hidden.reshape({B * T, hidden.size(2)})
                               .index_select(0, torch::tensor(source, torch::kInt64).to(device));  // [M, H]
  torch::Tensor targets = batch.completion_ids.reshape({B * C}).index_select(0, dest_t);              // [M]

  std::vector<torch::Tensor> lp_chunks, ent_chunks;
  for (int64_t s = 0; s < M; s += options.chunk_size) {
    const int64_t e = std::min(M, s + options.chunk_size);
    torch::Tensor logits = model->logits_from_hidden(selected.slice(0, s, e)).to(torch::kFloat32);  // [n, V]
    if (options.temperature != 1.0) logits = logits / options.temperature;
    torch::Tensor logsm = torch::log_softmax(logits, -1);
    lp_chunks.push_back(logsm.gather(1, targets.slice(0, s, e).unsqueeze(1)).squeeze(1));
    if (options.entropy) {
      torch::NoGradGuard no_grad;
      ent_chunks.push_back(entropy_from_logits(logits.detach()));
    }
  }
  // Scatter into [B, C] with zeros at padding (index_put keeps the graph for the backward pass).
  out.logprobs = torch::zeros({B * C}, f32).index_put({dest_t}, torch::cat(lp_chunks)).view({B, C});
  if (options.entropy) {
    out.entropy = torch::zeros({B * C}, f32).index_put({dest_t}, torch::cat(ent_chunks)).view({B, C});
  }
  return out;
}

}  // namespace r1kit::grpo
