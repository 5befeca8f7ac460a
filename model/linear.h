// The decoder's linear layers: torch::nn::Linear (same parameters "weight"/"bias", same init, same
// checkpoint names) plus an optional low-rank adapter (LoRA, model/lora.h):
//
//   y = x W^T + b + scaling * B (A (dropout(x)))        A [r, in], B [out, r]
//
// The adapter's tensors are not registered in the decoder's module tree, so named_parameters(),
// checkpoints and the rollout pool see the base weights only; model/lora.h owns them.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "model/decode_weight_copy.h"

namespace r1kit {

struct LoraOptions;  // model/lora.h

// One layer's adapter. PEFT (peft.tuners.lora.Linear) semantics: dropout on the adapter's input
// in training mode only, A and B in float32 (PEFT's autocast_adapter_dtype), the input cast to
// float32 and the update cast back to the layer's dtype.
class LoraLayerImpl : public torch::nn::Module {
 public:
  LoraLayerImpl(int64_t in_features, int64_t out_features, int64_t r, double scaling, double dropout);
  // scaling * B(A(dropout(x))) in float32.
  torch::Tensor delta(const torch::Tensor& x, bool training);
  // scaling * B @ A: [out, in] float32, what merging adds to the weight.
  torch::Tensor delta_weight() const;

  torch::Tensor A, B;   // registered as "lora_A", "lora_B" (PEFT: lora_A.weight, lora_B.weight)
  double scaling = 1.0;
  double dropout = 0.0;
  bool enabled = true;  // false: the layer computes the base output only (reference policy)
  std::shared_ptr<const LoraOptions> adapter_options;  // the whole adapter's settings (model/lora.h)
};
TORCH_MODULE(LoraLayer);

class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x);
  LoraLayer lora{nullptr};  // null: a plain linear layer
  DecodeWeightCopy decode_copy;  // the weight's copies for decoding (model/decode_weight_copy.h)
};
TORCH_MODULE(Linear);

}  // namespace r1kit
