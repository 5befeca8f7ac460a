// Activation checkpointing for LibTorch (which has no torch.utils.checkpoint): run a block without
// keeping its intermediate activations, and recompute it in backward.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace r1kit {

// y = fn(x), computed without a graph: only x is kept. In backward, fn(x) runs again with gradients
// on (under the autocast state of the forward) and the gradients of x and of `params` (the block's
// trainable parameters; gradients accumulate into their .grad as usual) come from that recompute.
// fn must be deterministic and must capture what it needs by value (it runs again in backward).
torch::Tensor checkpoint_activations(std::function<torch::Tensor(const torch::Tensor&)> fn, const torch::Tensor& x,
                                     const std::vector<torch::Tensor>& params);

}  // namespace r1kit
