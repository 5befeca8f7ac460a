#include "model/linear.h"

namespace r1kit {

LoraLayerImpl::LoraLayerImpl(int64_t in_features, int64_t out_features, int64_t r, double scaling_, double dropout_)
    : scaling(scaling_), dropout(dropout_) {
  A = register_parameter("lora_A", torch::zeros({r, in_features}, torch::kFloat32));
  B = register_parameter("lora_B", torch::zeros({out_features, r}, torch::kFloat32));
}

torch::Tensor LoraLayerImpl::delta(const torch::Tensor& x, bool training) {
  torch::Tensor h = x.to(A.scalar_type());
  if (training && dropout > 0) h = torch::dropout(h, dropout, /*train=*/true);
  return torch::nn::functional::linear(torch::nn::functional::linear(h, A), B) * scaling;
}

torch::Tensor LoraLayerImpl::delta_weight() const { return torch::matmul(B, A) * scaling; }

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::nn::LinearImpl::forward(x);
  if (lora && lora->enabled) y = y + lora->delta(x, is_training()).to(y.scalar_type());
  return y;
}

}  // namespace r1kit
