#include "model/activation_checkpoint.h"

#include <torch/csrc/autograd/custom_function.h>

#include "model/autocast.h"

namespace r1kit {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides the saved input: the block and the autocast state of the forward.
struct Recompute : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> fn;
  bool autocast = false;
  torch::Dtype autocast_dtype = torch::kBFloat16;
};

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  // params arrive as a TensorList so autograd makes each an input (and accumulates its gradient).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, torch::TensorList params,
                               c10::intrusive_ptr<Recompute> recompute) {
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    ctx->saved_data["params"] = params.vec();  // leaves: no reference cycle
    return recompute->fn(x);  // autograd's apply runs forward with gradients off: nothing is kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto recompute = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      AutocastScope autocast(recompute->autocast, x.device(), recompute->autocast_dtype);
      y = recompute->fn(x);
    }
    // The inputs of the recompute graph: x and the parameters it reaches (the same objects as in forward).
    std::vector<torch::Tensor> inputs = {x};
    for (const torch::Tensor& p : ctx->saved_data["params"].toTensorVector()) inputs.push_back(p);
    const variable_list grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false,
                                                      /*create_graph=*/false, /*allow_unused=*/true);
    // One gradient per forward input: x, each parameter, then none for the recompute capsule.
    variable_list out(grads.begin(), grads.end());
    out.emplace_back();
    return out;
  }
};

}  // namespace

torch::Tensor checkpoint_activations(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                                     const std::vector<torch::Tensor>& params) {
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->fn = std::move(fn);
  recompute->autocast = AutocastScope::enabled(x.device());
  if (recompute->autocast) recompute->autocast_dtype = AutocastScope::dtype(x.device());
  std::vector<torch::Tensor> trainable;
  for (const auto& p : params)
    if (p.requires_grad()) trainable.push_back(p);
  return CheckpointFunction::apply(x, torch::TensorList(trainable), recompute);
}

}  // namespace r1kit
