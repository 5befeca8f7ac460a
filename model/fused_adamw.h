#pragma once
// torch::optim::AdamW with its CPU float32 update fused into one pass per parameter.
//
// The same options, state (AdamWParamState: step, exp_avg, exp_avg_sq) and save/load as
// torch::optim::AdamW, so checkpoints of either load into the other, and the same arithmetic
// element by element (model/cpu_kernels.h's adamw). What differs is the memory traffic: ATen's
// step runs eight tensor ops per parameter, each a pass over it (plus a temporary for the
// denominator); this runs one. A group with amsgrad, or a parameter or gradient that is not a
// dense contiguous CPU float32 tensor, takes ATen's step; so does every step under LibTorch 2.x
// (its parameter update rounds differently in the last bit; see fused()).
#include <torch/torch.h>
#include <torch/version.h>

#include <vector>

namespace r1kit {

class FusedAdamW : public torch::optim::AdamW {
 public:
  FusedAdamW(std::vector<torch::Tensor> params, const torch::optim::AdamWOptions& options);
  torch::Tensor step(LossClosure closure = nullptr) override;

  // True when every parameter with a gradient would take the fused update.
  bool fused() const;
};

}  // namespace r1kit
