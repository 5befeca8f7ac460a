#include "model/layer_ops.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>
#include <string>

#include "core/check.h"
#include "model/decode_weight_copy.h"
#include "model/cpu_kernels.h"
#include "model/sgemm_linear.h"

namespace r1kit {

namespace {

bool is_cpu_f32(const torch::Tensor& t) { return !t.defined() || (t.is_cpu() && t.scalar_type() == torch::kFloat32); }

bool records_grad(const torch::Tensor& t) { return t.defined() && t.requires_grad() && torch::GradMode::is_enabled(); }

bool onednn_applies(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return at::hasMKLDNN() && is_cpu_f32(x) && is_cpu_f32(w) && is_cpu_f32(b) && x.numel() > 0;
}

// A linear layer through oneDNN's inner product: forward, and both gradients, on [M, K] inputs.
// (Two classes because autograd functions take no undefined tensor inputs: with and without bias.)
torch::Tensor onednn_forward(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  c10::optional<torch::Tensor> bias;
  if (b.defined()) bias = b;
  return at::mkldnn_linear(x.to_mkldnn(), w, bias).to_dense();
}

torch::autograd::variable_list onednn_backward(torch::autograd::AutogradContext* ctx, const torch::Tensor& grad,
                                               bool has_bias) {
  const auto saved = ctx->get_saved_variables();
  const torch::Tensor& x = saved[0];
  const torch::Tensor& w = saved[1];
  const torch::Tensor dy = grad.contiguous().to_mkldnn();
  torch::Tensor dx, dw, db;
  if (ctx->needs_input_grad(0)) dx = at::mkldnn_linear_backward_input(x.sizes(), dy, w).to_dense();
  if (ctx->needs_input_grad(1) || (has_bias && ctx->needs_input_grad(2)))
    std::tie(dw, db) = at::mkldnn_linear_backward_weights(dy, x.to_mkldnn(), w, has_bias);
  if (has_bias) return {dx, dw, db};
  return {dx, dw};
}

class OneDnnLinear : public torch::autograd::Function<OneDnnLinear> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor w, torch::Tensor b) {
    ctx->save_for_backward({x, w});
    return onednn_forward(x, w, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list g) {
    return onednn_backward(ctx, g[0], true);
  }
};

class OneDnnLinearNoBias : public torch::autograd::Function<OneDnnLinearNoBias> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor w) {
    ctx->save_for_backward({x, w});
    return onednn_forward(x, w, {});
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list g) {
    return onednn_backward(ctx, g[0], false);
  }
};

torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t K = x.size(-1);
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = w.size(0);
  torch::Tensor x2 = x.reshape({-1, K}).contiguous();
  torch::Tensor y = b.defined() ? OneDnnLinear::apply(x2, w.contiguous(), b.contiguous())
                                : OneDnnLinearNoBias::apply(x2, w.contiguous());
  return y.view(out_shape);
}

// True when `t` can be overwritten as a fresh [M, N] float32 CPU result: only the caller's handle
// refers to it or its storage (no views or copies of a previous result are alive).
bool reusable(const torch::Tensor& t, int64_t M, int64_t N) {
  return t.defined() && t.use_count() == 1 && t.storage().use_count() == 1 && is_cpu_f32(t) && t.dim() == 2 &&
         t.size(0) == M && t.size(1) == N && t.is_contiguous();
}

torch::Tensor native_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                            torch::Tensor* reuse, DecodeWeightCopy* copies, const std::vector<torch::Tensor>& writers) {
  const int64_t K = x.size(-1), N = w.size(0);
  R1_CHECK(w.size(1) == K, "linear: input has ", K, " features, weight is ", w.sizes());
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = N;
  torch::Tensor x2 = x.reshape({-1, K});
  if (x2.stride(1) != 1) x2 = x2.contiguous();
  const torch::Tensor wc = w.contiguous();
  const torch::Tensor bc = b.defined() ? b.contiguous() : b;
  const int64_t M = x2.size(0);
  torch::Tensor y;
  if (reuse != nullptr && reusable(*reuse, M, N)) {
    y = *reuse;
  } else {
    y = torch::empty({M, N}, x.options());
    if (reuse != nullptr) *reuse = y;
  }
  if (M > 0) {
    cpu::LinearArgs a;
    a.x = x2.data_ptr<float>();
    a.ldx = x2.stride(0);
    a.rows = M;
    a.w = wc.data_ptr<float>();
    torch::Tensor packed, chunked;
    if (copies != nullptr) packed = copies->get(wc, writers);
    if (packed.defined()) {
      a.w_bf16 = reinterpret_cast<const uint32_t*>(packed.data_ptr<int32_t>());
      a.bf16_width = copies->width();
    } else if (copies != nullptr && M < 4) {
      chunked = copies->chunked(wc, writers);
      if (chunked.defined()) a.w_chunked = chunked.data_ptr<float>();
    }
    a.n = N;
    a.k = K;
    a.bias = bc.defined() ? bc.data_ptr<float>() : nullptr;
    a.y = y.data_ptr<float>();
    a.ldy = N;
    // Threads split the output columns in blocks of 8 (whole weight tiles); each block is worth
    // at least ~256k multiply-adds so that small calls stay on one thread.
    const int64_t blocks = (N + 7) / 8;
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, M * K * 8));
    const auto& k = cpu::kernels();
    at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) { k.linear(a, b0 * 8, std::min(N, b1 * 8)); });
  }
  return y.view(out_shape);
}

}  // namespace

int64_t row_grain(int64_t cols) { return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, cols)); }

bool native_applies(std::initializer_list<const torch::Tensor*> tensors) {
  for (const torch::Tensor* t : tensors)
    if (!is_cpu_f32(*t) || records_grad(*t)) return false;
  return true;
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, Kernels kernels,
                     torch::Tensor* reuse, DecodeWeightCopy* copies, const std::vector<torch::Tensor>& writers) {
  if (kernels == Kernels::kNative && native_applies({&x, &w, &b}))
    return native_linear(x, w, b, reuse, copies, writers);
  if (kernels == Kernels::kOneDnn && onednn_applies(x, w, b)) return onednn_linear(x, w, b);
  if (kernels == Kernels::kSgemm && sgemm_linear_available() && is_cpu_f32(x) && is_cpu_f32(w) && is_cpu_f32(b))
    return sgemm_linear(x, w, b);
  return torch::nn::functional::linear(x, w, b);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps, Kernels kernels) {
  if (kernels == Kernels::kNative && native_applies({&x, &w})) {
    const int64_t C = x.size(-1);
    torch::Tensor x2 = x.reshape({-1, C});
    if (x2.stride(1) != 1) x2 = x2.contiguous();
    const torch::Tensor wc = w.contiguous();
    torch::Tensor out = torch::empty(x.sizes(), x.options());
    const int64_t rows = x2.size(0);
    const auto& k = cpu::kernels();
    const float* xp = x2.data_ptr<float>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, rows, row_grain(C), [&](int64_t r0, int64_t r1) {
      k.rms_norm(xp + r0 * x2.stride(0), x2.stride(0), wc.data_ptr<float>(), op + r0 * C, r1 - r0, C, float(eps));
    });
    return out;
  }
  auto xf = x.to(torch::kFloat32);                                       // [..., C] f32
  auto rms = torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);   // [..., 1]
  return w * (xf * rms).to(x.scalar_type());
}

torch::Tensor silu_gate(const torch::Tensor& gate_up, Kernels kernels) {
  const int64_t I = gate_up.size(-1) / 2;
  if (kernels == Kernels::kNative && native_applies({&gate_up})) {
    torch::Tensor gu = gate_up.reshape({-1, 2 * I}).contiguous();
    std::vector<int64_t> shape(gate_up.sizes().begin(), gate_up.sizes().end());
    shape.back() = I;
    torch::Tensor out = torch::empty(shape, gate_up.options());
    const auto& k = cpu::kernels();
    const float* g = gu.data_ptr<float>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, gu.size(0), row_grain(I),
                     [&](int64_t r0, int64_t r1) { k.silu_mul(g + r0 * 2 * I, o + r0 * I, r1 - r0, I); });
    return out;
  }
  return torch::silu(gate_up.narrow(-1, 0, I)) * gate_up.narrow(-1, I, I);
}

void native_rope_(torch::Tensor& x2d, int64_t col, int64_t heads, const torch::Tensor& cos, const torch::Tensor& sin) {
  native_rope_into(x2d, col, x2d, col, heads, cos, sin);
}

void native_rope_into(const torch::Tensor& src2d, int64_t src_col, torch::Tensor& dst2d, int64_t dst_col,
                      int64_t heads, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t rows = src2d.size(0), D = cos.size(-1);
  R1_CHECK(src2d.stride(1) == 1 && dst2d.stride(1) == 1 && dst2d.size(0) == rows && cos.is_contiguous() &&
               sin.is_contiguous() && cos.size(0) == rows,
           "native_rope_: expected contiguous rows");
  const auto& k = cpu::kernels();
  const float* in = src2d.data_ptr<float>() + src_col;
  float* out = dst2d.data_ptr<float>() + dst_col;
  const int64_t ldi = src2d.stride(0), ldo = dst2d.stride(0);
  at::parallel_for(0, rows, row_grain(heads * D), [&](int64_t r0, int64_t r1) {
    k.rope(in + r0 * ldi, ldi, out + r0 * ldo, ldo, cos.data_ptr<float>() + r0 * D, sin.data_ptr<float>() + r0 * D,
           r1 - r0, heads, D);
  });
}

void native_cache_write(const torch::Tensor& x2d, int64_t k_col, int64_t v_col, torch::Tensor& k_cache,
                        torch::Tensor& v_cache, const std::vector<int64_t>& cache_row, const std::vector<int64_t>& past,
                        int64_t tokens) {
  const int64_t KV = k_cache.size(1), L = k_cache.size(2), D = k_cache.size(3);
  R1_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous() && x2d.stride(1) == 1,
           "native_cache_write: expected contiguous tensors");
  const float* src = x2d.data_ptr<float>();
  float* kc = k_cache.data_ptr<float>();
  float* vc = v_cache.data_ptr<float>();
  const int64_t ld = x2d.stride(0);
  for (size_t b = 0; b < cache_row.size(); ++b)
    for (int64_t t = 0; t < tokens; ++t) {
      const float* row = src + (int64_t(b) * tokens + t) * ld;
      for (int64_t g = 0; g < KV; ++g) {
        const int64_t dst = ((cache_row[b] * KV + g) * L + past[b] + t) * D;
        std::memcpy(kc + dst, row + k_col + g * D, sizeof(float) * D);
        std::memcpy(vc + dst, row + v_col + g * D, sizeof(float) * D);
      }
    }
}

torch::Tensor native_cached_attention(const torch::Tensor& x2d, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
                                      const std::vector<int64_t>& cache_row, const std::vector<int64_t>& past,
                                      int64_t tokens, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  const int64_t B = static_cast<int64_t>(cache_row.size());
  torch::Tensor out = torch::empty({B * tokens, heads * head_dim}, x2d.options());
  cpu::AttentionArgs a;
  a.q = x2d.data_ptr<float>();
  a.q_stride = x2d.stride(0);
  a.k_cache = k_cache.data_ptr<float>();
  a.v_cache = v_cache.data_ptr<float>();
  a.max_len = k_cache.size(2);
  a.cache_row = cache_row.data();
  a.past = past.data();
  a.batch = B;
  a.tokens = tokens;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = head_dim;
  a.scale = static_cast<float>(1.0 / std::sqrt(double(head_dim)));
  a.out = out.data_ptr<float>();
  a.out_stride = heads * head_dim;
  // One item per (row, KV head); items of long rows are worth more, so split finely.
  int64_t work = 0;
  for (int64_t b = 0; b < B; ++b) work += (past[b] + tokens) * tokens;
  const int64_t items = B * kv_heads;
  const int64_t per_item = std::max<int64_t>(1, work * heads * head_dim / std::max<int64_t>(1, items));
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / per_item);
  const auto& k = cpu::kernels();
  at::parallel_for(0, items, grain, [&](int64_t i0, int64_t i1) { k.attention(a, i0, i1); });
  return out;
}

Kernels cpu_training_kernels() {
  static const Kernels chosen = [] {
    // openblas_get_corename is OpenBLAS's own report of the kernel set it loaded; looked up at run time
    // so that builds against another BLAS (MKL in the official LibTorch) link and keep oneDNN.
    using CoreName = char* (*)();
    auto corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
    if (corename == nullptr || corename() == nullptr) return Kernels::kOneDnn;
    if (sgemm_linear_available()) return Kernels::kSgemm;
    std::string name = corename();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::set<std::string> generic = {"prescott", "core2",    "penryn", "dunnington", "nehalem",
                                                  "atom",     "katmai",   "coppermine", "northwood", "banias",
                                                  "sandybridge", "unknown"};
    return generic.count(name) ? Kernels::kOneDnn : Kernels::kAten;
  }();
  return chosen;
}

}  // namespace r1kit
