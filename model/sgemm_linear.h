// Linear layers for CPU float32 training through oneDNN's plain sgemm (`dnnl_sgemm`, row-major
// buffers, no layout conversions): forward y = x W^T + b, and both gradients dX = dY W and
// dW = dY^T X, in one autograd node. Why: Debian's LibTorch links OpenBLAS, whose sgemm with
// beta = 0 first writes zeros over the whole output and then accumulates into it, an extra pass over
// memory that cost ~3% of an SFT step on the tiny recipe; oneDNN's JIT kernels skip it and run the
// tiny recipe's shapes 3-10% faster. Together: SFT steps ~9% faster (docs/model.md).
//
// The symbol is looked up at run time: Debian's LibTorch links libdnnl.so.2 and so exports it; the
// official LibTorch keeps its oneDNN private (and runs MKL, which has no such pass), so there the
// trainers keep ATen's linear (layer_ops.h: Kernels::kSgemm falls back to kAten).
#pragma once
#include <torch/types.h>

namespace r1kit {

// True when the process has oneDNN's dnnl_sgemm.
bool sgemm_linear_available();

// x [..., K] @ w[N, K]^T (+ b[N]) -> [..., N], differentiable in x, w and b. Requires
// sgemm_linear_available() and CPU float32 tensors (b may be undefined).
torch::Tensor sgemm_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

}  // namespace r1kit
