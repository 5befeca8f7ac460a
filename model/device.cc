#include "model/device.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/check.h"

#ifdef R1_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace r1kit {

torch::Device parse_device(const std::string& name, const std::string& what, bool check_available) {
  if (name == "cpu") return torch::kCPU;
  int64_t index = 0;
  if (name != "cuda") {
    const std::string digits = name.rfind("cuda:", 0) == 0 ? name.substr(5) : "";
    R1_CHECK(!digits.empty() && digits.size() <= 3 && std::all_of(digits.begin(), digits.end(), ::isdigit), what,
             ": '", name, "' is not a device (cpu, cuda or cuda:N)");
    index = std::stoll(digits);
  }
  if (check_available) {
    R1_CHECK(torch::cuda::is_available(), what, ": '", name, "' asks for a GPU, but ", describe_cuda_devices());
    const int64_t n = static_cast<int64_t>(torch::cuda::device_count());
    R1_CHECK(index < n, what, ": '", name, "' asks for GPU ", index, ", but this process sees ", n,
             " (CUDA_VISIBLE_DEVICES renumbers them from 0)");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string describe_cuda_devices() {
  const std::string version = TORCH_VERSION;
  if (!torch::cuda::is_available()) {
#ifdef R1_TORCH_CUDA
    return "no CUDA GPU is visible (LibTorch " + version + " with CUDA; check the driver and CUDA_VISIBLE_DEVICES)";
#else
    return "this build's LibTorch " + version + " has no CUDA (build with scripts/setup.sh --torch pip, docs/gpu.md)";
#endif
  }
  const int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  std::string out = std::to_string(n) + " CUDA GPU" + (n == 1 ? "" : "s") + ":";
#ifdef R1_TORCH_CUDA
  for (int64_t i = 0; i < n; ++i) {
    const auto* p = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i));
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s %lld %s (%.1f GiB, sm_%d%d)", i ? "," : "", static_cast<long long>(i), p->name,
                  p->totalGlobalMem / double(1 << 30), p->major, p->minor);
    out += buf;
  }
#endif
  return out;
}

}  // namespace r1kit
