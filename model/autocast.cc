#include "model/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "core/check.h"

// LibTorch >= 2.4 takes the device type; 1.13 has separate CPU and GPU (CUDA) functions.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define R1_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace r1kit {
namespace {

void check_type(torch::DeviceType t) {
  R1_CHECK(t == torch::kCPU || t == torch::kCUDA, "autocast: device type ", t, " is not supported (cpu, cuda)");
}

void set_state(torch::DeviceType t, bool enabled, torch::Dtype dtype) {
#ifdef R1_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(t, dtype);
  at::autocast::set_autocast_enabled(t, enabled);
#else
  if (t == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

}  // namespace

bool AutocastScope::enabled(torch::Device device) {
  check_type(device.type());
#ifdef R1_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(device.type());
#else
  return device.is_cuda() ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

torch::Dtype AutocastScope::dtype(torch::Device device) {
  check_type(device.type());
#ifdef R1_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(device.type());
#else
  return device.is_cuda() ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

AutocastScope::AutocastScope(bool enable, torch::Device device, torch::Dtype dtype) : active_(enable) {
  if (!active_) return;
  R1_CHECK(dtype == torch::kBFloat16 || dtype == torch::kFloat16, "autocast: dtype ", dtype,
           " is not a low-precision type (bfloat16, float16)");
  type_ = device.type();
  prev_enabled_ = enabled(device);
  prev_dtype_ = AutocastScope::dtype(device);
  set_state(type_, true, dtype);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_state(type_, prev_enabled_, prev_dtype_);
}

}  // namespace r1kit
