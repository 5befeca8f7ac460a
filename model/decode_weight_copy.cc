#include "model/decode_weight_copy.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "model/cpu_kernels.h"

namespace r1kit {

namespace {

// On unless $name is "0" (read once).
bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return !(v != nullptr && std::strcmp(v, "0") == 0);
}

std::atomic<bool>& bf16_flag() {
  static std::atomic<bool> on{env_on("R1_BF16_WEIGHTS")};
  return on;
}
std::atomic<bool>& chunked_flag() {
  static std::atomic<bool> on{env_on("R1_CHUNKED_WEIGHTS")};
  return on;
}

std::atomic<int64_t> bf16_made{0}, chunked_made{0};

// Inference tensors (made under InferenceMode) keep no version counter, so writes into them cannot
// be seen: they get no copy.
bool tracks_versions(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  if (w.is_inference()) return false;
  for (const torch::Tensor& t : writers)
    if (t.defined() && t.is_inference()) return false;
  return true;
}

// A weight either copy can be made of.
bool copyable(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  return w.defined() && w.is_cpu() && w.scalar_type() == torch::kFloat32 && w.dim() == 2 && w.is_contiguous() &&
         w.numel() > 0 && tracks_versions(w, writers);
}

std::vector<int64_t> versions_of(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  std::vector<int64_t> v{static_cast<int64_t>(w._version())};
  for (const torch::Tensor& t : writers) v.push_back(t.defined() ? static_cast<int64_t>(t._version()) : -1);
  return v;
}

// w's bfloat16 copy, or an undefined tensor when a value is off the bfloat16 grid.
torch::Tensor pack_bf16(const torch::Tensor& w) {
  const cpu::KernelTable& k = cpu::kernels();
  const int64_t n = w.size(0), kdim = w.size(1), words = cpu::bf16_row_words(kdim, k.vec_width);
  const int64_t rows = cpu::bf16_packed_words(n, kdim, k.vec_width) / words;  // n rounded up to whole panels
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
  return exact.load() ? packed : torch::Tensor();
}

// w's values moved to their places in the k-chunked layout (row pieces of up to kChunkCols).
torch::Tensor pack_chunked(const torch::Tensor& w) {
  const int64_t n = w.size(0), k = w.size(1);
  torch::Tensor out = torch::empty({n, k}, torch::kFloat32);
  const float* src = w.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  at::parallel_for(0, n, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = 0; c < k; c += cpu::kChunkCols)
        std::memcpy(dst + cpu::chunked_offset(r, c, n, k), src + r * k + c,
                    sizeof(float) * std::min(cpu::kChunkCols, k - c));
  });
  return out;
}

}  // namespace

bool bf16_weight_copies_enabled() { return bf16_flag().load(); }
void set_bf16_weight_copies_enabled(bool on) { bf16_flag().store(on); }
int64_t bf16_weight_copies_made() { return bf16_made.load(); }
bool chunked_weight_copies_enabled() { return chunked_flag().load(); }
void set_chunked_weight_copies_enabled(bool on) { chunked_flag().store(on); }
int64_t chunked_weight_copies_made() { return chunked_made.load(); }

torch::Tensor DecodeWeightCopy::Slot::refresh(const torch::Tensor& w, const std::vector<torch::Tensor>& writers,
                                             torch::Tensor (*pack)(const torch::Tensor&), std::atomic<int64_t>& made) {
  // storage holds a weak reference: the StorageImpl it names cannot be freed and its address reused
  // by another tensor's storage while the reference lives, so equal pointers mean the same storage.
  std::vector<int64_t> now = versions_of(w, writers);
  if (w.storage().unsafeGetStorageImpl() == storage._unsafe_get_target() && w.data_ptr() == data &&
      w.sizes().vec() == shape && now == versions && width == cpu::kernels().vec_width)
    return packed;
  packed = torch::Tensor();  // the old copy's memory goes before the new one is made
  packed = pack(w);
  if (packed.defined()) ++made;
  storage = w.storage().getWeakStorageImpl();
  data = w.data_ptr();
  shape = w.sizes().vec();
  versions = std::move(now);
  width = cpu::kernels().vec_width;
  return packed;
}

torch::Tensor DecodeWeightCopy::get(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  if (!bf16_weight_copies_enabled() || !copyable(w, writers)) return {};
  std::lock_guard<std::mutex> lock(mu_);
  return bf16_.refresh(w, writers, pack_bf16, bf16_made);
}

torch::Tensor DecodeWeightCopy::chunked(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) {
  if (!chunked_weight_copies_enabled() || !copyable(w, writers) || w.size(1) < cpu::kChunkedMinK) return {};
  std::lock_guard<std::mutex> lock(mu_);
  return chunked_.refresh(w, writers, pack_chunked, chunked_made);
}

}  // namespace r1kit
