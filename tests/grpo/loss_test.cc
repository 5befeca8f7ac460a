// GRPO loss, hand-derived (torchtune test_ppo_loss style: expected values worked out in comments),
// plus gradient-accumulation equivalence and a finite-difference check on random inputs.
#include "grpo/loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/check.h"

namespace r1kit::grpo {
namespace {

torch::Tensor row(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).view({1, -1}); }
torch::Tensor vec(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

GrpoLossOutput one_token(double logp, double old_logp, double adv, const GrpoLossOptions& o,
                         double ref = NAN, torch::Tensor* grad = nullptr) {
  torch::Tensor lp = row({logp}).requires_grad_(true);
  torch::Tensor ref_t = std::isnan(ref) ? row({logp}) : row({ref});
  GrpoLossOutput out = grpo_loss(lp, row({old_logp}), ref_t, vec({adv}), torch::ones({1, 1}), o);
  out.loss.backward();
  if (grad) *grad = lp.grad();
  return out;
}

TEST(GrpoLoss, UnclippedPositiveAdvantage) {
  // log-ratio 0.1: rho = e^0.1 = 1.1051709 inside [0.8, 1.2]. A = 2: J = rho * A, loss = -2 e^0.1.
  // d loss / d logp = -rho * A = -2 e^0.1.
  torch::Tensor g;
  GrpoLossOutput out = one_token(-1.0, -1.1, 2.0, {}, NAN, &g);
  EXPECT_NEAR(out.loss.item<double>(), -2 * std::exp(0.1), 1e-14);
  EXPECT_NEAR(g.item<double>(), -2 * std::exp(0.1), 1e-14);
  EXPECT_EQ(out.stats.clip_region_frac, 0.0);
}

TEST(GrpoLoss, ClippedPositiveAdvantage) {
  // log-ratio 0.5: rho = 1.6487 > 1.2; A = 1 > 0: min(1.6487, 1.2) = 1.2 is the clipped term,
  // loss = -1.2 and the gradient is 0 (the clamp is flat there). Counts as a high clip.
  torch::Tensor g;
  GrpoLossOutput out = one_token(-0.5, -1.0, 1.0, {}, NAN, &g);
  EXPECT_NEAR(out.loss.item<double>(), -1.2, 1e-14);
  EXPECT_EQ(g.item<double>(), 0.0);
  EXPECT_EQ(out.stats.clip_high_frac, 1.0);
  EXPECT_EQ(out.stats.clip_low_frac, 0.0);
}

TEST(GrpoLoss, ClippedNegativeAdvantage) {
  // log-ratio -0.5: rho = 0.6065 < 0.8; A = -1: min(-0.6065, -0.8) = -0.8 (clipped), loss 0.8,
  // gradient 0, a low clip.
  torch::Tensor g;
  GrpoLossOutput out = one_token(-1.5, -1.0, -1.0, {}, NAN, &g);
  EXPECT_NEAR(out.loss.item<double>(), 0.8, 1e-14);
  EXPECT_EQ(g.item<double>(), 0.0);
  EXPECT_EQ(out.stats.clip_low_frac, 1.0);
}

TEST(GrpoLoss, OutOfRangeButUnclippedNegativeAdvantage) {
  // log-ratio 0.4: rho = e^0.4 = 1.4918 > 1.2 but A = -1: min(-1.4918, -1.2) = -1.4918, the
  // unclipped term; loss = e^0.4, gradient = -rho * A = e^0.4. Not counted as clipped.
  torch::Tensor g;
  GrpoLossOutput out = one_token(-0.6, -1.0, -1.0, {}, NAN, &g);
  EXPECT_NEAR(out.loss.item<double>(), std::exp(0.4), 1e-14);
  EXPECT_NEAR(g.item<double>(), std::exp(0.4), 1e-14);
  EXPECT_EQ(out.stats.clip_region_frac, 0.0);
}

TEST(GrpoLoss, ClipHigherAsymmetric) {
  // eps_high 0.28: rho = e^0.2 = 1.2214 > 1.2 but < 1.28, so with A = 1 it is NOT clipped:
  // loss = -e^0.2, gradient -e^0.2.
  GrpoLossOptions o;
  o.eps_high = 0.28;
  torch::Tensor g;
  GrpoLossOutput out = one_token(-0.8, -1.0, 1.0, o, NAN, &g);
  EXPECT_NEAR(out.loss.item<double>(), -std::exp(0.2), 1e-14);
  EXPECT_NEAR(g.item<double>(), -std::exp(0.2), 1e-14);
}

TEST(GrpoLoss, DualClipCapsNegativeAdvantage) {
  // c = 3, A = -0.5, log-ratio 1.5: rho = 4.4817; -J = rho * |A| = 2.2408 > c * |A| = 1.5,
  // so the loss is capped at 1.5 with zero gradient; counted in dual_clip_frac.
  GrpoLossOptions o;
  o.dual_clip = 3.0;
  torch::Tensor g;
  GrpoLossOutput out = one_token(0.5, -1.0, -0.5, o, NAN, &g);
  EXPECT_NEAR(out.loss.item<double>(), 1.5, 1e-14);
  EXPECT_EQ(g.item<double>(), 0.0);
  EXPECT_EQ(out.stats.dual_clip_frac, 1.0);
  // Same ratio with A > 0 is an ordinary high clip: loss -1.2 * 0.5 = -0.6.
  GrpoLossOutput pos = one_token(0.5, -1.0, 0.5, o);
  EXPECT_NEAR(pos.loss.item<double>(), -0.6, 1e-14);
  EXPECT_EQ(pos.stats.dual_clip_frac, 0.0);
}

TEST(GrpoLoss, KlIsZeroWhenPolicyEqualsReference) {
  // ref == logp: Delta = 0, KL = e^0 - 0 - 1 = 0 and dKL/dlogp = 1 - e^0 = 0, whatever beta.
  GrpoLossOptions o;
  o.beta = 0.5;
  torch::Tensor g;
  GrpoLossOutput out = one_token(-1.0, -1.0, 0.0, o, /*ref=*/-1.0, &g);
  EXPECT_EQ(out.stats.kl_mean, 0.0);
  EXPECT_EQ(out.loss.item<double>(), 0.0);
  EXPECT_EQ(g.item<double>(), 0.0);
}

TEST(GrpoLoss, KlTermValueAndGradient) {
  // A = 0 isolates the KL: Delta = ref - logp = -1.2 - (-1.0) = -0.2,
  // KL = e^-0.2 + 0.2 - 1 = 0.018730753; loss = beta * KL with beta 0.1;
  // gradient = beta * (1 - e^-0.2) = 0.1 * 0.181269247.
  GrpoLossOptions o;
  o.beta = 0.1;
  torch::Tensor g;
  GrpoLossOutput out = one_token(-1.0, -1.0, 0.0, o, /*ref=*/-1.2, &g);
  const double kl = std::exp(-0.2) + 0.2 - 1;
  EXPECT_NEAR(out.loss.item<double>(), 0.1 * kl, 1e-15);
  EXPECT_NEAR(g.item<double>(), 0.1 * (1 - std::exp(-0.2)), 1e-15);
  EXPECT_NEAR(out.stats.kl_mean, kl, 1e-15);
}

// Two rows, ratio 1 everywhere (logp == old), beta 0: l_{i,t} = -A_i.
// Row 0: A = 1, 3 tokens. Row 1: A = -2, 1 token (2 positions, second masked).
struct TwoRows {
  torch::Tensor logp = torch::zeros({2, 2}, torch::kFloat64);
  torch::Tensor mask = torch::tensor({1, 1, 1, 0}, torch::kFloat64).view({2, 2});
  torch::Tensor adv = vec({1.0, -2.0});
};

TEST(GrpoLoss, EachAggregation) {
  TwoRows x;
  x.mask = torch::tensor({1, 1, 1, 0}, torch::kFloat64).view({2, 2});
  // Row sums: -1 - 1 = -2 (n=2); +2 (n=1). N = 3, B = 2.
  GrpoLossOptions o;
  o.aggregation = LossAggregation::kGrpo;  // (-2/2 + 2/1) / 2 = 0.5
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, x.mask, o).loss.item<double>(), 0.5, 1e-15);
  o.aggregation = LossAggregation::kTokenMean;  // (-2 + 2) / 3 = 0
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, x.mask, o).loss.item<double>(), 0.0, 1e-15);
  o.aggregation = LossAggregation::kDrGrpo;  // 0 / (2 * L)
  o.max_completion_length = 4;
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, x.mask, o).loss.item<double>(), 0.0, 1e-15);
  // Make row 1 empty: grpo = (-1 + 0) / 2 = -0.5 (empty row still counts in B, TRL);
  // seq_mean_nonempty = -1 / 1 = -1 (veRL); dr_grpo = -2 / (2 * 4) = -0.25; token_mean = -2 / 2.
  torch::Tensor m2 = torch::tensor({1, 1, 0, 0}, torch::kFloat64).view({2, 2});
  o.aggregation = LossAggregation::kGrpo;
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, m2, o).loss.item<double>(), -0.5, 1e-15);
  o.aggregation = LossAggregation::kSeqMeanNonempty;
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, m2, o).loss.item<double>(), -1.0, 1e-15);
  o.aggregation = LossAggregation::kDrGrpo;
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, m2, o).loss.item<double>(), -0.25, 1e-15);
  o.aggregation = LossAggregation::kTokenMean;
  EXPECT_NEAR(grpo_loss(x.logp, x.logp, {}, x.adv, m2, o).loss.item<double>(), -1.0, 1e-15);
  // dr_grpo without L is an error.
  o.aggregation = LossAggregation::kDrGrpo;
  o.max_completion_length = 0;
  EXPECT_THROW(grpo_loss(x.logp, x.logp, {}, x.adv, m2, o), Error);
}

TEST(GrpoLoss, JunkAtMaskedPositionsIsIgnored) {
  // inf and NaN under the mask must change neither loss nor gradient (no 0 * inf = NaN).
  torch::Tensor logp = torch::tensor({-1.0, 1e30}, torch::kFloat64).view({1, 2}).requires_grad_(true);
  torch::Tensor old = torch::tensor({-1.1, -1e30}, torch::kFloat64).view({1, 2});
  torch::Tensor ref = vec({-1.0, std::nan("")}).view({1, 2});
  torch::Tensor mask = torch::tensor({1, 0}, torch::kFloat64).view({1, 2});
  GrpoLossOptions o;
  o.beta = 0.04;
  GrpoLossOutput out = grpo_loss(logp, old, ref, vec({1.0}), mask, o);
  out.loss.backward();
  EXPECT_NEAR(out.loss.item<double>(), -std::exp(0.1), 1e-14);
  EXPECT_TRUE(torch::isfinite(logp.grad()).all().item<bool>());
  EXPECT_EQ(logp.grad()[0][1].item<double>(), 0.0);
}

// Random inputs for the accumulation and finite-difference checks.
struct RandomBatch {
  torch::Tensor logp, old_logp, ref_logp, adv, mask;
  explicit RandomBatch(int64_t B, int64_t T, uint64_t seed) {
    torch::manual_seed(seed);
    logp = -torch::rand({B, T}, torch::kFloat64) * 3;
    old_logp = logp + (torch::rand({B, T}, torch::kFloat64) - 0.5);  // ratios in [e^-0.5, e^0.5]
    ref_logp = logp + (torch::rand({B, T}, torch::kFloat64) - 0.5) * 0.6;
    adv = torch::randn({B}, torch::kFloat64);
    torch::Tensor lengths = torch::randint(0, T + 1, {B, 1});
    mask = torch::arange(T).view({1, T}) < lengths;
  }
};

std::vector<GrpoLossOptions> all_variants() {
  std::vector<GrpoLossOptions> v;
  for (LossAggregation agg : {LossAggregation::kGrpo, LossAggregation::kTokenMean, LossAggregation::kDrGrpo,
                              LossAggregation::kSeqMeanNonempty}) {
    for (double beta : {0.0, 0.04}) {
      for (double dual : {0.0, 1.3}) {
        GrpoLossOptions o;
        o.aggregation = agg;
        o.beta = beta;
        o.dual_clip = dual;
        o.eps_high = 0.28;
        o.max_completion_length = 9;
        v.push_back(o);
      }
    }
  }
  return v;
}

TEST(GrpoLoss, GradientAccumulationEqualsFullBatch) {
  // Split 8 rows into micro-batches of 3, 3, 2 with the full batch's normaliser: the summed
  // micro-batch losses and accumulated gradients equal the full batch's, for every aggregation.
  RandomBatch x(8, 6, 7);
  for (const GrpoLossOptions& o : all_variants()) {
    torch::Tensor full_var = x.logp.clone().requires_grad_(true);
    torch::Tensor full = grpo_loss(full_var, x.old_logp, x.ref_logp, x.adv, x.mask, o).loss;
    full.backward();
    LossNormalizer norm;
    norm.num_rows = 8;
    norm.num_tokens = x.mask.sum().item<double>();
    norm.num_nonempty_rows = (x.mask.sum(1) > 0).sum().item<int64_t>();
    torch::Tensor acc_var = x.logp.clone().requires_grad_(true);
    double acc_loss = 0;
    for (auto [s, e] : std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 6}, {6, 8}}) {
      auto sl = [&](const torch::Tensor& t) { return t.slice(0, s, e); };
      torch::Tensor l = grpo_loss(sl(acc_var), sl(x.old_logp), sl(x.ref_logp), sl(x.adv), sl(x.mask), o, norm).loss;
      l.backward();
      acc_loss += l.item<double>();
    }
    EXPECT_NEAR(acc_loss, full.item<double>(), 1e-13) << loss_aggregation_name(o.aggregation);
    EXPECT_LT((acc_var.grad() - full_var.grad()).abs().max().item<double>(), 1e-13)
        << loss_aggregation_name(o.aggregation);
  }
}

TEST(GrpoLoss, FiniteDifferenceEveryVariant) {
  // Central differences (h = 1e-6, float64) against autograd on random inputs, for every
  // aggregation x KL on/off x dual clip on/off. Positions within 1e-4 of a clip boundary (a kink)
  // are skipped: there the one-sided derivatives differ.
  RandomBatch x(6, 5, 11);
  const double h = 1e-6;
  for (const GrpoLossOptions& o : all_variants()) {
    torch::Tensor var = x.logp.clone().requires_grad_(true);
    grpo_loss(var, x.old_logp, x.ref_logp, x.adv, x.mask, o).loss.backward();
    torch::Tensor ratio = torch::exp(x.logp - x.old_logp);
    int checked = 0;
    for (int64_t i = 0; i < 6; ++i) {
      for (int64_t t = 0; t < 5; ++t) {
        double r = ratio[i][t].item<double>();
        bool near_kink = std::fabs(r - 0.8) < 1e-4 || std::fabs(r - 1.28) < 1e-4 || std::fabs(r - 1.3) < 1e-4;
        if (near_kink) continue;
        torch::Tensor p = x.logp.clone(), m = x.logp.clone();
        p[i][t] += h;
        m[i][t] -= h;
        torch::NoGradGuard ng;
        double fd = (grpo_loss(p, x.old_logp, x.ref_logp, x.adv, x.mask, o).loss.item<double>() -
                     grpo_loss(m, x.old_logp, x.ref_logp, x.adv, x.mask, o).loss.item<double>()) / (2 * h);
        EXPECT_NEAR(fd, var.grad()[i][t].item<double>(), 1e-7) << loss_aggregation_name(o.aggregation);
        ++checked;
      }
    }
    EXPECT_GT(checked, 25);
  }
}

TEST(GrpoLoss, Float32AndBadShapes) {
  RandomBatch x(4, 3, 3);
  GrpoLossOptions o;
  o.beta = 0.04;
  auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
  GrpoLossOutput a = grpo_loss(f(x.logp), f(x.old_logp), f(x.ref_logp), f(x.adv), x.mask, o);
  GrpoLossOutput b = grpo_loss(x.logp, x.old_logp, x.ref_logp, x.adv, x.mask, o);
  EXPECT_EQ(a.loss.dtype(), torch::kFloat32);
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 1e-5);
  EXPECT_THROW(grpo_loss(x.logp, x.old_logp.slice(1, 0, 2), x.ref_logp, x.adv, x.mask, o), Error);
  EXPECT_THROW(grpo_loss(x.logp, x.old_logp, {}, x.adv, x.mask, o), Error);  // beta > 0 needs ref
  o.dual_clip = 0.5;
  EXPECT_THROW(grpo_loss(x.logp, x.old_logp, x.ref_logp, x.adv, x.mask, o), Error);
}

}  // namespace
}  // namespace r1kit::grpo
