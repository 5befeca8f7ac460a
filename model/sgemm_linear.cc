#include "model/sgemm_linear.h"

#include <torch/torch.h>

#include <dlfcn.h>

#include <cstring>

#include <vector>

#include "core/check.h"

namespace r1kit {

namespace {

// oneDNN's C API: dnnl_status_t dnnl_sgemm(char transa, char transb, dnnl_dim_t M, N, K, float alpha,
// const float* A, dnnl_dim_t lda, const float* B, dnnl_dim_t ldb, float beta, float* C, dnnl_dim_t ldc),
// row-major, dnnl_dim_t = int64_t, dnnl_success = 0.
using SgemmFn = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                        float, float*, int64_t);

SgemmFn sgemm_fn() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

// C [M, N] = op(A) op(B) (+ C when accumulate), row-major, contiguous operands.
void sgemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const torch::Tensor& a, const torch::Tensor& b,
           torch::Tensor& c, bool accumulate) {
  const int64_t lda = ta == 'N' ? K : M, ldb = tb == 'N' ? N : K;
  const int status = sgemm_fn()(ta, tb, M, N, K, 1.0f, a.data_ptr<float>(), lda, b.data_ptr<float>(), ldb,
                                accumulate ? 1.0f : 0.0f, c.data_ptr<float>(), N);
  R1_CHECK(status == 0, "sgemm_linear: dnnl_sgemm(", ta, tb, ", ", M, "x", N, "x", K, ") failed with status ", status);
}

// x2 [M, K], w [N, K] contiguous; b [N] or empty.
torch::Tensor forward_2d(const torch::Tensor& x2, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
  torch::Tensor y = torch::empty({M, N}, x2.options());
  const bool bias = b.numel() > 0;
  if (bias) {  // the product accumulates onto the bias: one pass, not two
    const float* bp = b.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    for (int64_t m = 0; m < M; ++m) std::memcpy(yp + m * N, bp, static_cast<size_t>(N) * sizeof(float));
  }
  sgemm('N', 'T', M, N, K, x2, w, y, bias);
  return y;
}

// Autograd takes no undefined inputs: no bias travels as an empty tensor.
class SgemmLinearFn : public torch::autograd::Function<SgemmLinearFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x2, const torch::Tensor& w,
                               const torch::Tensor& b) {
    ctx->save_for_backward({x2, w});
    ctx->saved_data["bias"] = b.numel() > 0;
    return forward_2d(x2, w, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x2 = saved[0], &w = saved[1];
    const torch::Tensor dy = grads[0].contiguous();
    const int64_t M = x2.size(0), K = x2.size(1), N = w.size(0);
    torch::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty({M, K}, x2.options());
      sgemm('N', 'N', M, K, N, dy, w, dx, false);  // dY W
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty({N, K}, w.options());
      sgemm('T', 'N', N, K, M, dy, x2, dw, false);  // dY^T X
    }
    if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
    return {dx, dw, db};
  }
};

}  // namespace

bool sgemm_linear_available() { return sgemm_fn() != nullptr; }

torch::Tensor sgemm_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  R1_CHECK(sgemm_linear_available(), "sgemm_linear: this process has no dnnl_sgemm (oneDNN)");
  auto f32_cpu = [](const torch::Tensor& t) { return t.is_cpu() && t.scalar_type() == torch::kFloat32; };
  R1_CHECK(f32_cpu(x) && f32_cpu(w) && (!b.defined() || f32_cpu(b)) && w.dim() == 2 && w.size(1) == x.size(-1) &&
               (!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0))),
           "sgemm_linear: expected CPU float32 x [..., K], w [N, K], b [N], got ", x.sizes(), ", ", w.sizes(),
           b.defined() ? ", bias" : "");
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = w.size(0);
  const torch::Tensor x2 = x.reshape({-1, x.size(-1)}).contiguous();
  const torch::Tensor wc = w.contiguous();
  const torch::Tensor bc = b.defined() ? b.contiguous() : torch::empty({0}, x.options());
  const bool records = torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || bc.requires_grad());
  if (x2.size(0) == 0 || w.size(0) == 0 || x2.size(1) == 0)  // nothing for the kernel: ATen's answer
    return torch::nn::functional::linear(x, w, b);
  const torch::Tensor y = records ? SgemmLinearFn::apply(x2, wc, bc) : forward_2d(x2, wc, bc);
  return y.view(out_shape);
}

}  // namespace r1kit
