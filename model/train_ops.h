// Fused CPU float32 operations for the forwards that train (SFT, GRPO, distillation): RMSNorm, RoPE,
// SiLU-gate and attention without a cache, each one autograd node whose backward is written out
// over model/cpu_kernels.h, instead of the 4-20 ATen ops (and as many backward nodes) of the eager
// formula. On the tiny recipe's shapes those ops, and ATen's batched matmuls over [B*heads] small
// matrices, took about half of an SFT step. Values equal the eager formula up to float32 rounding
// (tests/model/train_ops_test.cc checks values and gradients against it, and a whole model).
//
// TransformerImpl::set_train_ops(true) turns them on (the trainers do, with their training kernels,
// unless R1_TRAIN_OPS=0); off, the forward is the eager formula of model/layer_ops.h. Every op here
// is deterministic and independent of the thread count. The q|k|v and gate|up projections then run
// as one matmul each, on weights concatenated per forward (autograd splits their gradient).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace r1kit {

// False when the environment says R1_TRAIN_OPS=0 (the trainers then run the eager formula, e.g. to
// compare a run against it); read once.
bool train_ops_enabled();

// True when these ops take x: CPU float32.
bool train_ops_apply(const torch::Tensor& x);

// w * (x / sqrt(mean(x^2) + eps)) over the last dim.
torch::Tensor train_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps);
// (h, n) = (x + a, train_rms_norm(x + a, w, eps)) in one pass, with one backward: a residual add and
// the norm that reads the sum (bit-identical to the two apart, autograd's sum of h's gradients
// included).
std::pair<torch::Tensor, torch::Tensor> train_add_rms_norm(const torch::Tensor& x, const torch::Tensor& a,
                                                           const torch::Tensor& w, double eps);

// silu(gate) * up for gate_up = [..., 2I] (gate first) -> [..., I].
torch::Tensor train_swiglu(const torch::Tensor& gate_up);

// The q | k | v projections qkv [..., (H + 2*KV) * D] split into q [..., H*D] and k [..., KV*D]
// with half-split RoPE applied, and v [..., KV*D]; cos/sin [N, D] float32 contiguous for the
// N = qkv.numel() / qkv.size(-1) rows. One node whose backward writes one qkv gradient. Either
// count of heads may be 0 (q alone, or k and v alone: that output is then empty).
std::vector<torch::Tensor> train_rope_split(const torch::Tensor& qkv, int64_t heads, int64_t kv_heads,
                                            const torch::Tensor& cos, const torch::Tensor& sin);

// The prompt K/V that a group of completion rows attends to first (GRPO's shared prompts).
struct TrainAttentionPrefix {
  torch::Tensor k, v;    // [P, Tp, KV*D] (rotated keys, values)
  torch::Tensor length;  // [P*G] int64 CPU: prompt keys each completion row sees
  int64_t group = 1;     // G completion rows per prompt
};

// Softmax attention of q [B,T,H*D] over k, v [B,T,KV*D] (query head h reads KV head h / (H/KV)),
// causal within each row; with first_key ([B*T] int64 CPU) query t sees own keys [first_key, t]
// only (packed rows); with a prefix, its first `length` keys come first. Returns [B,T,H*D].
// q may hold the last Tq < T positions only ([B,Tq,H*D]: the rest predict nothing a loss reads;
// without first_key): the result is then those positions' [B,Tq,H*D].
torch::Tensor train_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t heads,
                              int64_t kv_heads, const torch::Tensor& first_key,
                              const TrainAttentionPrefix* prefix = nullptr);

// train_rope_split then train_attention (no prefix, every query position) as one node over the
// packed qkv [B,T,(H+2KV)*D], contiguous: q and k are rotated in place in qkv, which nothing else
// may read afterwards nor have saved for a backward (a projection's output), the kernels read q, k,
// v where they lie, and the backward writes one qkv gradient. The same values as the two apart,
// without their copies.
torch::Tensor train_rope_attention(const torch::Tensor& qkv, int64_t heads, int64_t kv_heads, const torch::Tensor& cos,
                                   const torch::Tensor& sin, const torch::Tensor& first_key);

// first_key for packed rows from their segments [B,T] (a document is a run of one segment id):
// [B*T] int64 CPU. Undefined when some segment id appears in two runs of a row (then the mask is
// not "from the run's start", and the caller keeps the masked path).
torch::Tensor first_keys_from_segments(const torch::Tensor& segments);

}  // namespace r1kit
