// Asynchronous rollout and the off-policy correction (grpo/async_rollout.h, grpo/off_policy.h):
//   - sampler and trainer share weights and precision: the logged mismatch is 0 to float tolerance
//   - async_rollout with max_staleness 0 equals the synchronous trainer exactly (metrics, weights)
//   - max_staleness 1: batches are one version old, the mismatch shows it, tis weights correct it,
//     and the policy still learns
//   - importance weights (tis / mis) and their effect on the loss gradient against hand values
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/check.h"
#include "grpo/loss.h"
#include "grpo/off_policy.h"
#include "grpo/trainer.h"
#include "tests/grpo/tiny_grpo.h"

namespace r1kit::grpo {
namespace {

using namespace tiny;  // NOLINT: the shared tiny set-up (tests/grpo/tiny_grpo.h)

TEST(OffPolicy, MismatchIsZeroWhenSamplerAndTrainerShareWeights) {
  const std::string root = fresh_dir("mismatch0");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  o.steps = 3;
  o.off_policy_correction = "tis";
  run_grpo(o, root + "/run", tiny_inputs(model_dir));
  double worst_abs = 0, worst_k3 = 0;
  for (const json& m : read_metrics(root + "/run")) {
    worst_abs = std::max(worst_abs, m["mismatch/abs_logp_diff"].get<double>());
    worst_k3 = std::max(worst_k3, std::fabs(m["mismatch/kl_k3"].get<double>()));
    EXPECT_EQ(m["staleness"].get<int64_t>(), 0);
    EXPECT_NEAR(m["is_weight/mean"].get<double>(), 1.0, 1e-5);
    EXPECT_EQ(m["is_weight/capped_frac"].get<double>(), 0.0);
  }
  std::printf("synchronous, same weights and precision: max mean |dlogp| %.3e, max KL k3 %.3e\n", worst_abs, worst_k3);
  EXPECT_LT(worst_abs, 1e-5);
  EXPECT_LT(worst_k3, 1e-10);
}

TEST(AsyncRollout, StalenessZeroEqualsSynchronous) {
  const std::string root = fresh_dir("async0");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  o.steps = 4;
  o.off_policy_correction = "tis";
  run_grpo(o, root + "/sync", tiny_inputs(model_dir));
  o.async_rollout = true;
  o.max_staleness = 0;
  run_grpo(o, root + "/async0", tiny_inputs(model_dir));
  std::vector<json> a = read_metrics(root + "/sync"), b = read_metrics(root + "/async0");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    for (const char* key : {"loss", "reward/mean", "grad_norm", "mismatch/abs_logp_diff", "data_position"})
      EXPECT_EQ(a[i][key], b[i][key]) << key << " at step " << i + 1;
    EXPECT_EQ(b[i]["staleness"].get<int64_t>(), 0);
  }
  const double d = max_param_diff(root + "/sync/model", root + "/async0/model");
  std::printf("async max_staleness 0 vs synchronous, 4 steps: max |param diff| %.3e\n", d);
  EXPECT_EQ(d, 0.0);
}

TEST(AsyncRollout, StalenessOneIsCorrectedAndLearns) {
  const std::string root = fresh_dir("async1");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  o.steps = 16;
  o.async_rollout = true;
  o.max_staleness = 1;
  o.off_policy_correction = "tis";
  GrpoResult r = run_grpo(o, root + "/run", tiny_inputs(model_dir));
  ASSERT_TRUE(r.finished);
  std::vector<json> m = read_metrics(root + "/run");
  ASSERT_EQ(m.size(), 16u);
  int64_t max_stale = 0;
  double stale_mismatch = 0;
  for (const json& rec : m) {
    max_stale = std::max<int64_t>(max_stale, rec["staleness"].get<int64_t>());
    EXPECT_LE(rec["staleness"].get<int64_t>(), 1);
    if (rec["staleness"].get<int64_t>() == 1) stale_mismatch = std::max(stale_mismatch, rec["mismatch/abs_logp_diff"].get<double>());
  }
  auto mean_of = [&](size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) s += m[i]["reward/mean"].get<double>();
    return s / (to - from);
  };
  std::printf("async max_staleness 1: max staleness %lld, mean |dlogp| of stale batches up to %.3e, reward %.3f -> %.3f\n",
              static_cast<long long>(max_stale), stale_mismatch, mean_of(0, 4), mean_of(12, 16));
  EXPECT_EQ(max_stale, 1);  // the generator ran one version ahead
  EXPECT_GT(stale_mismatch, 1e-4);  // a one-version-old sampler is measurably off-policy
  EXPECT_GT(mean_of(12, 16), mean_of(0, 4) + 0.2);
}

TEST(OffPolicy, ImportanceWeightsAndLossAgainstHandValues) {
  // d = trainer - sampler = {0.1, 1.0, -0.5} (row 0), masked junk in row 1's last position.
  torch::Tensor trainer = torch::tensor({{-1.0, -0.5, -2.0}, {-0.3, -0.7, 5.0}}, torch::kFloat64);
  torch::Tensor sampler = torch::tensor({{-1.1, -1.5, -1.5}, {-0.3, -0.2, 0.0}}, torch::kFloat64);
  torch::Tensor mask = torch::tensor({{1, 1, 1}, {1, 1, 0}}, torch::kBool);
  MismatchStats st;
  torch::Tensor tis = importance_weights(trainer, sampler, mask, OffPolicyCorrection::kTis, 2.0, &st);
  torch::Tensor want_tis = torch::tensor({{std::exp(0.1), 2.0, std::exp(-0.5)}, {1.0, std::exp(-0.5), 1.0}},
                                         torch::kFloat64);
  EXPECT_LT((tis - want_tis).abs().max().item<double>(), 1e-12);
  torch::Tensor mis = importance_weights(trainer, sampler, mask, OffPolicyCorrection::kMis, 2.0, nullptr);
  EXPECT_EQ(mis[0][1].item<double>(), 0.0);  // exp(1) > 2: masked
  EXPECT_NEAR(mis[0][0].item<double>(), std::exp(0.1), 1e-12);
  EXPECT_EQ(st.tokens, 5.0);
  EXPECT_EQ(st.capped, 1.0);
  EXPECT_NEAR(st.abs_diff_sum, 0.1 + 1.0 + 0.5 + 0.0 + 0.5, 1e-12);
  EXPECT_NEAR(st.k1_sum, -(0.1 + 1.0 - 0.5 + 0.0 - 0.5), 1e-12);
  double k3 = 0;
  for (double d : {0.1, 1.0, -0.5, 0.0, -0.5}) k3 += std::exp(d) - 1 - d;
  EXPECT_NEAR(st.k3_sum, k3, 1e-12);
  EXPECT_THROW(parse_off_policy_correction("is"), Error);

  // The weights scale each token's policy gradient (beta 0, ratio 1 inside the clip range).
  torch::Tensor adv = torch::tensor({0.7, -1.2}, torch::kFloat64);
  GrpoLossOptions lo;
  lo.aggregation = LossAggregation::kTokenMean;
  torch::Tensor a = trainer.clone().requires_grad_(true), b = trainer.clone().requires_grad_(true);
  grpo_loss(a, trainer, {}, adv, mask, lo).loss.backward();
  grpo_loss(b, trainer, {}, adv, mask, lo, {}, tis).loss.backward();
  const double d = (b.grad() - a.grad() * tis * mask).abs().max().item<double>();
  std::printf("is_weights scale the per-token gradient: max |diff| %.3e\n", d);
  EXPECT_LT(d, 1e-15);
  EXPECT_EQ(b.grad()[1][2].item<double>(), 0.0);
}

}  // namespace
}  // namespace r1kit::grpo
