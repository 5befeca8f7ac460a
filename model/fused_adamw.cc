#include "model/fused_adamw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <memory>

#include "model/cpu_kernels.h"

namespace r1kit {

namespace {

// The optimizer state's key for a parameter (a string before LibTorch 2.0, the TensorImpl after).
auto state_key(const torch::Tensor& p) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<void*>(p.unsafeGetTensorImpl());
#else
  return c10::guts::to_string(p.unsafeGetTensorImpl());
#endif
}

bool fusable(const torch::Tensor& p) {
  return p.is_cpu() && p.scalar_type() == torch::kFloat32 && p.layout() == torch::kStrided && p.is_contiguous();
}

bool fusable_group(const torch::optim::OptimizerParamGroup& group) {
  const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
  if (options.amsgrad()) return false;
  for (const auto& p : group.params())
    if (p.grad().defined() && (!fusable(p) || !fusable(p.grad()))) return false;
  return true;
}

// Elements per parallel chunk (the update is element-wise: chunking changes no result).
constexpr int64_t kGrain = 1 << 15;

}  // namespace

FusedAdamW::FusedAdamW(std::vector<torch::Tensor> params, const torch::optim::AdamWOptions& options)
    : torch::optim::AdamW(std::move(params), options) {}

bool FusedAdamW::fused() const {
#if TORCH_VERSION_MAJOR >= 2
  // Bit-identity with AdamW is proven against LibTorch 1.13 only: under the 2.15 wheel the moments
  // agree but the parameters differ in the last bit, so 2.x keeps AdamW's own step until the kernel
  // follows its rounding too.
  return false;
#else
  for (const auto& group : param_groups_)
    if (!fusable_group(group)) return false;
  return true;
#endif
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  if (!fused()) return torch::optim::AdamW::step(std::move(closure));
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  const auto& kernels = cpu::kernels();
  for (auto& group : param_groups_) {
    const auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = state_key(p);
      if (state_.find(key) == state_.end()) {  // as AdamW: zero moments, step 0
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state_[key] = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*state_[key]);
      state.step(state.step() + 1);
      // AdamW's scalars in double, each rounded to float where ATen rounds its Scalar arguments.
      const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      cpu::AdamWArgs a;
      a.param = p.data_ptr<float>();
      a.grad = p.grad().data_ptr<float>();
      a.exp_avg = state.exp_avg().data_ptr<float>();
      a.exp_avg_sq = state.exp_avg_sq().data_ptr<float>();
      a.decay = options.weight_decay() != 0;
      a.decay_factor = static_cast<float>(1 - options.lr() * options.weight_decay());
      a.beta1 = static_cast<float>(beta1);
      a.one_minus_beta1 = static_cast<float>(1 - beta1);
      a.beta2 = static_cast<float>(beta2);
      a.one_minus_beta2 = static_cast<float>(1 - beta2);
      a.sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
      a.eps = static_cast<float>(options.eps());
      a.neg_step_size = static_cast<float>(-(options.lr() / bias_correction1));
      at::parallel_for(0, p.numel(), kGrain, [&](int64_t b, int64_t e) { kernels.adamw(a, b, e); });
    }
  }
  return loss;
}

}  // namespace r1kit
