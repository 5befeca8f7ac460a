// Mixed-precision compute options of the decoder and the autocast scope that applies them, for
// LibTorch 1.13 and 2.x alike (their autocast APIs differ; see autocast.cc).
#pragma once
#include <torch/torch.h>

namespace r1kit {

// How the decoder computes; changes no weight and is not saved in checkpoints.
struct ComputeOptions {
  // Run forward (training and decode) under autocast: matmuls and attention in `autocast_dtype`
  // over float32 weights (PyTorch AMP). The alternative to bf16 weights + fp32 master weights.
  bool autocast = false;
  torch::Dtype autocast_dtype = torch::kBFloat16;
  // Training forward: keep only each layer's input and recompute the layer in backward
  // (model/activation_checkpoint.h): activation memory O(layers) instead of O(layers x layer).
  bool activation_checkpointing = false;
};

// RAII: enables autocast to `dtype` for `device`'s type while alive (no-op when !enable), restoring
// the previous state; the outermost scope clears autocast's cache of cast weights on exit (they go
// stale after an optimizer step).
class AutocastScope {
 public:
  AutocastScope(bool enable, torch::Device device, torch::Dtype dtype = torch::kBFloat16);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

  // Whether autocast is on for `device`'s type, and its dtype.
  static bool enabled(torch::Device device);
  static torch::Dtype dtype(torch::Device device);

 private:
  bool active_ = false;
  torch::DeviceType type_ = torch::kCPU;
  bool prev_enabled_ = false;
  torch::Dtype prev_dtype_ = torch::kBFloat16;
};

}  // namespace r1kit
