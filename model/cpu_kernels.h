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
  // Optional: the same weights as bfloat16, packed by KernelTable::pack_bf16 for vector width
  // bf16_width. Read instead of w (half the bytes; the products and their order are those of w, so
  // the bits are too) when bf16_width is this table's vec_width; w is read otherwise.
  const uint32_t* w_bf16 = nullptr;
  int64_t bf16_width = 0;
  // Optional: the same float32 weights in the k-chunked layout below (a plain copy). Read instead of
  // w when rows < 4 and there is no bfloat16 copy (same products in the same order: same bits).
  const float* w_chunked = nullptr;
};

// The k-chunked float32 layout. Rows go in panels of kChunkPanel (the last one may be shorter); a
// panel stores columns [0, kChunkCols) of its rows one row after the other, then the next
// kChunkCols columns, ... So at batch 1 the kernel reads the copy front to back as one stream while
// a 4 KB piece of the input row serves every row of the panel. Reading whole rows instead, a row of
// K > 4096 floats and the input row (16 KB each) no longer fit a 32 KB L1 together: the input row
// is evicted by the weights every row, and one Zen 4 core read such rows at 22-24 GB/s against
// 32-34 in this layout (K = 4864 and 8960; K <= 3072: the same either way).
constexpr int64_t kChunkPanel = 64;
constexpr int64_t kChunkCols = 1024;
constexpr int64_t kChunkedMinK = 4097;  // shorter rows gain nothing from the copy
// Where value (row, col) of an [n, k] matrix is in the layout.
inline int64_t chunked_offset(int64_t row, int64_t col, int64_t n, int64_t k) {
  const int64_t p0 = row / kChunkPanel * kChunkPanel, rows = n - p0 < kChunkPanel ? n - p0 : kChunkPanel;
  const int64_t c0 = col / kChunkCols * kChunkCols, cols = k - c0 < kChunkCols ? k - c0 : kChunkCols;
  return p0 * k + c0 * rows + (row - p0) * cols + (col - c0);
}

// The packed bfloat16 layout for vector width vw. A row of k values is cut into chunks of 2 * vw
// values, each stored as vw 32-bit words (word j: value j in its low half, value vw + j in its high
// half, so that a shift and a mask give two float vectors in the lane order of the float32 rows),
// zero-padded. Rows go in panels of kBf16Panel: a panel stores chunk 0 of its rows one after the
// other, then chunk 1, ... so the kernel's tile of 8 (or 4) rows reads one sequential stream, which
// the hardware prefetcher follows much better than 8 short rows (measured on one Zen 4 core: ~13
// GB/s row by row, ~26 in panels).
constexpr int64_t kBf16Panel = 8;
// 32-bit words of one packed row (its chunks).
inline int64_t bf16_row_words(int64_t k, int64_t vw) { return (k + 2 * vw - 1) / (2 * vw) * vw; }
// 32-bit words of a packed [n, k] matrix (n rounded up to whole panels; the padding rows are zero).
inline int64_t bf16_packed_words(int64_t n, int64_t k, int64_t vw) {
  return (n + kBf16Panel - 1) / kBf16Panel * kBf16Panel * bf16_row_words(k, vw);
}

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

// Attention without a cache, for training forwards and their backward (model/train_ops.h). Batch
// row b's T queries attend their own keys [first_key[b*T+t], t] (first_key null: from 0), after, with
// a prefix, the first prefix_len[b] keys of prefix p = b / group (GRPO: one prompt's K/V shared by
// its group of completions). Query head h uses KV head h / R. Work item i = p * kv_heads + g: the
// `group` rows of prefix p and KV head g, so the prefix's key gradients have one writer.
struct TrainAttentionArgs {
  const float* q = nullptr;  // [B, T, H, D]: q + (b*T + t)*q_stride + h*D
  int64_t q_stride = 0;
  const float* k = nullptr;  // [B, T, KV, D]: k + (b*T + t)*kv_stride + g*D (v the same)
  const float* v = nullptr;
  int64_t kv_stride = 0;
  const int64_t* first_key = nullptr;  // [B*T] or null
  const float* prefix_k = nullptr;     // [B/group, Tp, KV, D]: rows of prefix_stride; null: no prefix
  const float* prefix_v = nullptr;
  int64_t prefix_stride = 0, prefix_tokens = 0, group = 1;
  const int64_t* prefix_len = nullptr;  // [B] keys of the prefix each row sees
  int64_t batch = 0, tokens = 0, heads = 0, kv_heads = 0, head_dim = 0;
  // Queries only at positions t >= first_query (all T keys): q, out, dout, dq and lse hold those
  // T - first_query positions per batch row (a model's last layer, whose other rows predict nothing
  // the loss reads). Not with first_key.
  int64_t first_query = 0;
  float scale = 1.0f;
  float* out = nullptr;  // [B, T, H, D] contiguous (forward writes)
  float* lse = nullptr;  // [B, H, T]: log-sum-exp of the scaled scores (forward writes, backward reads)
  // Backward: dout like out; dq like q ([B,T,H,D] rows dq_stride apart); dk/dv like k/v ([B,T,KV,D]
  // rows dkv_stride apart); a stride of 0 means contiguous (H*D, KV*D); dq, dk and dv may be column
  // ranges of one [B,T,(H+2KV)*D] gradient. dprefix_k/v like the prefix (contiguous [B/group,Tp,KV,D]).
  // All overwritten.
  const float* dout = nullptr;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr, *dprefix_k = nullptr, *dprefix_v = nullptr;
  int64_t dq_stride = 0, dkv_stride = 0;
};

// One AdamW step over elements [begin, end) of a float32 parameter, its gradient and moments, with
// torch::optim::AdamW's element-wise arithmetic in its order (the scalars rounded to float as ATen
// rounds them), in one pass instead of its eight tensor ops.
struct AdamWArgs {
  float* param = nullptr;
  const float* grad = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  bool decay = false;  // param *= decay_factor first (1 - lr * weight_decay)
  float decay_factor = 1.0f;
  float beta1 = 0.0f, one_minus_beta1 = 0.0f, beta2 = 0.0f, one_minus_beta2 = 0.0f;
  float sqrt_bias_correction2 = 1.0f, eps = 0.0f;
  float neg_step_size = 0.0f;  // -lr / bias_correction1
};

struct KernelTable {
  const char* isa = "";  // "avx512", "avx2" or "generic"
  int vec_width = 0;     // floats per vector: 16, 8 or 4
  void (*linear)(const LinearArgs& a, int64_t n_begin, int64_t n_end) = nullptr;
  // Packs weight rows [row_begin, row_end) of w [n, k] (contiguous) as bfloat16 into their places in
  // out (bf16_packed_words(n, k, vec_width) words). Returns false, leaving those rows unfinished, as
  // soon as a value is not a bfloat16 number (its low 16 bits are not all zero): the copy would
  // change results.
  bool (*pack_bf16)(const float* w, int64_t k, int64_t row_begin, int64_t row_end, uint32_t* out) = nullptr;
  void (*attention)(const AttentionArgs& a, int64_t item_begin, int64_t item_end) = nullptr;
  // out[r] = w * (x[r] / sqrt(mean(x[r]^2) + eps)) for rows r in [0, rows); x row stride ldx.
  void (*rms_norm)(const float* x, int64_t ldx, const float* w, float* out, int64_t rows, int64_t dim,
                   float eps) = nullptr;
  // h[r] = x[r] + a[r], out[r] = rms_norm(h[r]) (all [rows, dim] contiguous): the same bits as the
  // add and rms_norm apart, in one pass.
  void (*add_rms_norm)(const float* x, const float* a, float* h, const float* w, float* out, int64_t rows,
                       int64_t dim, float eps) = nullptr;
  // Half-split RoPE of rows of `heads` vectors of size dim from x (row stride ldx) into out (row
  // stride ldo; out == x: in place), heads contiguous; cos/sin [rows, dim] contiguous.
  void (*rope)(const float* x, int64_t ldx, float* out, int64_t ldo, const float* cos, const float* sin,
               int64_t rows, int64_t heads, int64_t dim) = nullptr;
  // out[r, i] = silu(gu[r, i]) * gu[r, inter + i]: gu [rows, 2*inter] contiguous, out [rows, inter].
  void (*silu_mul)(const float* gu, float* out, int64_t rows, int64_t inter) = nullptr;
  // out[i] = exp(x[i] * scale - shift) for i < n (0 where x[i] * scale - shift < -87.3);
  // returns sum(out) accumulated in float lanes, reduced in a fixed order.
  float (*exp_shift)(const float* x, float scale, float shift, float* out, int64_t n) = nullptr;
  // Largest x[i] and the first index holding it (NaN is never chosen unless all are NaN).
  void (*max_argmax)(const float* x, int64_t n, float* max, int64_t* index) = nullptr;
  // ---- training (forward and backward of model/train_ops.h) ----
  void (*attention_train_forward)(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) = nullptr;
  void (*attention_train_backward)(const TrainAttentionArgs& a, int64_t item_begin, int64_t item_end) = nullptr;
  // RMSNorm's backward over rows (x, dy, dx [rows, dim] contiguous): dx, plus dres (the gradient of
  // a residual that also reads x: add_rms_norm's h) unless dres is null; dw[i] += sum over these rows
  // of dy * x / rms (in row order) unless dw is null.
  void (*rms_norm_backward)(const float* x, const float* w, const float* dy, const float* dres, int64_t rows,
                            int64_t dim, float eps, float* dx, float* dw) = nullptr;
  // silu_mul's backward: dgu [rows, 2*inter] (gate half, up half) from gu and dy [rows, inter].
  void (*silu_mul_backward)(const float* gu, const float* dy, float* dgu, int64_t rows, int64_t inter) = nullptr;
  void (*adamw)(const AdamWArgs& a, int64_t begin, int64_t end) = nullptr;
};

// The table for this CPU (or $R1_CPU_KERNELS), chosen once.
const KernelTable& kernels();
// The table for one instruction set; null when this build or CPU does not have it.
const KernelTable* kernels_for(const char* isa);

}  // namespace r1kit::cpu
