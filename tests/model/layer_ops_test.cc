// The decoder's kernel choices (model/layer_ops.h) and the forwards built on them: oneDNN linear
// and oneDNN-sgemm linear forward and gradients against float64, the native decode path against the
// reference path, fused q|k|v and gate|up parameters (names, values, HF save/load and optimizer updates
// unchanged; Module::to unfuses safely), and the shared-prefix training forward against the
// forward of the concatenated rows (values and gradients).
#include "model/layer_ops.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>

#include "model/autocast.h"
#include "model/checkpoint.h"
#include "model/sgemm_linear.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

Transformer random_model(const ModelConfig& cfg, uint64_t seed = 0) {
  torch::manual_seed(seed);
  Transformer m(cfg);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) {
    if (p.dim() == 1) p.normal_(1.0, 0.3);
    else p.normal_(0.0, 1.2 / std::sqrt(double(p.size(1))));
  }
  return m;
}

// linear(x, w, b, kernels) and its gradients against the float64 ATen formula (x [3, 7, 19], odd
// sizes: no multiple of any vector width); then a layer without bias whose input needs no gradient.
// Returns that layer's weight for further checks.
torch::Tensor expect_linear_matches_float64(Kernels kernels, const char* label, const torch::Tensor& x_in) {
  auto x = x_in.detach().requires_grad_();
  auto w = torch::randn({11, 19}, torch::requires_grad());
  auto b = torch::randn({11}, torch::requires_grad());
  auto up = torch::randn({3, 7, 11});
  auto y = linear(x, w, b, kernels);
  (y * up).sum().backward();
  auto xd = x.detach().to(torch::kFloat64).requires_grad_(), wd = w.detach().to(torch::kFloat64).requires_grad_(),
       bd = b.detach().to(torch::kFloat64).requires_grad_();
  auto yd = torch::nn::functional::linear(xd, wd, bd);
  (yd * up.to(torch::kFloat64)).sum().backward();
  const double dy = max_abs_diff(y, yd), dx = max_abs_diff(x.grad(), xd.grad()), dw = max_abs_diff(w.grad(), wd.grad()),
               db = max_abs_diff(b.grad(), bd.grad());
  std::printf("%s linear vs float64: y %.3g  dx %.3g  dw %.3g  db %.3g\n", label, dy, dx, dw, db);
  EXPECT_LT(std::max({dy, dx, dw, db}), 1e-4);
  EXPECT_EQ(y.sizes(), yd.sizes());
  auto w2 = torch::randn({4, 19}, torch::requires_grad());
  linear(x.detach(), w2, {}, kernels).sum().backward();
  EXPECT_LT(max_abs_diff(w2.grad(), x.detach().reshape({-1, 19}).sum(0).expand({4, 19})), 1e-4);
  return w2;
}

TEST(LayerOps, OneDnnLinearForwardAndGradientsMatchFloat64) {
  if (!at::hasMKLDNN()) GTEST_SKIP() << "LibTorch built without oneDNN";
  torch::manual_seed(5);
  expect_linear_matches_float64(Kernels::kOneDnn, "oneDNN", torch::randn({3, 7, 19}));
}

TEST(LayerOps, SgemmLinearForwardAndGradientsMatchFloat64) {
  if (!sgemm_linear_available()) GTEST_SKIP() << "this LibTorch keeps oneDNN's dnnl_sgemm private";
  EXPECT_EQ(cpu_training_kernels(), Kernels::kSgemm) << "OpenBLAS with dnnl_sgemm: the trainers take kSgemm";
  torch::manual_seed(6);
  const auto x = torch::randn({7, 3, 19}).transpose(0, 1);  // not contiguous
  const auto w2 = expect_linear_matches_float64(Kernels::kSgemm, "sgemm", x);
  // The no-grad forward gives the same bits as the one autograd records.
  const auto grad_forward = linear(x, w2, {}, Kernels::kSgemm);
  EXPECT_TRUE(grad_forward.requires_grad());
  {
    torch::NoGradGuard g;
    EXPECT_TRUE(torch::equal(linear(x, w2, {}, Kernels::kSgemm), grad_forward.detach()));
  }
  // Empty input: ATen's answer; a float64 input falls back to ATen as well.
  EXPECT_EQ(linear(torch::zeros({0, 19}), w2, {}, Kernels::kSgemm).sizes(), torch::IntArrayRef({0, 4}));
  EXPECT_EQ(linear(x.to(torch::kFloat64), w2.detach().to(torch::kFloat64), {}, Kernels::kSgemm).scalar_type(),
            torch::kFloat64);
}

// r1kit's kernels split work with at::parallel_for, a header template that runs everything on the
// calling thread unless the including file is compiled with OpenMP (CMakeLists.txt gives every target
// -fopenmp; without it 2-thread decode gained nothing). This file is built with the same flags.
TEST(LayerOps, ParallelForUsesEveryThread) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  std::atomic<unsigned> seen{0};
  at::parallel_for(0, 64, 1, [&](int64_t, int64_t) { seen |= 1u << at::get_thread_num(); });
  at::set_num_threads(before);
  EXPECT_EQ(seen.load(), 3u) << "at::parallel_for ran on one thread: this build lacks -fopenmp";
}

TEST(LayerOps, NativeOpsFallBackWhenAutogradRecords) {
  auto x = torch::randn({2, 5});
  auto w = torch::randn({3, 5}, torch::requires_grad());
  EXPECT_FALSE(native_applies({&x, &w}));
  auto y = linear(x, w, {}, Kernels::kNative);  // the ATen path, differentiable
  EXPECT_TRUE(y.requires_grad());
  torch::NoGradGuard g;
  EXPECT_TRUE(native_applies({&x, &w}));
  EXPECT_LT(max_abs_diff(linear(x, w, {}, Kernels::kNative), torch::nn::functional::linear(x, w)), 1e-5);
}

TEST(FusedProjections, KeepNamesValuesCheckpointsAndOptimizerUpdates) {
  const ModelConfig cfg = tiny_config("qwen2", /*tied=*/true, 2);
  Transformer m = random_model(cfg, 1);
  Transformer ref = random_model(cfg, 1);
  auto ids = torch::randint(cfg.vocab_size, {2, 9}, torch::kLong);
  auto pos = torch::arange(9, torch::kLong).unsqueeze(0).expand({2, 9});
  const auto before = hf_state_dict(m);
  std::vector<std::string> names_before;
  for (const auto& [n, t] : before) names_before.push_back(n);

  m->fuse_projections();
  const auto after = hf_state_dict(m);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].first, names_before[i]);
    EXPECT_TRUE(torch::equal(after[i].second, hf_state_dict(ref)[i].second)) << after[i].first;
  }
  auto& attn = *m->layers->ptr<DecoderLayerImpl>(0)->self_attn;
  EXPECT_EQ(static_cast<char*>(attn.k_proj->weight.data_ptr()),
            static_cast<char*>(attn.q_proj->weight.data_ptr()) + attn.q_proj->weight.nbytes())
      << "k_proj rows follow q_proj rows in one tensor";
  // Uncached forward: unchanged bits. Cached decode: same as the reference model's.
  EXPECT_TRUE(torch::equal(m->forward(ids, pos), ref->forward(ids, pos)));
  {
    torch::NoGradGuard g;
    KvCache c1(cfg, 2, 16, torch::kFloat32, torch::kCPU), c2(cfg, 2, 16, torch::kFloat32, torch::kCPU);
    EXPECT_LT(max_abs_diff(m->forward(ids, pos, &c1), ref->forward(ids, pos, &c2)), 1e-5);
  }
  // Save -> load: bit-identical HF tensors.
  const std::string dir = fresh_dir("fused_save");
  save_model(m, cfg, dir);
  Transformer loaded = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  const auto reloaded = hf_state_dict(loaded);
  for (size_t i = 0; i < reloaded.size(); ++i) EXPECT_TRUE(torch::equal(reloaded[i].second, after[i].second));
  // An optimizer step updates the parameters in place: the fused tensor follows.
  torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.1));
  m->forward(ids, pos).sum().backward();
  opt.step();
  auto qkv_rows = torch::cat({attn.q_proj->weight, attn.k_proj->weight, attn.v_proj->weight}).detach().clone();
  m->fuse_projections();  // valid already: must not copy stale values back
  EXPECT_TRUE(torch::equal(torch::cat({attn.q_proj->weight, attn.k_proj->weight, attn.v_proj->weight}), qkv_rows));
  {
    torch::NoGradGuard g;
    KvCache c1(cfg, 2, 16, torch::kFloat32, torch::kCPU);
    const auto decoded = m->forward(ids, pos, &c1);
    const auto reference = m->forward(ids, pos);
    // Relative to the logits' size: after the step they reach the hundreds, where float32 rounding
    // alone (OpenBLAS's kernels differ by CPU) is ~1e-4. Stale weights would be off by far more.
    EXPECT_LT(max_abs_diff(decoded, reference) / reference.abs().max().item<double>(), 1e-6)
        << "decode reads the updated fused weights (max |logit| " << reference.abs().max().item<double>() << ")";
  }
  // Module::to() gives parameters new storage: the fused path is no longer used, results still right.
  m->to(torch::kFloat64);
  m->to(torch::kFloat32);
  torch::NoGradGuard g;
  KvCache c3(cfg, 2, 16, torch::kFloat32, torch::kCPU);
  const auto reference = m->forward(ids, pos);
  EXPECT_LT(max_abs_diff(m->forward(ids, pos, &c3), reference) / reference.abs().max().item<double>(), 1e-6);
}

// Two prompts of different lengths (4 and 2 real tokens: the second is padded) with G = 3
// completions each, as forward_shared_prefix takes them.
struct PrefixBatch {
  std::vector<std::vector<int64_t>> prompts = {{5, 9, 2, 7}, {11, 3}};
  std::vector<std::vector<int64_t>> completions = {{1, 2, 3}, {4}, {6, 8, 10}, {12, 13}, {14}, {15, 16, 17}};
  int64_t G = 3, P = 2, Tp = 4, Tc = 3;
  torch::Tensor prompt_ids = torch::zeros({P, Tp}, torch::kLong), comp_ids = torch::zeros({P * G, Tc}, torch::kLong);
  std::vector<int64_t> lens;
  PrefixBatch() {
    for (int64_t p = 0; p < P; ++p) {
      lens.push_back(int64_t(prompts[p].size()));
      for (size_t t = 0; t < prompts[p].size(); ++t) prompt_ids[p][t] = prompts[p][t];
    }
    for (int64_t r = 0; r < P * G; ++r)
      for (size_t t = 0; t < completions[r].size(); ++t) comp_ids[r][t] = completions[r][t];
  }
  // Prompt and completion of row r as one sequence.
  std::vector<int64_t> row(int64_t r) const {
    std::vector<int64_t> ids = prompts[r / G];
    ids.insert(ids.end(), completions[r].begin(), completions[r].end());
    return ids;
  }
};

// Max |diff| between forward_shared_prefix's hidden states and each prompt + completion row run
// through forward_hidden on its own (real positions only; pads are not compared).
double shared_prefix_hidden_diff(Transformer& m, const PrefixBatch& b) {
  const SharedPrefixHidden shared = m->forward_shared_prefix(b.prompt_ids, b.lens, b.comp_ids, b.G);
  double dh = 0;
  for (int64_t r = 0; r < b.P * b.G; ++r) {
    const int64_t p = r / b.G, T = int64_t(b.row(r).size()), C = int64_t(b.completions[r].size());
    auto h = m->forward_hidden(torch::tensor(b.row(r)).view({1, T}), torch::arange(T).view({1, T}));
    dh = std::max(dh, max_abs_diff(h[0].narrow(0, b.lens[p], C), shared.completion[r].narrow(0, 0, C)));
    dh = std::max(dh, max_abs_diff(h[0].narrow(0, 0, b.lens[p]), shared.prompt[p].narrow(0, 0, b.lens[p])));
  }
  return dh;
}

class SharedPrefix : public testing::TestWithParam<Kernels> {};

TEST_P(SharedPrefix, EqualsForwardOfConcatenatedRowsWithGradients) {
  const ModelConfig cfg = tiny_config("qwen2", false, 2);
  Transformer m = random_model(cfg, 2);
  m->set_kernels(GetParam());
  const PrefixBatch b;
  const int64_t G = b.G, P = b.P;
  const auto& completions = b.completions;
  const auto& lens = b.lens;
  const double dh = shared_prefix_hidden_diff(m, b);
  std::printf("shared-prefix vs per-row forward: hidden max|diff| %.3g\n", dh);
  EXPECT_LT(dh, 1e-4);

  // Gradients of a loss on the real completion positions.
  auto masked = m->forward_shared_prefix(b.prompt_ids, lens, b.comp_ids, G);
  torch::Tensor l1 = torch::zeros({});
  for (int64_t r = 0; r < P * G; ++r) l1 = l1 + masked.completion[r].narrow(0, 0, int64_t(completions[r].size())).pow(2).sum();
  l1.backward();
  std::vector<torch::Tensor> g1;
  for (auto& prm : m->parameters()) {
    g1.push_back(prm.grad().defined() ? prm.grad().clone() : torch::zeros_like(prm));
    if (prm.grad().defined()) prm.mutable_grad().zero_();
  }
  torch::Tensor l2 = torch::zeros({});
  for (int64_t r = 0; r < P * G; ++r) {
    const int64_t p = r / G;
    const std::vector<int64_t> row = b.row(r);
    const int64_t T = int64_t(row.size()), C = int64_t(completions[r].size());
    l2 = l2 + m->forward_hidden(torch::tensor(row).view({1, T}), torch::arange(T).view({1, T}))[0]
                  .narrow(0, lens[p], C).pow(2).sum();
  }
  l2.backward();
  double dg = 0;
  size_t i = 0;
  for (auto& prm : m->parameters()) {
    const torch::Tensor g2 = prm.grad().defined() ? prm.grad() : torch::zeros_like(prm);
    dg = std::max(dg, max_abs_diff(g1[i++], g2) / (1 + g2.abs().max().item<double>()));
  }
  std::printf("shared-prefix vs per-row forward: gradient max relative |diff| %.3g\n", dg);
  EXPECT_LT(dg, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Kernels, SharedPrefix, testing::Values(Kernels::kAten, Kernels::kOneDnn, Kernels::kSgemm));

// The same comparison where SDPA (LibTorch 2.x) or the masked matmuls (1.13) run in bfloat16:
// bfloat16 weights, and float32 weights under autocast. Each against the per-row forward in the
// same precision.
TEST(SharedPrefix, Bfloat16WeightsAndAutocastMatchThePerRowForward) {
  const ModelConfig cfg = tiny_config("qwen2", false, 2);
  const PrefixBatch b;
  torch::NoGradGuard no_grad;
  for (const bool autocast : {false, true}) {
    Transformer m = random_model(cfg, 2);
    if (autocast) {
      ComputeOptions co;
      co.autocast = true;
      m->set_compute_options(co);
    } else {
      m->to(torch::kBFloat16);
    }
    const double dh = shared_prefix_hidden_diff(m, b);
    std::printf("%s: shared-prefix vs per-row forward: hidden max|diff| %.3g\n",
                autocast ? "autocast bf16" : "bf16 weights", dh);
    EXPECT_LT(dh, 0.1);  // bf16 rounding of hidden states of magnitude ~1-4; a wrong mask moves them by ~1
  }
}

// One mask per prompt; its additive form is made once, in the asked dtype, in the grouped-heads
// layout (each of the R query heads of a KV head sees the prompt's mask), with rows of keys padded
// to a multiple of 16.
TEST(PrefixMask, AdditiveFormIsMadeOnceWithAlignedRows) {
  const auto per_prompt = torch::rand({2, 3, 5}) > 0.5;  // [P,Tc,L]
  const PrefixMask mask(per_prompt, 2);
  const auto allowed = per_prompt.unsqueeze(1).expand({2, 2, 3, 5}).reshape({2, 1, 6, 5});  // [P,1,R*Tc,L]
  const torch::Tensor f = mask.bias(torch::kFloat32);
  ASSERT_EQ(f.sizes(), allowed.sizes());
  EXPECT_EQ(f.stride(2) % 16, 0);
  EXPECT_TRUE(torch::equal(f.eq(0), allowed));
  EXPECT_TRUE(torch::equal(f.isneginf(), allowed.logical_not()));
  EXPECT_EQ(mask.bias(torch::kFloat32).data_ptr(), f.data_ptr());  // the same tensor for every layer
  const torch::Tensor h = mask.bias(torch::kBFloat16);
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(h.to(torch::kFloat32), f));
}

}  // namespace
