// Float32 CPU kernels for the decode path (and the sampler): a batch-invariant linear layer,
// attention over the KV cache, RMSNorm, RoPE, SiLU-gate, exp/argmax passes over logits.
//
// They exist because the generic BLAS path is a poor fit for decoding: a [B, C] x [N, C]^T
// product with B = 1..64 is a stream over the weights, which sgemm first packs (and OpenBLAS
// builds for an unknown CPU fall back to SSE3 kernels), and attention over a cache via per-row
// matmuls pads every row to the longest. These kernels read each weight once per call, keep
// ragged rows ragged, and never materialise masks.
//
// Determinism: every output element is computed by one thread in a fixed order that depends only
// on the shapes of that element's inputs (K for a linear output, the row's length for attention),
// never on the batch size, the tile it falls in, or the thread count. So a sequence decodes to the
// same bits whatever else shares its batch (the rollout engine relies on this).
//
// The kernels are compiled once per instruction set (cpu_kernels_{avx512,avx2,generic}.cc, from
// the template in cpu_kernels_impl.h) and chosen at run time from the CPU's features;
// $R1_CPU_KERNELS=generic|avx2|avx512 forces one (tests run all three). These translation units
// include no Torch or STL templates, so no inline function compiled for AVX-512 can leak into the
// rest of the program. The Torch-level wrappers that split work over threads are in
// model/layer_ops.h.
#pragma once
#include <cstdint>

namespace r1kit::cpu {

// y[m, n] (+)= bias[n] + sum_k x[m, k] * w[n, k] for n in [n_begin, n_end), every m < rows.
struct LinearArgs {
  const float* x = nullptr;  // [rows, k], row stride ldx
  int64_t ldx = 0;
  int64_t rows = 0;
  const float* w = nullptr;  // [n, k] contiguous
  int64_t n = 0, k = 0;
  const float* bias = nullptr;  // [n] or null
  float* y = nullptr;           // [rows, n], row stride ldy
  int64_t ldy = 0;
  bool accumulate = false;      // y += result instead of y = result
};

// Causal attention of new queries over a KV cache (one layer). Batch row b reads cache row
// cache_row[b]; its T queries are at positions past[b] .. past[b]+T-1 and query t attends cache
// slots [0, past[b] + t] (its own K/V already written there). Query head h uses KV head h / R.
// Work item i = b * kv_heads + g (all R query heads and T queries of that row and KV head).
struct AttentionArgs {
  const float* q = nullptr;  // [B, T, H, D]: q + (b*T + t)*q_stride + h*D
  int64_t q_stride = 0;
  const float* k_cache = nullptr;  // [rows, KV, max_len, D] contiguous
  const float* v_cache = nullptr;
  int64_t max_len = 0;
  const int64_t* cache_row = nullptr;  // [B]
  const int64_t* past = nullptr;       // [B]
  int64_t batch = 0, tokens = 0, heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  float* out = nullptr;  // [B, T, H, D]: out + (b*T + t)*out_stride + h*D
  int64_t out_stride = 0;
};

struct KernelTable {
  const char* isa = "";  // "avx512", "avx2" or "generic"
  void (*linear)(const LinearArgs& a, int64_t n_begin, int64_t n_end) = nullptr;
  void (*attention)(const AttentionArgs& a, int64_t item_begin, int64_t item_end) = nullptr;
  // out[r] = w * (x[r] / sqrt(mean(x[r]^2) + eps)) for rows r in [0, rows); x row stride ldx.
  void (*rms_norm)(const float* x, int64_t ldx, const float* w, float* out, int64_t rows, int64_t dim,
                   float eps) = nullptr;
  // In place on rows of `heads` vectors of size dim (half-split RoPE): x row stride ldx, heads
  // contiguous; cos/sin [rows, dim] contiguous.
  void (*rope)(float* x, int64_t ldx, const float* cos, const float* sin, int64_t rows, int64_t heads,
               int64_t dim) = nullptr;
  // out[r, i] = silu(gu[r, i]) * gu[r, inter + i]: gu [rows, 2*inter] contiguous, out [rows, inter].
  void (*silu_mul)(const float* gu, float* out, int64_t rows, int64_t inter) = nullptr;
  // out[i] = exp(x[i] * scale - shift) for i < n (0 where x[i] * scale - shift < -87.3);
  // returns sum(out) accumulated in float lanes, reduced in a fixed order.
  float (*exp_shift)(const float* x, float scale, float shift, float* out, int64_t n) = nullptr;
  // Largest x[i] and the first index holding it (NaN is never chosen unless all are NaN).
  void (*max_argmax)(const float* x, int64_t n, float* max, int64_t* index) = nullptr;
};

// The table for this CPU (or $R1_CPU_KERNELS), chosen once.
const KernelTable& kernels();
// The table for one instruction set; null when this build or CPU does not have it.
const KernelTable* kernels_for(const char* isa);

}  // namespace r1kit::cpu
