// KD divergences against an independent float64 PyTorch reference (tests/reference/gen_kd_goldens.py
// -> tests/data/distill/kd_goldens.json): per-row values, the masked mean and its gradient with
// respect to the student logits, for every loss x temperature x top-k case; plus hand-derived
// two-token cases and the identities KL(p||p) = 0 and JSD(beta) symmetry.
#include "distill/kd_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "tests/test_util.h"

using namespace r1kit;
using distill::KdOptions;
using distill::kd_divergence;

namespace {

torch::Tensor matrix(const json& rows) {
  std::vector<double> flat;
  for (const auto& r : rows)
    for (const auto& v : r) flat.push_back(v.get<double>());
  return torch::tensor(flat, torch::kFloat64).reshape({static_cast<int64_t>(rows.size()), -1});
}

}  // namespace

TEST(KdLoss, MatchesFloat64PyTorchReferenceIncludingGradients) {
  const std::string path = test::test_data_path("distill/kd_goldens.json");
  const json g = parse_json(read_file(path), path);
  ASSERT_EQ(g.at("magic"), "r1kit-kd-goldens");
  const torch::Tensor student = matrix(g.at("student_logits")), teacher = matrix(g.at("teacher_logits"));
  std::vector<double> mask_v;
  for (const auto& m : g.at("mask")) mask_v.push_back(m.get<double>());
  const torch::Tensor mask = torch::tensor(mask_v, torch::kFloat64);
  double max_row = 0, max_value = 0, max_grad = 0;
  for (const auto& c : g.at("cases")) {
    KdOptions o;
    o.loss = c.at("loss");
    o.beta = c.at("beta");
    o.temperature = c.at("temperature");
    o.top_k = c.at("top_k");
    const torch::Tensor zs = student.clone().requires_grad_(true);
    const torch::Tensor rows = kd_divergence(zs, teacher, o);
    const torch::Tensor value = (rows * mask).sum() / mask.sum();
    value.backward();
    const std::string label = o.loss + " beta=" + std::to_string(o.beta) + " T=" + std::to_string(o.temperature) +
                              " top_k=" + std::to_string(o.top_k);
    const double d_row = (rows.detach() - torch::tensor(c.at("rows").get<std::vector<double>>(), torch::kFloat64))
                             .abs().max().item<double>();
    const double d_value = std::abs(value.item<double>() - c.at("value").get<double>());
    const double d_grad = (zs.grad() - matrix(c.at("grad"))).abs().max().item<double>();
    EXPECT_LE(d_row, 1e-6) << label;
    EXPECT_LE(d_value, 1e-6) << label;
    EXPECT_LE(d_grad, 1e-6) << label;
    max_row = std::max(max_row, d_row);
    max_value = std::max(max_value, d_value);
    max_grad = std::max(max_grad, d_grad);
  }
  std::printf("KD vs float64 PyTorch reference over %zu cases: max |diff| rows %.3g, loss %.3g, gradient %.3g\n",
              g.at("cases").size(), max_row, max_value, max_grad);
}

TEST(KdLoss, HandDerivedTwoTokenCases) {
  // Student logits (0, 0): p_S = (1/2, 1/2). Teacher logits (log 3, 0): p_T = (3/4, 1/4).
  const torch::Tensor zs = torch::zeros({1, 2}, torch::kFloat64);
  const torch::Tensor zt = torch::tensor({std::log(3.0), 0.0}, torch::kFloat64).reshape({1, 2});
  KdOptions o;
  o.loss = "forward_kl";  // 3/4 log(3/2) + 1/4 log(1/2)
  EXPECT_NEAR(kd_divergence(zs, zt, o).item<double>(), 0.75 * std::log(1.5) + 0.25 * std::log(0.5), 1e-15);
  o.loss = "reverse_kl";  // 1/2 log(2/3) + 1/2 log(2)
  EXPECT_NEAR(kd_divergence(zs, zt, o).item<double>(), 0.5 * std::log(2.0 / 3.0) + 0.5 * std::log(2.0), 1e-15);
  o.loss = "jsd";  // beta 1/2: M = (5/8, 3/8)
  const double kl_t = 0.75 * std::log(0.75 / 0.625) + 0.25 * std::log(0.25 / 0.375);
  const double kl_s = 0.5 * std::log(0.5 / 0.625) + 0.5 * std::log(0.5 / 0.375);
  EXPECT_NEAR(kd_divergence(zs, zt, o).item<double>(), 0.5 * kl_t + 0.5 * kl_s, 1e-15);
  // Temperature 2 on the teacher logits (log 3, 0): p_T = (sqrt3, 1) / (sqrt3 + 1).
  o.loss = "forward_kl";
  o.temperature = 2.0;
  const double a = std::sqrt(3.0) / (std::sqrt(3.0) + 1), b = 1 - a;
  EXPECT_NEAR(kd_divergence(zs, zt, o).item<double>(), a * std::log(2 * a) + b * std::log(2 * b), 1e-15);
  // Gradient of forward KL w.r.t. student logits at T=1 is p_S - p_T = (-1/4, 1/4).
  o.temperature = 1.0;
  const torch::Tensor z = zs.clone().requires_grad_(true);
  kd_divergence(z, zt, o).sum().backward();
  EXPECT_NEAR(z.grad()[0][0].item<double>(), -0.25, 1e-15);
  EXPECT_NEAR(z.grad()[0][1].item<double>(), 0.25, 1e-15);
}

TEST(KdLoss, IdentitiesAndSymmetry) {
  torch::manual_seed(3);
  const torch::Tensor a = torch::randn({5, 17}, torch::kFloat64), b = torch::randn({5, 17}, torch::kFloat64);
  for (const char* loss : {"forward_kl", "reverse_kl", "jsd"}) {
    KdOptions o;
    o.loss = loss;
    EXPECT_LE(kd_divergence(a, a, o).abs().max().item<double>(), 1e-14) << loss;
    EXPECT_GT(kd_divergence(a, b, o).min().item<double>(), 0) << loss;
  }
  // JSD(beta)(S, T) == JSD(1 - beta)(T, S); forward KL(S; T) == reverse KL(T; S).
  KdOptions j;
  j.loss = "jsd";
  j.beta = 0.3;
  KdOptions j2 = j;
  j2.beta = 0.7;
  EXPECT_LE((kd_divergence(a, b, j) - kd_divergence(b, a, j2)).abs().max().item<double>(), 1e-14);
  KdOptions f, r;
  f.loss = "forward_kl";
  r.loss = "reverse_kl";
  EXPECT_LE((kd_divergence(a, b, f) - kd_divergence(b, a, r)).abs().max().item<double>(), 1e-14);
  // float32 inputs stay float32 and agree with float64 to float precision.
  const torch::Tensor d32 = kd_divergence(a.to(torch::kFloat32), b.to(torch::kFloat32), j);
  EXPECT_EQ(d32.scalar_type(), torch::kFloat32);
  EXPECT_LE((d32.to(torch::kFloat64) - kd_divergence(a, b, j)).abs().max().item<double>(), 1e-5);
}

TEST(KdLoss, BadInputIsAnErrorNamingTheProblem) {
  const torch::Tensor a = torch::zeros({2, 5}), b = torch::zeros({2, 6});
  KdOptions o;
  try {
    kd_divergence(a, b, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("share a vocabulary"), std::string::npos) << e.what();
  }
  o.loss = "kl";
  EXPECT_THROW(kd_divergence(a, a, o), Error);
  o.loss = "jsd";
  o.beta = 1.5;
  EXPECT_THROW(kd_divergence(a, a, o), Error);
}
