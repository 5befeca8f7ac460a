// The decoder's building-block operations with a choice of implementation, so that one module
// forward (model/transformer.cc) serves three uses:
//
//   kAten    ATen ops exactly as PyTorch eager writes them: bit-compatible with a PyTorch reference
//            on the same LibTorch (the default forward; parity tests and `r1kit logits` use it).
//   kOneDnn  training on CPU float32: linear layers (forward and backward) through oneDNN, which
//            ships inside LibTorch and picks its kernels from the CPU's instruction set at run
//            time (the system BLAS may not: Debian's OpenBLAS 0.3.21 runs SSE3 kernels on CPUs it
//            does not know). Falls back to kAten where oneDNN is missing or the tensor is not CPU f32.
//            The trainers take cpu_training_kernels() (below).
//   kSgemm   training on CPU float32: linear layers (forward and backward) through oneDNN's plain
//            sgemm on the row-major tensors (model/sgemm_linear.h); falls back to kAten where the
//            process has no dnnl_sgemm or the tensors are not CPU f32.
//   kNative  decoding on CPU float32: model/cpu_kernels.h (batch-invariant linear, attention over
//            the cache without masks or padding, fused RMSNorm / RoPE / SiLU-gate). Inference
//            only; falls back to kAten off the CPU, for other dtypes and when autograd is recording.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace r1kit {

class DecodeWeightCopy;  // model/decode_weight_copy.h

enum class Kernels { kAten, kOneDnn, kNative, kSgemm };

// The faster CPU float32 training linears here, decided once per process:
//   - the BLAS is OpenBLAS and the process has dnnl_sgemm (Debian's LibTorch): kSgemm. OpenBLAS
//     zeroes each output before accumulating into it; SFT steps of the tiny recipe ran ~9% faster;
//   - OpenBLAS running kernels built for this CPU (`r1kit` sets OPENBLAS_CORETYPE from the CPU's
//     features), without dnnl_sgemm: kAten (measured 10-25% faster SFT steps than kOneDnn);
//   - OpenBLAS's SSE3 fallback kernels on a CPU it does not recognise: kOneDnn;
//   - another BLAS (MKL in the official LibTorch, whose oneDNN is private): kOneDnn.
Kernels cpu_training_kernels();

// x [..., K] @ w[N, K]^T (+ b[N]) -> [..., N]. kNative with `reuse`: the result is written into
// *reuse when nothing else holds it and its shape fits, else into a new tensor left in *reuse (a
// decode step's [B, V] logits are tens of MB: a fresh allocation each step is a fresh mmap, and
// faulting its pages in cost ~2% of a 0.5B-shape step at batch 64).
// kNative with `copies`: reads the weight's bfloat16 copy (model/decode_weight_copy.h; `writers` as
// there) when it has one: the same bits, half the weight bytes streamed; else, for fewer than 4 input
// rows of more than 4096 features, its k-chunked copy (the same bits, read at the core's stream
// rate). Other kernels ignore it.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Kernels kernels,
                     torch::Tensor* reuse = nullptr, DecodeWeightCopy* copies = nullptr,
                     const std::vector<torch::Tensor>& writers = {});

// w * (x / sqrt(mean(x^2) + eps)) over the last dim, normalised in float32 (HF order).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps, Kernels kernels);

// silu(gate) * up for gate_up = [..., 2I] (gate first) -> [..., I].
torch::Tensor silu_gate(const torch::Tensor& gate_up, Kernels kernels);

// True when kNative applies to these tensors (CPU float32, no autograd recording through them).
bool native_applies(std::initializer_list<const torch::Tensor*> tensors);

// Rows of a [rows, cols] job split over threads so each piece has at least ~64k elements
// (at::parallel_for's grain).
int64_t row_grain(int64_t cols);

// ---- the native decode attention (CPU float32 only) ------------------------------------------

// In place: half-split RoPE on `heads` vectors of size D in each row of x2d [rows, >= heads*D]
// starting at column `col`; cos/sin [rows, D] float32 contiguous.
void native_rope_(torch::Tensor& x2d, int64_t col, int64_t heads, const torch::Tensor& cos, const torch::Tensor& sin);
// The same from src2d (from column src_col) into dst2d (from column dst_col), [rows, ...] each.
void native_rope_into(const torch::Tensor& src2d, int64_t src_col, torch::Tensor& dst2d, int64_t dst_col,
                      int64_t heads, const torch::Tensor& cos, const torch::Tensor& sin);

// Writes K and V ([B*T, KV*D] rows, from columns k_col / v_col of x2d) into cache layer tensors
// [rows, KV, max_len, D] at cache_row[b], slots past[b] + t.
void native_cache_write(const torch::Tensor& x2d, int64_t k_col, int64_t v_col, torch::Tensor& k_cache,
                        torch::Tensor& v_cache, const std::vector<int64_t>& cache_row, const std::vector<int64_t>& past,
                        int64_t tokens);

// Causal attention of the B*T queries (columns [0, H*D) of x2d) over the cache (see
// cpu::AttentionArgs) -> [B*T, H*D].
torch::Tensor native_cached_attention(const torch::Tensor& x2d, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
                                      const std::vector<int64_t>& cache_row, const std::vector<int64_t>& past,
                                      int64_t tokens, int64_t heads, int64_t kv_heads, int64_t head_dim);

}  // namespace r1kit
