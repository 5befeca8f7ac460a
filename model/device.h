// Device names of recipes and commands: "cpu", "cuda" (GPU 0) or "cuda:N".
#pragma once
#include <torch/types.h>

#include <string>

namespace r1kit {

// Parses a device name. Errors name `what` (e.g. "recipe.yaml: key 'device'"): a malformed name, and
// when check_available, CUDA in a LibTorch without CUDA, no visible GPU, or N beyond the visible GPUs.
torch::Device parse_device(const std::string& name, const std::string& what = "device", bool check_available = true);

// One line on the CUDA devices this process sees ("2 CUDA GPUs: 0 NVIDIA H200 (139.8 GiB), ..." or
// "no CUDA GPU (LibTorch 1.13.1 without CUDA)").
std::string describe_cuda_devices();

}  // namespace r1kit
