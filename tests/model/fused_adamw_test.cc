// FusedAdamW (model/fused_adamw.h) against torch::optim::AdamW, the independent reference: the same
// parameters, gradients and options must give bit-identical parameters and moments after every
// step, for every instruction set's kernel, sizes with and without a partial last vector, with and
// without weight decay; state saved by one loads into the other; what it cannot fuse takes AdamW's
// own step.
#include "model/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cmath>
#include <sstream>
#include <vector>

#include "model/cpu_kernels.h"

namespace r1kit {
namespace {

// Element counts: one lane, partial and whole vectors of every width, several parallel chunks.
const std::vector<int64_t> kSizes = {1, 3, 15, 16, 17, 100, 1000, 4099, 70001};

std::vector<torch::Tensor> fresh_params(int64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> ps;
  for (int64_t n : kSizes) ps.push_back((torch::randn({n}) * 0.1).requires_grad_(true));
  ps.push_back((torch::randn({37, 19}) * 0.1).requires_grad_(true));  // 2-D
  return ps;
}

// Gradients of varied magnitude (tiny ones make eps matter), fresh each step.
void set_grads(std::vector<torch::Tensor>& ps, int64_t step) {
  torch::manual_seed(1000 + step);
  for (auto& p : ps) {
    auto g = torch::randn(p.sizes()) * torch::pow(10.0, torch::randint(-9, 2, p.sizes()).to(torch::kFloat32));
    p.mutable_grad() = g;
  }
}

double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

bool all_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

std::vector<torch::Tensor> moments(torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& ps, bool second) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) {
#if TORCH_VERSION_MAJOR >= 2
    auto& s = opt.state().at(p.unsafeGetTensorImpl());
#else
    auto& s = opt.state().at(c10::guts::to_string(p.unsafeGetTensorImpl()));
#endif
    auto& st = static_cast<torch::optim::AdamWParamState&>(*s);
    out.push_back(second ? st.exp_avg_sq() : st.exp_avg());
  }
  return out;
}

void compare_with_torch(double weight_decay) {
  auto opts = torch::optim::AdamWOptions(2e-3).betas(std::make_tuple(0.9, 0.99)).eps(1e-8).weight_decay(weight_decay);
  auto ref = fresh_params(7), mine = fresh_params(7);
  torch::optim::AdamW ref_opt(ref, opts);
  FusedAdamW fused_opt(mine, opts);
  for (int64_t step = 0; step < 6; ++step) {
    set_grads(ref, step);
    set_grads(mine, step);
#if TORCH_VERSION_MAJOR < 2
    ASSERT_TRUE(fused_opt.fused());
#endif
    ref_opt.step();
    fused_opt.step();
    const double dp = max_diff(ref, mine);
    const double dm = max_diff(moments(ref_opt, ref, false), moments(fused_opt, mine, false));
    const double dv = max_diff(moments(ref_opt, ref, true), moments(fused_opt, mine, true));
    std::printf("  %s wd %.2g step %lld: max diff params %.3e exp_avg %.3e exp_avg_sq %.3e\n",
                cpu::kernels().isa, weight_decay, (long long)step + 1, dp, dm, dv);
    EXPECT_TRUE(all_equal(ref, mine)) << "step " << step + 1;
    EXPECT_TRUE(all_equal(moments(ref_opt, ref, false), moments(fused_opt, mine, false)));
    EXPECT_TRUE(all_equal(moments(ref_opt, ref, true), moments(fused_opt, mine, true)));
  }
}

TEST(FusedAdamW, BitIdenticalToTorchAdamW) { compare_with_torch(0.0); }

TEST(FusedAdamW, BitIdenticalToTorchAdamWWithWeightDecay) { compare_with_torch(0.1); }

// Every instruction set's kernel (FusedAdamW uses the one chosen for this CPU) against AdamW on
// the same tensors, over several steps.
TEST(FusedAdamW, EveryInstructionSetMatchesTorch) {
#if TORCH_VERSION_MAJOR >= 2
  GTEST_SKIP() << "LibTorch 2.x: FusedAdamW takes AdamW's own step (its parameter update rounds differently)";
#endif
  auto opts = torch::optim::AdamWOptions(2e-3).betas(std::make_tuple(0.9, 0.99)).eps(1e-8).weight_decay(0.05);
  for (const char* isa : {"avx512", "avx2", "generic"}) {
    const cpu::KernelTable* table = cpu::kernels_for(isa);
    if (table == nullptr) {
      std::printf("  %s: not on this CPU\n", isa);
      continue;
    }
    auto ref = fresh_params(11);
    torch::optim::AdamW ref_opt(ref, opts);
    std::vector<torch::Tensor> p, m, v;
    for (const auto& r : ref) {
      p.push_back(r.detach().clone());
      m.push_back(torch::zeros_like(r));
      v.push_back(torch::zeros_like(r));
    }
    bool same = true;
    for (int64_t step = 1; step <= 4; ++step) {
      set_grads(ref, step);
      ref_opt.step();
      const double bc1 = 1 - std::pow(0.9, double(step)), bc2 = 1 - std::pow(0.99, double(step));
      for (size_t i = 0; i < p.size(); ++i) {
        const torch::Tensor g = ref[i].grad().contiguous();
        cpu::AdamWArgs a;
        a.param = p[i].data_ptr<float>();
        a.grad = g.data_ptr<float>();
        a.exp_avg = m[i].data_ptr<float>();
        a.exp_avg_sq = v[i].data_ptr<float>();
        a.decay = true;
        a.decay_factor = static_cast<float>(1 - 2e-3 * 0.05);
        a.beta1 = 0.9f;
        a.one_minus_beta1 = static_cast<float>(1 - 0.9);
        a.beta2 = 0.99f;
        a.one_minus_beta2 = static_cast<float>(1 - 0.99);
        a.sqrt_bias_correction2 = static_cast<float>(std::sqrt(bc2));
        a.eps = 1e-8f;
        a.neg_step_size = static_cast<float>(-(2e-3 / bc1));
        table->adamw(a, 0, p[i].numel());
      }
      std::vector<torch::Tensor> ref_now;
      for (const auto& r : ref) ref_now.push_back(r.detach());
      std::printf("  %s step %lld: max diff params %.3e exp_avg %.3e\n", isa, (long long)step,
                  max_diff(ref_now, p), max_diff(moments(ref_opt, ref, false), m));
      same = same && all_equal(ref_now, p) && all_equal(moments(ref_opt, ref, false), m) &&
             all_equal(moments(ref_opt, ref, true), v);
    }
    EXPECT_TRUE(same) << isa;
  }
}

TEST(FusedAdamW, StateLoadsIntoTorchAdamWAndBack) {
  auto opts = torch::optim::AdamWOptions(1e-3).betas(std::make_tuple(0.9, 0.99));
  auto a = fresh_params(3), b = fresh_params(3);
  FusedAdamW fused_opt(a, opts);
  torch::optim::AdamW ref_opt(b, opts);
  for (int64_t step = 0; step < 3; ++step) {
    set_grads(a, step);
    set_grads(b, step);
    fused_opt.step();
    ref_opt.step();
  }
  std::stringstream saved;
  {
    torch::serialize::OutputArchive archive;
    fused_opt.save(archive);
    archive.save_to(saved);
  }
  auto c = fresh_params(3);
  for (size_t i = 0; i < c.size(); ++i) c[i].detach().copy_(a[i].detach());
  torch::optim::AdamW restored(c, opts);
  torch::serialize::InputArchive in;
  in.load_from(saved);
  restored.load(in);
  set_grads(b, 3);
  set_grads(c, 3);
  ref_opt.step();
  restored.step();
  EXPECT_TRUE(all_equal(b, c));
}

TEST(FusedAdamW, NonContiguousOrAmsgradTakesTorchsStep) {
  auto opts = torch::optim::AdamWOptions(1e-3);
  auto base = torch::randn({6, 8});
  auto p = base.t().requires_grad_(true);  // transposed strides: not contiguous
  ASSERT_FALSE(p.is_contiguous());
  auto q = base.t().contiguous().requires_grad_(true);
  FusedAdamW fused_opt({p}, opts);
  torch::optim::AdamW ref_opt({q}, opts);
  p.mutable_grad() = torch::ones_like(p);
  q.mutable_grad() = torch::ones_like(q);
  EXPECT_FALSE(fused_opt.fused());
  fused_opt.step();
  ref_opt.step();
  EXPECT_TRUE(torch::equal(p, q));
  FusedAdamW ams({q.detach().clone().requires_grad_(true)}, torch::optim::AdamWOptions(1e-3).amsgrad(true));
  EXPECT_FALSE(ams.fused());
}

}  // namespace
}  // namespace r1kit
