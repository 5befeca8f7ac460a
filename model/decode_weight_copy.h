// Copies of float32 decode weights in layouts the native decode linear (model/cpu_kernels.h) reads
// faster; the kernel multiplies in the same order from either, so a step's logits are the same bits
// with or without them.
//
// bfloat16: Hugging Face ships Qwen2.5, Llama-3 and the R1-Distill models in bfloat16; on the CPU
// they load in float32, so every weight is a bfloat16 number stored in twice its bytes. Batch-1
// decoding streams all the weights from memory every step and is bound by that stream; the copy
// halves it (memory: half the weight's bytes). A weight with any value off the bfloat16 grid (a
// policy after an optimizer step) gets none: the check stops at its first such row.
// R1_BF16_WEIGHTS=0 turns these off.
//
// k-chunked float32 (cpu::chunked_offset): for weights with rows longer than 4096 that have no
// bfloat16 copy, asked for only by calls with fewer than 4 input rows (the layout is for batch 1-3,
// where a row no longer fits L1 beside the input row). Memory: the weight's bytes again (on the
// Qwen2.5-0.5B shape the down projections: 21% of the weights). R1_CHUNKED_WEIGHTS=0 turns these off.
//
// A copy is rebuilt whenever its weight may have changed: another storage, shape or data pointer, or
// an in-place write (the version counters of the weight and of the tensors that write into it, e.g.
// the parameters re-homed into a fused tensor).
#pragma once
#include <c10/util/intrusive_ptr.h>
#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace r1kit {

class DecodeWeightCopy {
 public:
  DecodeWeightCopy() = default;
  // A module copied (cloned) starts without copies: its weights are other tensors.
  DecodeWeightCopy(const DecodeWeightCopy&) {}
  DecodeWeightCopy& operator=(const DecodeWeightCopy&) { return *this; }

  // The bfloat16 copy of w [n, k] (CPU float32, contiguous) packed for the kernels in use
  // (cpu::kernels().pack_bf16: int32, cpu::bf16_packed_words), or an undefined tensor when w is not all bfloat16
  // numbers or copies are off. `writers`: tensors whose in-place writes change w's values without
  // touching w's version counter. Thread-safe; the first call after a change pays one pass over w.
  torch::Tensor get(const torch::Tensor& w, const std::vector<torch::Tensor>& writers = {});

  // The vector width the bfloat16 copy is packed for (cpu::LinearArgs::bf16_width).
  int width() const { return bf16_.width; }

  // The k-chunked copy of w (float32, cpu::chunked_offset), or an undefined tensor when w's rows are
  // short (k < cpu::kChunkedMinK) or these copies are off. Same contract as get(); callers ask for it
  // where get() gave none.
  torch::Tensor chunked(const torch::Tensor& w, const std::vector<torch::Tensor>& writers = {});

 private:
  // One copy and the weight it was made from (width 0: none looked at yet).
  struct Slot {
    c10::weak_intrusive_ptr<c10::StorageImpl> storage{c10::intrusive_ptr<c10::StorageImpl>()};
    const void* data = nullptr;
    std::vector<int64_t> shape, versions;
    torch::Tensor packed;  // undefined: w gets no copy of this kind
    int width = 0;
    // The copy, made anew by `pack` (counted in `made` when it gives one) unless w is unchanged.
    torch::Tensor refresh(const torch::Tensor& w, const std::vector<torch::Tensor>& writers,
                          torch::Tensor (*pack)(const torch::Tensor&), std::atomic<int64_t>& made);
  };
  std::mutex mu_;
  Slot bf16_, chunked_;
};

// False when $R1_BF16_WEIGHTS is "0" (read once), or after set_bf16_weight_copies_enabled(false).
bool bf16_weight_copies_enabled();
void set_bf16_weight_copies_enabled(bool on);
// How many bfloat16 copies have been made in this process (tests: a copy is made, and only when needed).
int64_t bf16_weight_copies_made();
// The same for the k-chunked copies ($R1_CHUNKED_WEIGHTS).
bool chunked_weight_copies_enabled();
void set_chunked_weight_copies_enabled(bool on);
int64_t chunked_weight_copies_made();

}  // namespace r1kit
