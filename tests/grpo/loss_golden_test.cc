// Parity with the 26 golden GRPO cases in ../shared/fixtures/grpo/cases.json (independent
// float64 reference, see its README). Like llm.c's test_gpt2 we print the largest difference per
// field, and fail when any value is outside tol * max(1, |want|): tol 1e-9 in float64, 1e-5 in
// float32. A central-difference gradient check in float64 runs on every case as well.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "core/fs.h"
#include "core/json.h"
#include "grpo/advantages.h"
#include "grpo/loss.h"
#include "tests/test_util.h"

namespace r1kit::grpo {
namespace {

const char* kCases = "fixtures/grpo/cases.json";

torch::Tensor to_tensor(const json& j, torch::Dtype dtype) {
  std::vector<double> flat;
  std::vector<int64_t> shape;
  if (j.is_array() && !j.empty() && j[0].is_array()) {
    shape = {static_cast<int64_t>(j.size()), static_cast<int64_t>(j[0].size())};
    for (const auto& row : j)
      for (const auto& v : row) flat.push_back(v.get<double>());
  } else if (j.is_array()) {
    shape = {static_cast<int64_t>(j.size())};
    for (const auto& v : j) flat.push_back(v.get<double>());
  } else {
    return torch::tensor(j.get<double>(), torch::kFloat64).to(dtype);
  }
  return torch::tensor(flat, torch::kFloat64).reshape(shape).to(dtype);
}

struct CaseSetup {
  AdvantageOptions adv;
  GrpoLossOptions loss;
};

CaseSetup setup_from(const json& options) {
  CaseSetup s;
  s.adv.group_size = options.at("group_size").get<int64_t>();
  s.adv.scale = parse_advantage_scale(options.at("scale_rewards").get<std::string>());
  s.adv.eps = options.at("adv_eps").get<double>();
  s.loss.eps_low = options.at("eps_low").get<double>();
  s.loss.eps_high = options.at("eps_high").get<double>();
  s.loss.beta = options.at("beta").get<double>();
  s.loss.dual_clip = options.at("dual_clip").is_null() ? 0.0 : options.at("dual_clip").get<double>();
  s.loss.aggregation = parse_loss_aggregation(options.at("aggregation").get<std::string>());
  s.loss.max_completion_length = options.at("max_completion_length").get<int64_t>();
  return s;
}

// Largest |got - want| per field, and whether each value was within tol * max(1, |want|).
class Comparer {
 public:
  explicit Comparer(double tol) : tol_(tol) {}
  void tensor(const std::string& case_name, const std::string& field, const torch::Tensor& got, const json& want) {
    torch::Tensor w = to_tensor(want, torch::kFloat64);
    torch::Tensor g = got.detach().to(torch::kFloat64).reshape(w.sizes());
    torch::Tensor diff = (g - w).abs();
    torch::Tensor allowed = w.abs().clamp_min(1.0) * tol_;
    note(case_name, field, diff.max().item<double>(), (diff <= allowed).all().item<bool>());
  }
  void scalar(const std::string& case_name, const std::string& field, double got, double want) {
    double diff = std::fabs(got - want);
    note(case_name, field, diff, diff <= tol_ * std::max(1.0, std::fabs(want)));
  }
  void print(const char* title) const {
    std::printf("%s (tol %.0e): max |got - want| per field\n", title, tol_);
    for (const auto& [field, d] : max_diff_) std::printf("  %-34s %.3e\n", field.c_str(), d);
  }
  double max_of(const std::string& field) const { return max_diff_.at(field); }

 private:
  void note(const std::string& case_name, const std::string& field, double diff, bool ok) {
    double& m = max_diff_[field];
    m = std::max(m, diff);
    EXPECT_TRUE(ok) << case_name << ": " << field << " differs by " << diff << " (tol " << tol_ << ")";
  }
  double tol_;
  std::map<std::string, double> max_diff_;
};

void run_cases(torch::Dtype dtype, double tol, const char* title) {
  const std::string path = test::shared_path(kCases);
  json doc = parse_json(read_file(path), path);
  ASSERT_EQ(doc.at("cases").size(), 26u);
  Comparer cmp(tol);
  for (const json& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    const json& in = c.at("inputs");
    const json& want = c.at("expected");
    CaseSetup s = setup_from(c.at("options"));

    RewardGroupStats rstats;
    torch::Tensor adv = compute_advantages(to_tensor(in.at("rewards"), dtype), s.adv, &rstats);
    cmp.tensor(name, "advantages", adv, want.at("advantages"));
    cmp.tensor(name, "reward_stats.group_mean", rstats.group_mean, want.at("reward_stats").at("group_mean"));
    cmp.tensor(name, "reward_stats.group_std", rstats.group_std, want.at("reward_stats").at("group_std"));
    cmp.scalar(name, "reward_stats.batch_std", rstats.batch_std, want.at("reward_stats").at("batch_std").get<double>());

    torch::Tensor logp = to_tensor(in.at("logp"), dtype).requires_grad_(true);
    torch::Tensor old_logp = to_tensor(in.at("old_logp"), dtype);
    torch::Tensor ref_logp = to_tensor(in.at("ref_logp"), dtype);
    torch::Tensor mask = to_tensor(in.at("mask"), torch::kFloat64).to(torch::kBool);
    GrpoLossOutput out = grpo_loss(logp, old_logp, ref_logp, adv, mask, s.loss);
    out.loss.backward();

    cmp.tensor(name, "ratio", out.ratio, want.at("ratio"));
    cmp.tensor(name, "per_token_kl", out.per_token_kl, want.at("per_token_kl"));
    cmp.tensor(name, "per_token_loss", out.per_token_loss, want.at("per_token_loss"));
    cmp.scalar(name, "loss", out.loss.item<double>(), want.at("loss").get<double>());
    cmp.tensor(name, "grad_logp", logp.grad(), want.at("grad_logp"));
    // Masked positions must get exactly zero gradient.
    EXPECT_EQ(logp.grad().masked_select(~mask).abs().sum().item<double>(), 0.0) << name;

    const json& ws = want.at("stats");
    EXPECT_EQ(out.stats.num_tokens, ws.at("num_tokens").get<double>()) << name << ": num_tokens";
    for (const char* f : {"clip_low_frac", "clip_high_frac", "clip_region_frac", "dual_clip_frac", "kl_mean"}) {
      double got = 0;
      const std::string field = f;
      if (field == "clip_low_frac") got = out.stats.clip_low_frac;
      if (field == "clip_high_frac") got = out.stats.clip_high_frac;
      if (field == "clip_region_frac") got = out.stats.clip_region_frac;
      if (field == "dual_clip_frac") got = out.stats.dual_clip_frac;
      if (field == "kl_mean") got = out.stats.kl_mean;
      cmp.scalar(name, "stats." + field, got, ws.at(field).get<double>());
    }
    for (const auto& [agg_name, value] : want.at("loss_by_aggregation").items()) {
      torch::Tensor agg = aggregate_loss(out.per_token_loss.detach(), mask, parse_loss_aggregation(agg_name),
                                         s.loss.max_completion_length);
      cmp.scalar(name, "loss_by_aggregation." + agg_name, agg.item<double>(), value.get<double>());
    }
  }
  cmp.print(title);
}

TEST(GrpoGolden, AllCasesFloat64) {
  R1_REQUIRE_FILE(test::shared_path(kCases));
  run_cases(torch::kFloat64, 1e-9, "float64");
}

TEST(GrpoGolden, AllCasesFloat32) {
  R1_REQUIRE_FILE(test::shared_path(kCases));
  run_cases(torch::kFloat32, 1e-5, "float32");
}

// Central differences of the aggregated loss w.r.t. every unmasked logp, against autograd, for
// every case (each case is a variant: clip sides, dual clip, KL, scaling, aggregation, masks).
// The fixture keeps every ratio >= 1e-3 away from a clip boundary, so h = 1e-6 never crosses a kink.
TEST(GrpoGolden, FiniteDifferenceGradientEveryCase) {
  R1_REQUIRE_FILE(test::shared_path(kCases));
  const std::string path = test::shared_path(kCases);
  json doc = parse_json(read_file(path), path);
  double worst = 0;
  for (const json& c : doc.at("cases")) {
    const json& in = c.at("inputs");
    CaseSetup s = setup_from(c.at("options"));
    torch::Tensor adv = compute_advantages(to_tensor(in.at("rewards"), torch::kFloat64), s.adv);
    torch::Tensor logp = to_tensor(in.at("logp"), torch::kFloat64);
    torch::Tensor old_logp = to_tensor(in.at("old_logp"), torch::kFloat64);
    torch::Tensor ref_logp = to_tensor(in.at("ref_logp"), torch::kFloat64);
    torch::Tensor mask = to_tensor(in.at("mask"), torch::kFloat64).to(torch::kBool);
    torch::Tensor var = logp.clone().requires_grad_(true);
    grpo_loss(var, old_logp, ref_logp, adv, mask, s.loss).loss.backward();
    torch::Tensor grad = var.grad();
    const double h = 1e-6;
    auto loss_at = [&](const torch::Tensor& lp) {
      torch::NoGradGuard ng;
      return grpo_loss(lp, old_logp, ref_logp, adv, mask, s.loss).loss.item<double>();
    };
    for (int64_t i = 0; i < logp.size(0); ++i) {
      for (int64_t t = 0; t < logp.size(1); ++t) {
        torch::Tensor plus = logp.clone(), minus = logp.clone();
        plus[i][t] += h;
        minus[i][t] -= h;
        double fd = (loss_at(plus) - loss_at(minus)) / (2 * h);
        double ad = grad[i][t].item<double>();
        worst = std::max(worst, std::fabs(fd - ad));
        EXPECT_NEAR(fd, ad, 1e-7 * std::max(1.0, std::fabs(ad))) << c.at("name") << " [" << i << "][" << t << "]";
      }
    }
  }
  std::printf("finite differences vs autograd, all cases: max |diff| %.3e\n", worst);
}

}  // namespace
}  // namespace r1kit::grpo
