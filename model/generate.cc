#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/check.h"
#include "model/kv_cache.h"

namespace r1kit {
namespace {

// Samples from softmax(logits / temperature), restricted to the smallest top-p nucleus.
int64_t sample(const torch::Tensor& logits, double temperature, double top_p, std::mt19937_64& rng) {
  auto probs = torch::softmax(logits.to(torch::kFloat64) / temperature, -1).contiguous();  // [V]
  const double* p = probs.data_ptr<double>();
  const int64_t V = probs.size(0);
  std::vector<int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  double mass = 0;
  int64_t keep = 0;
  while (keep < V && (keep == 0 || mass < top_p)) mass += p[order[keep++]];
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng), acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[order[i]];
    if (r < acc) return order[i];
  }
  return order[keep - 1];
}

}  // namespace

std::vector<int64_t> generate_tokens(Transformer& model, const std::vector<int64_t>& prompt_ids,
                                     const GenerateOptions& opts) {
  R1_CHECK(!prompt_ids.empty(), "generate: empty prompt");
  R1_CHECK(opts.temperature >= 0, "generate: temperature must be >= 0, got ", opts.temperature);
  R1_CHECK(opts.top_p > 0 && opts.top_p <= 1, "generate: top_p must be in (0, 1], got ", opts.top_p);
  const ModelConfig& cfg = model->config();
  for (int64_t id : prompt_ids)
    R1_CHECK(id >= 0 && id < cfg.vocab_size, "generate: prompt token id ", id, " outside the vocabulary [0, ",
             cfg.vocab_size, ")");
  torch::NoGradGuard no_grad;
  const int64_t P = int64_t(prompt_ids.size());
  KvCache cache(cfg, 1, P + std::max<int64_t>(opts.max_new_tokens, 1), model->dtype(), model->device());
  std::mt19937_64 rng(opts.seed);
  std::vector<int64_t> out;
  auto ids = torch::tensor(prompt_ids, torch::kLong).view({1, P});
  auto pos = torch::arange(P, torch::kLong).view({1, P});
  for (int64_t step = 0; step < opts.max_new_tokens; ++step) {
    auto logits = model->forward(ids, pos, &cache).select(0, 0).select(0, -1).cpu();  // [V]
    const int64_t next = opts.temperature == 0 ? logits.argmax().item<int64_t>()
                                               : sample(logits, opts.temperature, opts.top_p, rng);
    out.push_back(next);
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), next) != opts.stop_ids.end()) break;
    ids = torch::tensor({next}, torch::kLong).view({1, 1});
    pos = torch::tensor({P + step}, torch::kLong).view({1, 1});
  }
  return out;
}

}  // namespace r1kit
