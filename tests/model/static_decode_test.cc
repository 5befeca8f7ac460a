// The static decode step (model/static_decode.h), run eagerly on CPU: logits equal the dynamic
// decode's (TransformerImpl::forward with a KvCache) step after step for rows of different lengths,
// idle rows keep their K/V bit for bit, and lengths advance only for decoded rows.
#include "model/static_decode.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

using test::max_abs_diff;

KvCache clone_cache(KvCache& c, const ModelConfig& cfg) {
  KvCache out(cfg, c.n_rows(), c.max_len(), c.dtype(), c.device());
  for (int64_t l = 0; l < c.n_layers(); ++l) {
    out.k(l).copy_(c.k(l));
    out.v(l).copy_(c.v(l));
  }
  for (int64_t r = 0; r < c.n_rows(); ++r) out.set_length(r, c.length(r));
  return out;
}

void run_static_vs_dynamic(const ModelConfig& cfg, torch::Dtype dtype, double tol) {
  torch::manual_seed(7);
  Transformer model(cfg);
  model->to(dtype);
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t rows = 5, max_len = 24;
  KvCache dyn(cfg, rows, max_len, dtype, torch::kCPU);
  // Prompts of lengths 3, 7, 1 in rows 0, 2, 3; row 1 holds a 4-token prefix that is not decoded
  // (a prompt waiting to be copied); row 4 is free.
  const std::vector<std::pair<int64_t, int64_t>> prompts = {{0, 3}, {2, 7}, {3, 1}, {1, 4}};
  for (auto [row, len] : prompts) {
    auto ids = torch::randint(0, cfg.vocab_size, {1, len}, torch::kLong);
    auto pos = torch::arange(len, torch::kLong).unsqueeze(0);
    std::vector<int64_t> r = {row};
    model->forward(ids, pos, &dyn, &r);
  }
  KvCache stat = clone_cache(dyn, cfg);
  const auto idle_k = stat.k(1).select(0, 1).clone(), idle_v = stat.v(1).select(0, 1).clone();
  StaticDecoder dec(model, /*cuda_graph=*/true);  // CPU: runs eagerly
  EXPECT_FALSE(dec.uses_cuda_graph());
  std::vector<int64_t> decode_rows = {2, 0, 3};
  std::vector<int64_t> ids = {5, 6, 7};
  double worst = 0, scale = 0;
  for (int step = 0; step < 8; ++step) {
    if (step == 4) decode_rows = {3, 2};  // row 0 finished
    ids.resize(decode_rows.size());
    std::vector<int64_t> pos;
    for (int64_t r : decode_rows) pos.push_back(dyn.length(r));
    auto want = model->forward(torch::tensor(ids, torch::kLong).view({-1, 1}), torch::tensor(pos, torch::kLong).view({-1, 1}),
                               &dyn, &decode_rows).select(1, 0);
    auto got = dec.step(stat, decode_rows, ids);
    ASSERT_EQ(got.sizes(), want.sizes());
    worst = std::max(worst, max_abs_diff(got, want));
    scale = std::max(scale, want.abs().max().item<double>());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = want[i].argmax().item<int64_t>();  // greedy continuation
  }
  std::printf("  static vs dynamic decode (%s): 8 steps, max logit diff %.3e (max |logit| %.2f)\n",
              dtype == torch::kFloat32 ? "f32" : "bf16", worst, scale);
  EXPECT_LT(worst, tol * (dtype == torch::kFloat32 ? 1.0 : scale));  // bf16: relative to the logits' size
  EXPECT_EQ(stat.lengths(), dyn.lengths());
  EXPECT_EQ(stat.length(1), 4);
  EXPECT_TRUE(torch::equal(stat.k(1).select(0, 1), idle_k));  // the idle prefix row is untouched
  EXPECT_TRUE(torch::equal(stat.v(1).select(0, 1), idle_v));
}

TEST(StaticDecode, MatchesDynamicDecodeFloat32) {
  run_static_vs_dynamic(test::tiny_config("llama", false, 2), torch::kFloat32, 2e-5);  // GQA 4/2
  run_static_vs_dynamic(test::tiny_config("qwen2", true, 1), torch::kFloat32, 2e-5);   // MQA, tied
}

TEST(StaticDecode, MatchesDynamicDecodeBf16) {
  // bf16 sums over all slots (static) or the used ones (dynamic) round differently, and the difference
  // feeds back through the cache: a few bf16 ulps of the logits after 8 steps.
  run_static_vs_dynamic(test::tiny_config("qwen2", true, 2), torch::kBFloat16, 0.05);
}

TEST(StaticDecode, BadRowsAreErrors) {
  const ModelConfig cfg = test::tiny_config();
  Transformer model(cfg);
  KvCache cache(cfg, 2, 4, torch::kFloat32, torch::kCPU);
  StaticDecoder dec(model, false);
  EXPECT_NE(test::error_of([&] { dec.step(cache, {2}, {1}); }).find("outside the cache"), std::string::npos);
  EXPECT_NE(test::error_of([&] { dec.step(cache, {0, 0}, {1, 1}); }).find("given twice"), std::string::npos);
  cache.set_length(1, 4);
  EXPECT_NE(test::error_of([&] { dec.step(cache, {1}, {1}); }).find("is full"), std::string::npos);
}

}  // namespace
}  // namespace r1kit
