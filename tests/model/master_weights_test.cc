// fp32 master weights (model/master_weights.h) on CPU with bf16 tensors: at lr 1e-6 the masters move
// (and, once they cross a rounding boundary, the bf16 weights do), while pure bf16 AdamW leaves
// every weight above 2^-11 exactly where it was.
#include "model/master_weights.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "model/checkpoint.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

using test::max_abs_diff;

constexpr double kLr = 1e-6;
// bf16 keeps 8 significant bits: for |w| >= 2^-11 (~4.9e-4) half an ulp is >= 2^-19 ~ 1.9e-6, so an
// update of 1e-6 rounds away (between 2^-12 and 2^-11 half an ulp is 9.5e-7 and it just survives).
constexpr double kBf16Threshold = 1.0 / 2048;

torch::optim::AdamWOptions adamw(double lr) {
  return torch::optim::AdamWOptions(lr).betas(std::make_tuple(0.9, 0.99)).eps(1e-8).weight_decay(0.0);
}

// Elements of `now` that differ from `before`, among those with |before| > threshold.
int64_t changed_above(const torch::Tensor& before, const torch::Tensor& now, double threshold) {
  auto big = before.to(torch::kFloat32).abs() > threshold;
  return (before.ne(now) & big).sum().item<int64_t>();
}

// A linear loss sum(w * c) has the constant gradient c, so every AdamW update is lr * sign(c)
// (|c| >> eps): after N steps the exact answer is w0 - N * lr * sign(c).
TEST(MasterWeights, LinearLossMovesMastersByExactlyLrPerStep) {
  torch::manual_seed(0);
  const int64_t n = 4096, steps = 100;
  auto w0 = (torch::randn({n}) * 0.1).to(torch::kBFloat16);
  auto c = torch::randn({n}) + torch::sign(torch::randn({n}));  // |c| well above adam eps

  // Pure bf16: AdamW directly on the bf16 tensor.
  auto pure = w0.clone().requires_grad_(true);
  torch::optim::AdamW pure_opt({pure}, adamw(kLr));
  // Master weights: the same bf16 tensor, fp32 masters.
  auto mixed = w0.clone().requires_grad_(true);
  MasterWeights mw({mixed}, adamw(kLr));
  ASSERT_TRUE(mw.enabled());
  for (int64_t s = 0; s < steps; ++s) {
    pure_opt.zero_grad();
    (pure.to(torch::kFloat32) * c).sum().backward();
    pure_opt.step();
    mw.zero_grad();
    (mixed.to(torch::kFloat32) * c).sum().backward();
    mw.accumulate_grads();
    mw.step();
  }
  const auto expected = w0.to(torch::kFloat64) - double(steps) * kLr * torch::sign(c).to(torch::kFloat64);
  const double master_err = max_abs_diff(mw.masters()[0], expected);
  const int64_t pure_changed = changed_above(w0, pure.detach(), kBf16Threshold);
  const int64_t mixed_changed = changed_above(w0, mixed.detach(), kBf16Threshold);
  std::printf("  %lld steps at lr %.0e: masters vs exact max diff %.3e; bf16 weights > 2^-11 changed: "
              "pure bf16 %lld / %lld, with masters %lld\n",
              (long long)steps, kLr, master_err, (long long)pure_changed, (long long)n, (long long)mixed_changed);
  EXPECT_LT(master_err, 2e-8 * steps);  // fp32 rounding of each 1e-6 step only
  EXPECT_EQ(pure_changed, 0);
  EXPECT_GT(mixed_changed, n / 20);  // 1e-4 of drift crosses a rounding boundary for many weights
  // The bf16 weights are always the masters rounded to nearest.
  EXPECT_TRUE(torch::equal(mixed.detach(), mw.masters()[0].to(torch::kBFloat16)));
}

// The same on a tiny decoder trained with cross-entropy in bf16 (CPU): real gradients, every
// parameter kind (embeddings, norms, projections).
TEST(MasterWeights, Bf16DecoderTrainsAtLr1e6OnlyWithMasters) {
  const ModelConfig cfg = test::tiny_config();
  torch::manual_seed(1);
  Transformer init(cfg);
  init->to(torch::kBFloat16);
  auto ids = torch::randint(0, cfg.vocab_size, {4, 12}, torch::kLong);
  auto pos = torch::arange(12, torch::kLong).unsqueeze(0).expand({4, 12});
  auto targets = torch::randint(0, cfg.vocab_size, {4 * 12}, torch::kLong);

  auto train = [&](bool masters, int64_t steps) {
    Transformer m(cfg);
    m->to(torch::kBFloat16);
    load_hf_state_dict(m, hf_state_dict(init));  // hf names: model/checkpoint.h
    std::unique_ptr<MasterWeights> mw;
    std::unique_ptr<torch::optim::AdamW> pure;
    if (masters) mw = std::make_unique<MasterWeights>(m->parameters(), adamw(kLr));
    else pure = std::make_unique<torch::optim::AdamW>(m->parameters(), adamw(kLr));
    for (int64_t s = 0; s < steps; ++s) {
      auto loss = torch::nn::functional::cross_entropy(m->forward(ids, pos).view({-1, cfg.vocab_size}), targets);
      loss.backward();
      if (masters) {
        mw->accumulate_grads();
        mw->clip_grad_norm(1.0);
        mw->step();
        mw->zero_grad();
      } else {
        torch::nn::utils::clip_grad_norm_(m->parameters(), 1.0);
        pure->step();
        pure->zero_grad();
      }
    }
    return m;
  };
  const int64_t steps = 200;
  Transformer pure = train(false, steps), mixed = train(true, steps);
  int64_t total = 0, pure_changed = 0, mixed_changed = 0;
  const auto p0 = init->parameters(), p1 = pure->parameters(), p2 = mixed->parameters();
  for (size_t i = 0; i < p0.size(); ++i) {
    total += p0[i].numel();
    pure_changed += changed_above(p0[i], p1[i], kBf16Threshold);
    mixed_changed += changed_above(p0[i], p2[i], kBf16Threshold);
  }
  std::printf("  tiny decoder, %lld bf16 steps at lr 1e-6: weights > 2^-11 changed: pure bf16 %lld / %lld, "
              "with fp32 masters %lld\n",
              (long long)steps, (long long)pure_changed, (long long)total, (long long)mixed_changed);
  EXPECT_EQ(pure_changed, 0);
  EXPECT_GT(mixed_changed, total / 100);
}

TEST(MasterWeights, Float32ParametersAreTheirOwnMastersAndMatchPlainAdamW) {
  torch::manual_seed(2);
  auto w0 = torch::randn({64});
  auto c = torch::randn({64});
  auto a = w0.clone().requires_grad_(true), b = w0.clone().requires_grad_(true);
  torch::optim::AdamW plain({a}, adamw(1e-2));
  MasterWeights mw({b}, adamw(1e-2));
  EXPECT_FALSE(mw.enabled());
  EXPECT_TRUE(mw.masters()[0].is_same(b));
  for (int s = 0; s < 5; ++s) {
    plain.zero_grad();
    (a * a * c).sum().backward();
    torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{a}, 0.5);
    plain.step();
    mw.zero_grad();
    (b * b * c).sum().backward();
    mw.clip_grad_norm(0.5);
    mw.step();
  }
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(MasterWeights, MicroBatchGradientsAreSummedInFloat32) {
  torch::manual_seed(3);
  auto w = torch::randn({256}).to(torch::kBFloat16).requires_grad_(true);
  MasterWeights mw({w}, adamw(kLr));
  torch::Tensor sum64 = torch::zeros({256}, torch::kFloat64);
  for (int k = 0; k < 8; ++k) {
    auto c = torch::randn({256}) * (1.0 + k);
    (w.to(torch::kFloat32) * c).sum().backward();
    sum64 += c.to(torch::kBFloat16).to(torch::kFloat64);  // each micro-batch's grad is bf16
    mw.accumulate_grads();
    EXPECT_FALSE(w.grad().defined());
  }
  const auto& g = mw.masters()[0].grad();
  ASSERT_EQ(g.scalar_type(), torch::kFloat32);
  const double err = max_abs_diff(g, sum64);
  std::printf("  8 bf16 micro-batch grads summed: max diff to float64 sum %.3e\n", err);
  EXPECT_LT(err, 1e-5);
  // The global norm is taken over the fp32 sums.
  const double norm = mw.clip_grad_norm(std::numeric_limits<double>::infinity());
  EXPECT_NEAR(norm, sum64.norm().item<double>(), 1e-3);
}

TEST(MasterWeights, CheckpointRestoresMastersAndMoments) {
  torch::manual_seed(4);
  auto w0 = (torch::randn({128}) * 0.1).to(torch::kBFloat16);
  auto c = torch::randn({128});
  auto run = [&](MasterWeights& mw, torch::Tensor& w, int steps) {
    for (int s = 0; s < steps; ++s) {
      mw.zero_grad();
      (w.to(torch::kFloat32) * c * (1 + s)).sum().backward();
      mw.step();
    }
  };
  // Straight 6 steps vs 3 steps, save, fresh objects, load, 3 more.
  auto a = w0.clone().requires_grad_(true);
  MasterWeights ma({a}, adamw(kLr));
  run(ma, a, 6);
  auto b = w0.clone().requires_grad_(true);
  MasterWeights mb({b}, adamw(kLr));
  run(mb, b, 3);
  const std::string path = test::fresh_dir("master_ckpt") + "/optimizer.pt";
  mb.save_to_file(path);
  auto b2 = w0.clone().requires_grad_(true);  // the bf16 weights alone cannot hold the 3 steps
  MasterWeights mb2({b2}, adamw(kLr));
  mb2.load_from_file(path, torch::kCPU);
  EXPECT_TRUE(torch::equal(mb2.masters()[0], mb.masters()[0]));
  EXPECT_TRUE(torch::equal(b2, b));
  // AdamW's step counter came along: the continued run lands on the straight run bit for bit.
  for (int s = 3; s < 6; ++s) {
    mb2.zero_grad();
    (b2.to(torch::kFloat32) * c * (1 + s)).sum().backward();
    mb2.step();
  }
  EXPECT_TRUE(torch::equal(mb2.masters()[0], ma.masters()[0]));

  // A checkpoint written without masters (pure fp32 AdamW state for the same shapes) still loads:
  // the masters start from the parameters.
  auto f = w0.to(torch::kFloat32).clone().requires_grad_(true);
  MasterWeights mf({f}, adamw(kLr));
  run(mf, f, 1);
  const std::string plain_path = test::fresh_dir("master_plain") + "/optimizer.pt";
  mf.save_to_file(plain_path);
  auto d = w0.clone().requires_grad_(true);
  MasterWeights md({d}, adamw(kLr));
  md.load_from_file(plain_path, torch::kCPU);
  EXPECT_TRUE(torch::equal(md.masters()[0], d.to(torch::kFloat32)));

  // A damaged file is an error naming it.
  const std::string bad = test::fresh_dir("master_bad") + "/optimizer.pt";
  {
    std::ofstream(bad) << "not an archive";
  }
  const std::string msg = test::error_of([&] { md.load_from_file(bad, torch::kCPU); });
  EXPECT_NE(msg.find(bad), std::string::npos) << msg;
}

}  // namespace
}  // namespace r1kit
