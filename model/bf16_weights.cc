#include "model/bf16_weights.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "model/cpu_kernels.h"

namespace r1kit {

namespace {

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("R1_BF16_WEIGHTS");
    return !(v != nullptr && std::strcmp(v, "0") == 0);
  }()};
  return on;
}

std::atomic<int64_t> copies_made{0};

// Inference tensors (made under InferenceMode) keep no version counter, so writes into them cannot
// be seen: they get no copy.
bool tracks_versions(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  if (w.is_inference()) return false;
  for (const torch::Tensor& t : writers)
    if (t.defined() && t.is_inference()) return false;
  return true;
}

std::vector<int64_t> versions_of(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  std::vector<int64_t> v{static_cast<int64_t>(w._version())};
  for (const torch::Tensor& t : writers) v.push_back(t.defined() ? static_cast<int64_t>(t._version()) : -1);
  return v;
}

}  // namespace

bool bf16_weight_copies_enabled() { return enabled_flag().load(); }
void set_bf16_weight_copies_enabled(bool on) { enabled_flag().store(on); }
int64_t bf16_weight_copies_made() { return copies_made.load(); }

bool Bf16WeightCopy::current(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) const {
  // storage_ holds a weak reference: the StorageImpl it names cannot be freed and its address reused
  // by another tensor's storage while the reference lives, so equal pointers mean the same storage.
  return w.storage().unsafeGetStorageImpl() == storage_._unsafe_get_target() && w.data_ptr() == data_ &&
         w.sizes().vec() == shape_ && versions_of(w, writers) == versions_ && width_ == cpu::kernels().vec_width;
}

torch::Tensor Bf16WeightCopy::get(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  if (!bf16_weight_copies_enabled() || !w.defined() || !w.is_cpu() || w.scalar_type() != torch::kFloat32 ||
      w.dim() != 2 || !w.is_contiguous() || w.numel() == 0 || !tracks_versions(w, writers))
    return {};
  std::lock_guard<std::mutex> lock(mu_);
  if (current(w, writers)) return packed_;
  const cpu::KernelTable& k = cpu::kernels();
  const int64_t n = w.size(0), kdim = w.size(1), words = cpu::bf16_row_words(kdim, k.vec_width);
  const int64_t rows = cpu::bf16_packed_words(n, kdim, k.vec_width) / words;  // n rounded up to whole panels
  packed_ = torch::Tensor();  // the old copy's memory goes before the new one is made
  torch::Tensor packed = torch::empty({rows, words}, torch::kInt32);
  if (rows > n) packed.narrow(0, n, rows - n).zero_();  // the last panel's padding rows (never read)
  const float* src = w.data_ptr<float>();
  uint32_t* dst = reinterpret_cast<uint32_t*>(packed.data_ptr<int32_t>());
  std::atomic<bool> exact{true};
  // Rows in pieces of ~256k values: a weight that is not bfloat16 is usually refused in its first.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / kdim);
  at::parallel_for(0, n, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1 && exact.load(std::memory_order_relaxed); r += grain) {
      if (!k.pack_bf16(src, kdim, r, std::min(r1, r + grain), dst)) exact.store(false, std::memory_order_relaxed);
    }
  });
  if (exact.load()) {
    packed_ = packed;
    ++copies_made;
  }
  storage_ = w.storage().getWeakStorageImpl();
  data_ = w.data_ptr();
  shape_ = w.sizes().vec();
  versions_ = versions_of(w, writers);
  width_ = k.vec_width;
  return packed_;
}

}  // namespace r1kit
