// GSPO and CISPO (grpo/loss.h) against tests/data/grpo/loss_variants.json, written by the independent
// float64 PyTorch reference tests/reference/gen_loss_variants.py (GSPO in its sequence form, CISPO
// with a hand-derived gradient). Prints the largest difference per field; tol * max(1, |want|) with
// tol 1e-9 in float64 and 1e-5 in float32.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "grpo/loss.h"
#include "tests/test_util.h"

namespace r1kit::grpo {
namespace {

torch::Tensor to_tensor(const json& j, torch::Dtype dtype) {
  std::vector<double> flat;
  std::vector<int64_t> shape{static_cast<int64_t>(j.size())};
  if (!j.empty() && j[0].is_array()) {
    shape.push_back(static_cast<int64_t>(j[0].size()));
    for (const auto& row : j)
      for (const auto& v : row) flat.push_back(v.get<double>());
  } else {
    for (const auto& v : j) flat.push_back(v.get<double>());
  }
  return torch::tensor(flat, torch::kFloat64).reshape(shape).to(dtype);
}

GrpoLossOptions options_from(const json& o) {
  GrpoLossOptions opt;
  opt.policy_loss = parse_policy_loss(o.at("policy_loss").get<std::string>());
  opt.aggregation = parse_loss_aggregation(o.at("aggregation").get<std::string>());
  opt.eps_low = o.at("eps_low").get<double>();
  opt.eps_high = o.at("eps_high").get<double>();
  opt.beta = o.at("beta").get<double>();
  opt.dual_clip = o.at("dual_clip").get<double>();
  opt.max_completion_length = o.at("max_completion_length").get<int64_t>();
  return opt;
}

void run_cases(torch::Dtype dtype, double tol, const char* title) {
  const std::string path = test::test_data_path("grpo/loss_variants.json");
  json doc = parse_json(read_file(path), path);
  ASSERT_EQ(doc.at("cases").size(), 9u);
  std::map<std::string, double> worst;
  auto check = [&](const std::string& name, const std::string& field, const torch::Tensor& got, const json& want) {
    torch::Tensor w = want.is_number() ? torch::tensor(want.get<double>(), torch::kFloat64) : to_tensor(want, torch::kFloat64);
    torch::Tensor diff = (got.detach().to(torch::kFloat64).reshape(w.sizes()) - w).abs();
    worst[field] = std::max(worst[field], diff.max().item<double>());
    EXPECT_TRUE((diff <= w.abs().clamp_min(1.0) * tol).all().item<bool>())
        << name << ": " << field << " differs by " << diff.max().item<double>();
  };
  for (const json& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    const json& in = c.at("inputs");
    const json& want = c.at("expected");
    torch::Tensor logp = to_tensor(in.at("logp"), dtype).requires_grad_(true);
    torch::Tensor mask = to_tensor(in.at("mask"), torch::kFloat64).to(torch::kBool);
    GrpoLossOutput out = grpo_loss(logp, to_tensor(in.at("old_logp"), dtype), to_tensor(in.at("ref_logp"), dtype),
                                   to_tensor(in.at("advantages"), dtype), mask, options_from(c.at("options")));
    out.loss.backward();
    check(name, "loss", out.loss, want.at("loss"));
    check(name, "per_token_loss", out.per_token_loss, want.at("per_token_loss"));
    check(name, "ratio", out.ratio, want.at("ratio"));
    check(name, "grad_logp", logp.grad(), want.at("grad_logp"));
    EXPECT_EQ(logp.grad().masked_select(~mask).abs().sum().item<double>(), 0.0) << name;
    const json& ws = want.at("stats");
    EXPECT_EQ(out.stats.num_tokens, ws.at("num_tokens").get<double>()) << name;
    check(name, "stats.clip_low_frac", torch::tensor(out.stats.clip_low_frac, torch::kFloat64), ws.at("clip_low_frac"));
    check(name, "stats.clip_high_frac", torch::tensor(out.stats.clip_high_frac, torch::kFloat64), ws.at("clip_high_frac"));
    check(name, "stats.kl_mean", torch::tensor(out.stats.kl_mean, torch::kFloat64), ws.at("kl_mean"));
  }
  std::printf("%s (tol %.0e): max |got - want| per field\n", title, tol);
  for (const auto& [field, d] : worst) std::printf("  %-24s %.3e\n", field.c_str(), d);
}

TEST(LossVariantsGolden, Float64) { run_cases(torch::kFloat64, 1e-9, "gspo/cispo float64"); }
TEST(LossVariantsGolden, Float32) { run_cases(torch::kFloat32, 1e-5, "gspo/cispo float32"); }

// With one token per row the GSPO sequence ratio is the token ratio: GSPO equals PPO exactly.
TEST(LossVariants, GspoEqualsPpoForOneTokenRows) {
  torch::manual_seed(3);
  torch::Tensor logp = -torch::rand({6, 1}, torch::kFloat64) * 2;
  torch::Tensor old = logp + (torch::rand({6, 1}, torch::kFloat64) - 0.5);
  torch::Tensor adv = torch::randn({6}, torch::kFloat64);
  torch::Tensor mask = torch::ones({6, 1}, torch::kBool);
  GrpoLossOptions ppo, gspo;
  gspo.policy_loss = PolicyLoss::kGspo;
  torch::Tensor a = logp.clone().requires_grad_(true), b = logp.clone().requires_grad_(true);
  grpo_loss(a, old, {}, adv, mask, ppo).loss.backward();
  grpo_loss(b, old, {}, adv, mask, gspo).loss.backward();
  double d = (a.grad() - b.grad()).abs().max().item<double>();
  std::printf("gspo vs ppo, one-token rows: max |grad diff| %.3e\n", d);
  EXPECT_LT(d, 1e-15);
}

TEST(LossVariants, BadOptionsAreErrors) {
  torch::Tensor x = torch::zeros({2, 3});
  torch::Tensor adv = torch::zeros({2});
  torch::Tensor mask = torch::ones({2, 3}, torch::kBool);
  GrpoLossOptions o;
  o.policy_loss = PolicyLoss::kCispo;
  o.dual_clip = 3.0;
  EXPECT_THROW(grpo_loss(x, x, {}, adv, mask, o), Error);
  o.dual_clip = 0;
  o.eps_low = 1.0;  // cispo: no floor is allowed
  EXPECT_NO_THROW(grpo_loss(x, x, {}, adv, mask, o));
  o.policy_loss = PolicyLoss::kPpo;  // ppo: a floor of 0 is not
  EXPECT_THROW(grpo_loss(x, x, {}, adv, mask, o), Error);
  EXPECT_THROW(parse_policy_loss("gpso"), Error);
  EXPECT_EQ(parse_policy_loss("cispo"), PolicyLoss::kCispo);
  EXPECT_STREQ(policy_loss_name(PolicyLoss::kGspo), "gspo");
}

}  // namespace
}  // namespace r1kit::grpo
