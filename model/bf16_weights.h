// Bfloat16 copies of float32 decode weights whose values are all bfloat16 numbers, for the native
// decode linear (model/cpu_kernels.h). Hugging Face ships Qwen2.5, Llama-3 and the R1-Distill models
// in bfloat16; on the CPU they load in float32, so every weight is a bfloat16 number stored in twice
// its bytes. Batch-1 decoding streams all the weights from memory every step and is bound by that
// stream; the copy halves it. The kernel widens each value exactly and multiplies in the same order,
// so a step's logits are the same bits with or without the copy.
//
// A weight with any value off the bfloat16 grid (a policy after an optimizer step) gets no copy: the
// check stops at its first such row. A copy is rebuilt whenever its weight may have changed: another
// storage, shape or data pointer, or an in-place write (the version counters of the weight and of
// the tensors that write into it, e.g. the parameters re-homed into a fused tensor).
//
// Memory: half the float32 weights' bytes. R1_BF16_WEIGHTS=0 turns the copies off.
#pragma once
#include <c10/util/intrusive_ptr.h>
#include <torch/types.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace r1kit {

class Bf16WeightCopy {
 public:
  Bf16WeightCopy() = default;
  // A module copied (cloned) starts without a copy: its weights are other tensors.
  Bf16WeightCopy(const Bf16WeightCopy&) {}
  Bf16WeightCopy& operator=(const Bf16WeightCopy&) { return *this; }

  // The copy of w [n, k] (CPU float32, contiguous) packed for the kernels in use
  // (cpu::kernels().pack_bf16: int32, cpu::bf16_packed_words), or an undefined tensor when w is not all bfloat16
  // numbers or copies are off. `writers`: tensors whose in-place writes change w's values without
  // touching w's version counter. Thread-safe; the first call after a change pays one pass over w.
  torch::Tensor get(const torch::Tensor& w, const std::vector<torch::Tensor>& writers = {});

  // The vector width the copy is packed for (cpu::LinearArgs::bf16_width).
  int width() const { return width_; }

 private:
  bool current(const torch::Tensor& w, const std::vector<torch::Tensor>& writers) const;
  std::mutex mu_;
  c10::weak_intrusive_ptr<c10::StorageImpl> storage_{c10::intrusive_ptr<c10::StorageImpl>()};
  // The weight last looked at (width_ 0: none yet) and its copy (undefined: not all bfloat16 numbers).
  const void* data_ = nullptr;
  std::vector<int64_t> shape_, versions_;
  torch::Tensor packed_;
  int width_ = 0;
};

// False when $R1_BF16_WEIGHTS is "0" (read once), or after set_bf16_weight_copies_enabled(false).
bool bf16_weight_copies_enabled();
void set_bf16_weight_copies_enabled(bool on);
// How many copies have been made in this process (tests: a copy is made, and only when needed).
int64_t bf16_weight_copies_made();

}  // namespace r1kit
