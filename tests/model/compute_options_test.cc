// Decoder compute options (model/autocast.h) on CPU: activation checkpointing gives the gradients of
// the plain backward; bf16 autocast over fp32 weights computes in bf16 (close to, not equal to, fp32)
// and leaves the autocast state as it found it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/activation_checkpoint.h"
#include "model/autocast.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

using test::max_abs_diff;

struct Batch {
  torch::Tensor ids, pos, targets;
};

Batch random_batch(const ModelConfig& cfg, int64_t B, int64_t T) {
  Batch b;
  b.ids = torch::randint(0, cfg.vocab_size, {B, T}, torch::kLong);
  b.pos = torch::arange(T, torch::kLong).unsqueeze(0).expand({B, T}).contiguous();
  b.targets = torch::randint(0, cfg.vocab_size, {B * T}, torch::kLong);
  return b;
}

// Loss and the gradients of every parameter for one forward/backward.
std::pair<double, std::vector<torch::Tensor>> loss_and_grads(Transformer& m, const Batch& b) {
  m->zero_grad();
  auto logits = m->forward(b.ids, b.pos);
  auto loss = torch::nn::functional::cross_entropy(logits.view({-1, logits.size(-1)}), b.targets);
  loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : m->parameters()) grads.push_back(p.grad().clone());
  return {loss.item<double>(), grads};
}

TEST(ActivationCheckpointing, SameLossAndGradientsAsPlainBackward) {
  const ModelConfig cfg = test::tiny_config("qwen2", /*tied=*/true);
  torch::manual_seed(5);
  Transformer m(cfg);
  m->train();
  const Batch b = random_batch(cfg, 3, 10);
  const auto [loss_plain, g_plain] = loss_and_grads(m, b);
  ComputeOptions co;
  co.activation_checkpointing = true;
  m->set_compute_options(co);
  const auto [loss_ckpt, g_ckpt] = loss_and_grads(m, b);
  double worst = 0;
  for (size_t i = 0; i < g_plain.size(); ++i) worst = std::max(worst, max_abs_diff(g_plain[i], g_ckpt[i]));
  std::printf("  checkpointed backward: loss diff %.3e, max gradient diff %.3e over %zu parameters\n",
              std::abs(loss_plain - loss_ckpt), worst, g_plain.size());
  EXPECT_EQ(loss_plain, loss_ckpt);
  EXPECT_LT(worst, 1e-6);
  // Without gradients (evaluation, decode) the option changes nothing.
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(m->forward(b.ids, b.pos), m->forward(b.ids, b.pos)));
}

TEST(ActivationCheckpointing, FrozenParametersAndInputWithoutGradient) {
  // A block whose input needs no gradient and one of whose two parameters is frozen.
  auto w1 = torch::randn({4, 4}).requires_grad_(true);
  auto w2 = torch::randn({4, 4});  // frozen
  auto x = torch::randn({2, 4});
  auto fn = [w1, w2](const torch::Tensor& in) { return torch::tanh(in.matmul(w1)).matmul(w2); };
  checkpoint_activations(fn, x, {w1, w2}).sum().backward();
  const auto g = w1.grad().clone();
  w1.mutable_grad() = torch::Tensor();
  fn(x).sum().backward();
  EXPECT_LT(max_abs_diff(g, w1.grad()), 1e-6);
}

TEST(Autocast, Bf16OverFloat32WeightsIsCloseButNotEqualAndRestoresState) {
  const ModelConfig cfg = test::tiny_config();
  torch::manual_seed(6);
  Transformer m(cfg);
  const Batch b = random_batch(cfg, 2, 9);
  torch::Tensor fp32, amp;
  {
    torch::NoGradGuard no_grad;
    fp32 = m->forward(b.ids, b.pos);
    ComputeOptions co;
    co.autocast = true;
    m->set_compute_options(co);
    amp = m->forward(b.ids, b.pos);
  }
  EXPECT_FALSE(AutocastScope::enabled(torch::kCPU));  // the forward's scope is closed
  ASSERT_EQ(amp.scalar_type(), torch::kFloat32);       // logits are float32 either way
  const double diff = max_abs_diff(fp32, amp), scale = fp32.abs().max().item<double>();
  std::printf("  bf16 autocast vs float32 logits: max diff %.3e (max |logit| %.3f)\n", diff, scale);
  EXPECT_GT(diff, 0.0);           // matmuls really ran in bf16
  EXPECT_LT(diff, 0.05 * scale);  // within bf16 rounding of a 2-layer decoder

  // Training under autocast (and checkpointing, whose recompute re-enters autocast): gradients
  // close to float32's.
  ComputeOptions co;
  co.autocast = true;
  co.activation_checkpointing = true;
  m->train();
  m->set_compute_options({});
  const auto [l32, g32] = loss_and_grads(m, b);
  m->set_compute_options(co);
  const auto [l16, g16] = loss_and_grads(m, b);
  double worst_rel = 0;
  for (size_t i = 0; i < g32.size(); ++i)
    worst_rel = std::max(worst_rel, max_abs_diff(g32[i], g16[i]) / (g32[i].abs().max().item<double>() + 1e-12));
  std::printf("  autocast + checkpointing: loss %.6f vs %.6f, worst relative gradient diff %.3e\n", l32, l16, worst_rel);
  EXPECT_NEAR(l32, l16, 0.02 * std::abs(l32));
  EXPECT_LT(worst_rel, 0.1);
  EXPECT_GT(worst_rel, 0.0);
}

TEST(Autocast, ScopesNestAndRestore) {
  EXPECT_FALSE(AutocastScope::enabled(torch::kCPU));
  {
    AutocastScope outer(true, torch::kCPU, torch::kBFloat16);
    EXPECT_TRUE(AutocastScope::enabled(torch::kCPU));
    {
      AutocastScope off(false, torch::kCPU);  // disabled scope: no change
      EXPECT_TRUE(AutocastScope::enabled(torch::kCPU));
      AutocastScope inner(true, torch::kCPU, torch::kBFloat16);
      auto a = torch::randn({4, 4});
      EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    }
    EXPECT_TRUE(AutocastScope::enabled(torch::kCPU));
  }
  EXPECT_FALSE(AutocastScope::enabled(torch::kCPU));
  auto a = torch::randn({4, 4});
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace r1kit
