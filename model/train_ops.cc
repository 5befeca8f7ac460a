#include "model/train_ops.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "core/check.h"
#include "model/cpu_kernels.h"
#include "model/layer_ops.h"

namespace r1kit {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// RMSNorm's weight gradient is summed per block of this many rows, then over blocks in order, so
// it does not depend on how the rows were split over threads.
constexpr int64_t kNormRowBlock = 64;

torch::Tensor flat_rows(const torch::Tensor& x) { return x.reshape({-1, x.size(-1)}).contiguous(); }

// Autograd takes no undefined tensor inputs: absent optional tensors travel as empty ones.
torch::Tensor none() { return torch::empty({0}, torch::kLong); }

// RMSNorm's backward over x2 [rows, C] (the norm's input) for dy like it: dx (+ dres, a residual's
// gradient of the same tensor, when defined) and, when want_dw, the weight's gradient.
std::pair<torch::Tensor, torch::Tensor> rms_norm_grads(const torch::Tensor& x2, const torch::Tensor& w,
                                                       const torch::Tensor& dy, const torch::Tensor& dres, float eps,
                                                       bool want_dw) {
  const int64_t rows = x2.size(0), C = x2.size(1), blocks = (rows + kNormRowBlock - 1) / kNormRowBlock;
  torch::Tensor dx = torch::empty_like(x2);
  torch::Tensor partial = want_dw ? torch::zeros({blocks, C}, x2.options()) : torch::Tensor();
  const float* res = dres.defined() ? dres.data_ptr<float>() : nullptr;
  const auto& k = cpu::kernels();
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kNormRowBlock, n = std::min(rows, r0 + kNormRowBlock) - r0;
      k.rms_norm_backward(x2.data_ptr<float>() + r0 * C, w.data_ptr<float>(), dy.data_ptr<float>() + r0 * C,
                          res != nullptr ? res + r0 * C : nullptr, n, C, eps, dx.data_ptr<float>() + r0 * C,
                          want_dw ? partial.data_ptr<float>() + b * C : nullptr);
    }
  });
  return {dx, want_dw ? partial.sum(0) : torch::Tensor()};
}

class RmsNormFn : public torch::autograd::Function<RmsNormFn> {
 public:
  // The forwards are layer_ops.h's native ones (autograd does not record inside a Function's forward).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w, double eps) {
    ctx->save_for_backward({flat_rows(x), w.contiguous()});
    ctx->saved_data["eps"] = eps;
    return rms_norm(x, w, eps, Kernels::kNative);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const float eps = float(ctx->saved_data["eps"].toDouble());
    auto [dx, dw] = rms_norm_grads(saved[0], saved[1], flat_rows(grads[0]), torch::Tensor(), eps,
                                   ctx->needs_input_grad(1));
    return {dx.view(grads[0].sizes()), dw, torch::Tensor()};
  }
};

// (h, n) = (x + a, rms_norm(x + a)): a residual add and the norm that reads its sum. The backward
// adds h's own gradient into the norm's dx, so autograd sums no second gradient of h.
class AddRmsNormFn : public torch::autograd::Function<AddRmsNormFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& a,
                               const torch::Tensor& w, double eps) {
    const torch::Tensor x2 = flat_rows(x), a2 = flat_rows(a), wc = w.contiguous();
    const int64_t rows = x2.size(0), C = x2.size(1);
    torch::Tensor h = torch::empty_like(x2), n = torch::empty_like(x2);
    const auto& k = cpu::kernels();
    at::parallel_for(0, rows, row_grain(C), [&](int64_t r0, int64_t r1) {
      k.add_rms_norm(x2.data_ptr<float>() + r0 * C, a2.data_ptr<float>() + r0 * C, h.data_ptr<float>() + r0 * C,
                     wc.data_ptr<float>(), n.data_ptr<float>() + r0 * C, r1 - r0, C, float(eps));
    });
    ctx->save_for_backward({h, wc});
    ctx->saved_data["eps"] = eps;
    return {h.view(x.sizes()), n.view(x.sizes())};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const float eps = float(ctx->saved_data["eps"].toDouble());
    const torch::Tensor& dn = grads[1];
    const torch::Tensor dh = grads[0].defined() ? flat_rows(grads[0]) : torch::Tensor();
    torch::Tensor dx, dw;
    if (dn.defined()) {
      std::tie(dx, dw) = rms_norm_grads(saved[0], saved[1], flat_rows(dn), dh, eps, ctx->needs_input_grad(2));
    } else {
      dx = dh;  // the norm's output unused: only the sum's gradient
    }
    if (!dx.defined()) return {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    const auto& like = grads[1].defined() ? grads[1] : grads[0];
    dx = dx.view(like.sizes());
    return {dx, dx, dw, torch::Tensor()};
  }
};

// gate_up [rows, 2I] (gate first) -> [rows, I].
class SwigluFn : public torch::autograd::Function<SwigluFn> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_up) {
    ctx->save_for_backward({flat_rows(gate_up)});
    return silu_gate(gate_up, Kernels::kNative);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor gu = ctx->get_saved_variables()[0];
    const torch::Tensor dy = flat_rows(grads[0]);
    const int64_t rows = gu.size(0), I = gu.size(1) / 2;
    torch::Tensor dgu = torch::empty_like(gu);
    const float* g = gu.data_ptr<float>();
    const float* d = dy.data_ptr<float>();
    float* dg = dgu.data_ptr<float>();
    const auto& k = cpu::kernels();
    at::parallel_for(0, rows, row_grain(I), [&](int64_t r0, int64_t r1) {
      k.silu_mul_backward(g + r0 * 2 * I, d + r0 * I, dg + r0 * 2 * I, r1 - r0, I);
    });
    std::vector<int64_t> shape(grads[0].sizes().begin(), grads[0].sizes().end());
    shape.back() = 2 * I;
    return {dgu.view(shape)};
  }
};

// The rotation's transpose is the same rotation with sin' = -(sin[D/2:], sin[:D/2]).
torch::Tensor transposed_rotation_sin(const torch::Tensor& sin) {
  const int64_t half = sin.size(1) / 2;
  return torch::cat({sin.narrow(1, half, half), sin.narrow(1, 0, half)}, 1).neg_();
}

class RopeSplitFn : public torch::autograd::Function<RopeSplitFn> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& qkv, const torch::Tensor& cos,
                               const torch::Tensor& sin, int64_t heads, int64_t kv_heads) {
    const int64_t W = qkv.size(-1), D = cos.size(1), N = qkv.numel() / W;
    const torch::Tensor x = qkv.reshape({N, W}).contiguous();
    torch::Tensor q = torch::empty({N, heads * D}, x.options()), k = torch::empty({N, kv_heads * D}, x.options());
    if (heads > 0) native_rope_into(x, 0, q, 0, heads, cos, sin);  // rotated straight out of qkv: no copy first
    if (kv_heads > 0) native_rope_into(x, heads * D, k, 0, kv_heads, cos, sin);
    torch::Tensor v = x.narrow(1, (heads + kv_heads) * D, kv_heads * D).contiguous();
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv_heads"] = kv_heads;
    std::vector<int64_t> shape(qkv.sizes().begin(), qkv.sizes().end());
    shape.back() = heads * D;
    std::vector<int64_t> kv_shape = shape;
    kv_shape.back() = kv_heads * D;
    return {q.view(shape), k.view(kv_shape), v.view(kv_shape)};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor cos = ctx->saved_data["cos"].toTensor(), sin = ctx->saved_data["sin"].toTensor();
    const int64_t H = ctx->saved_data["heads"].toInt(), KV = ctx->saved_data["kv_heads"].toInt();
    const int64_t D = cos.size(1), N = cos.size(0), W = (H + 2 * KV) * D;
    const torch::Tensor sin_t = transposed_rotation_sin(sin);
    const auto& like = grads[0].defined() ? grads[0] : grads[1].defined() ? grads[1] : grads[2];
    torch::Tensor dx = torch::empty({N, W}, like.options());
    const int64_t widths[3] = {H * D, KV * D, KV * D}, heads[2] = {H, KV};
    int64_t col = 0;
    for (int i = 0; i < 3; ++i) {
      if (widths[i] == 0) continue;  // q alone, or k and v alone
      auto part = dx.narrow(1, col, widths[i]);
      if (!grads[i].defined())
        part.zero_();
      else if (i < 2)  // dq, dk rotated back straight into their columns
        native_rope_into(grads[i].reshape({N, widths[i]}).contiguous(), 0, dx, col, heads[i], cos, sin_t);
      else
        part.copy_(grads[i].reshape({N, widths[i]}));
      col += widths[i];
    }
    std::vector<int64_t> shape(like.sizes().begin(), like.sizes().end());
    shape.back() = W;
    return {dx.view(shape), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

cpu::TrainAttentionArgs attention_args(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const torch::Tensor& pk, const torch::Tensor& pv, const torch::Tensor& first_key,
                                       const torch::Tensor& prefix_len, int64_t heads, int64_t kv_heads, int64_t group) {
  cpu::TrainAttentionArgs a;
  a.batch = q.size(0);
  a.tokens = k.size(1);
  a.first_query = k.size(1) - q.size(1);
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = q.size(2) / heads;
  a.scale = float(1.0 / std::sqrt(double(a.head_dim)));
  a.q = q.data_ptr<float>();
  a.q_stride = q.stride(1);  // q, k, v may be column ranges of one packed qkv
  a.k = k.data_ptr<float>();
  a.v = v.data_ptr<float>();
  a.kv_stride = k.stride(1);
  if (first_key.numel() > 0) a.first_key = first_key.data_ptr<int64_t>();
  if (pk.numel() > 0) {
    a.prefix_k = pk.data_ptr<float>();
    a.prefix_v = pv.data_ptr<float>();
    a.prefix_stride = pk.size(2);
    a.prefix_tokens = pk.size(1);
    a.prefix_len = prefix_len.data_ptr<int64_t>();
    a.group = group;
  }
  return a;
}

// The forward kernels over a (inputs set): out [B, Tq, H*D] and the log-sum-exp [B, H, Tq].
std::pair<torch::Tensor, torch::Tensor> run_attention_forward(cpu::TrainAttentionArgs& a,
                                                              const torch::TensorOptions& options) {
  const int64_t Tq = a.tokens - a.first_query;
  torch::Tensor out = torch::empty({a.batch, Tq, a.heads * a.head_dim}, options);
  torch::Tensor lse = torch::empty({a.batch, a.heads, Tq}, options);
  a.out = out.data_ptr<float>();
  a.lse = lse.data_ptr<float>();
  const auto& kern = cpu::kernels();
  at::parallel_for(0, a.batch / a.group * a.kv_heads, 1,
                   [&](int64_t i0, int64_t i1) { kern.attention_train_forward(a, i0, i1); });
  return {out, lse};
}

// The backward kernels over a (gradient outputs set) from the forward's lse and dout.
void run_attention_backward(cpu::TrainAttentionArgs& a, const torch::Tensor& lse, const torch::Tensor& dout) {
  a.lse = const_cast<float*>(lse.data_ptr<float>());
  a.dout = dout.data_ptr<float>();
  const auto& kern = cpu::kernels();
  at::parallel_for(0, a.batch / a.group * a.kv_heads, 1,
                   [&](int64_t i0, int64_t i1) { kern.attention_train_backward(a, i0, i1); });
}

class AttentionFn : public torch::autograd::Function<AttentionFn> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& pk, const torch::Tensor& pv,
                               const torch::Tensor& first_key, const torch::Tensor& prefix_len, int64_t heads,
                               int64_t kv_heads, int64_t group) {
    cpu::TrainAttentionArgs a = attention_args(q, k, v, pk, pv, first_key, prefix_len, heads, kv_heads, group);
    const auto [out, lse] = run_attention_forward(a, q.options());
    ctx->save_for_backward({q, k, v, pk, pv});
    ctx->saved_data["lse"] = lse;
    ctx->saved_data["first_key"] = first_key;
    ctx->saved_data["prefix_len"] = prefix_len;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv_heads"] = kv_heads;
    ctx->saved_data["group"] = group;
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto s = ctx->get_saved_variables();
    const torch::Tensor &q = s[0], &k = s[1], &v = s[2], &pk = s[3], &pv = s[4];
    const torch::Tensor lse = ctx->saved_data["lse"].toTensor();
    const int64_t heads = ctx->saved_data["heads"].toInt(), kv_heads = ctx->saved_data["kv_heads"].toInt();
    cpu::TrainAttentionArgs a = attention_args(q, k, v, pk, pv, ctx->saved_data["first_key"].toTensor(),
                                               ctx->saved_data["prefix_len"].toTensor(), heads, kv_heads,
                                               ctx->saved_data["group"].toInt());
    const torch::Tensor dout = grads[0].contiguous();
    torch::Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const bool prefix = pk.numel() > 0;
    torch::Tensor dpk = prefix ? torch::empty_like(pk) : torch::Tensor();
    torch::Tensor dpv = prefix ? torch::empty_like(pv) : torch::Tensor();
    a.dq = dq.data_ptr<float>();
    a.dk = dk.data_ptr<float>();
    a.dv = dv.data_ptr<float>();
    if (prefix) {
      a.dprefix_k = dpk.data_ptr<float>();
      a.dprefix_v = dpv.data_ptr<float>();
    }
    run_attention_backward(a, lse, dout);
    return {dq, dk, dv, dpk, dpv, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// RoPE and attention over one packed qkv [B,T,(H+2KV)*D] (no prefix, every query position): q and
// k are rotated in place in qkv and the kernels read q, k, v as its column ranges; the backward
// writes dq, dk, dv into one packed gradient and rotates its q and k columns back in place. The same
// values as train_rope_split + train_attention, without their separate q, k, v copies and gradient
// copies. Not marked dirty: qkv is a projection's output that nothing else reads (a dirty view
// would cost autograd a copy of the whole gradient), and the values saved for backward are the
// rotated ones, saved after the rotation.
class RopeAttentionFn : public torch::autograd::Function<RopeAttentionFn> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& qkv, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& first_key, int64_t heads,
                               int64_t kv_heads) {
    torch::Tensor x = qkv.view({-1, qkv.size(-1)});
    native_rope_into(x, 0, x, 0, heads + kv_heads, cos, sin);
    cpu::TrainAttentionArgs a = packed_args(qkv, first_key, heads, kv_heads);
    const auto [out, lse] = run_attention_forward(a, qkv.options());
    ctx->save_for_backward({qkv});
    ctx->saved_data["lse"] = lse;
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    ctx->saved_data["first_key"] = first_key;
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["kv_heads"] = kv_heads;
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor qkv = ctx->get_saved_variables()[0];
    const int64_t H = ctx->saved_data["heads"].toInt(), KV = ctx->saved_data["kv_heads"].toInt();
    const torch::Tensor lse = ctx->saved_data["lse"].toTensor();
    cpu::TrainAttentionArgs a = packed_args(qkv, ctx->saved_data["first_key"].toTensor(), H, KV);
    torch::Tensor dqkv = torch::empty_like(qkv);
    const int64_t W = qkv.size(-1), D = a.head_dim;
    a.dq = dqkv.data_ptr<float>();
    a.dk = a.dq + H * D;
    a.dv = a.dq + (H + KV) * D;
    a.dq_stride = a.dkv_stride = W;
    run_attention_backward(a, lse, grads[0].contiguous());
    const torch::Tensor cos = ctx->saved_data["cos"].toTensor(), sin = ctx->saved_data["sin"].toTensor();
    torch::Tensor dx = dqkv.view({-1, W});
    native_rope_into(dx, 0, dx, 0, H + KV, cos, transposed_rotation_sin(sin));
    return {dqkv, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }

 private:
  // q, k, v as column ranges of qkv.
  static cpu::TrainAttentionArgs packed_args(const torch::Tensor& qkv, const torch::Tensor& first_key, int64_t heads,
                                             int64_t kv_heads) {
    const int64_t D = qkv.size(2) / (heads + 2 * kv_heads);
    return attention_args(qkv.narrow(2, 0, heads * D), qkv.narrow(2, heads * D, kv_heads * D),
                          qkv.narrow(2, (heads + kv_heads) * D, kv_heads * D), none(), none(), first_key, none(), heads,
                          kv_heads, 1);
  }
};

}  // namespace

bool train_ops_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("R1_TRAIN_OPS");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled;
}

bool train_ops_apply(const torch::Tensor& x) { return x.is_cpu() && x.scalar_type() == torch::kFloat32; }

torch::Tensor train_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  R1_CHECK(train_ops_apply(x) && train_ops_apply(w) && w.dim() == 1 && w.size(0) == x.size(-1),
           "train_rms_norm: expected CPU float32 x [..., C] and weight [C], got ", x.sizes(), " and ", w.sizes());
  return RmsNormFn::apply(x, w, eps);
}

torch::Tensor train_swiglu(const torch::Tensor& gate_up) {
  R1_CHECK(train_ops_apply(gate_up) && gate_up.dim() >= 1 && gate_up.size(-1) % 2 == 0 && gate_up.size(-1) > 0,
           "train_swiglu: expected CPU float32 gate_up [..., 2I], got ", gate_up.sizes());
  return SwigluFn::apply(gate_up);
}

std::pair<torch::Tensor, torch::Tensor> train_add_rms_norm(const torch::Tensor& x, const torch::Tensor& a,
                                                           const torch::Tensor& w, double eps) {
  R1_CHECK(train_ops_apply(x) && train_ops_apply(a) && train_ops_apply(w) && x.sizes() == a.sizes() && w.dim() == 1 &&
               w.size(0) == x.size(-1),
           "train_add_rms_norm: expected CPU float32 x and a [..., C] of one shape and weight [C], got ", x.sizes(),
           ", ", a.sizes(), " and ", w.sizes());
  const auto hn = AddRmsNormFn::apply(x, a, w, eps);
  return {hn[0], hn[1]};
}

std::vector<torch::Tensor> train_rope_split(const torch::Tensor& qkv, int64_t heads, int64_t kv_heads,
                                            const torch::Tensor& cos, const torch::Tensor& sin) {
  R1_CHECK(train_ops_apply(qkv) && heads >= 0 && kv_heads >= 0 && heads + kv_heads > 0 && cos.dim() == 2 &&
               cos.sizes() == sin.sizes() && cos.size(1) % 2 == 0 && qkv.size(-1) == (heads + 2 * kv_heads) * cos.size(1) &&
               qkv.numel() == cos.size(0) * qkv.size(-1) && cos.is_contiguous() && sin.is_contiguous() &&
               cos.scalar_type() == torch::kFloat32 && sin.scalar_type() == torch::kFloat32,
           "train_rope_split: expected CPU float32 qkv [N, (H+2KV)*D] and contiguous float32 cos/sin [N, D], got ",
           qkv.sizes(), " with ", heads, "/", kv_heads, " heads and ", cos.sizes());
  return RopeSplitFn::apply(qkv, cos, sin, heads, kv_heads);
}

torch::Tensor train_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t heads,
                              int64_t kv_heads, const torch::Tensor& first_key, const TrainAttentionPrefix* prefix) {
  R1_CHECK(q.dim() == 3 && k.dim() == 3 && k.sizes() == v.sizes() && q.size(0) == k.size(0) && q.size(1) <= k.size(1) &&
               q.size(1) > 0 &&
               heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && q.size(2) % heads == 0 &&
               k.size(2) == q.size(2) / heads * kv_heads && train_ops_apply(q) && train_ops_apply(k) &&
               train_ops_apply(v),
           "train_attention: expected CPU float32 q [B,Tq,H*D] (Tq <= T), k and v [B,T,KV*D], got ", q.sizes(), ", ",
           k.sizes(),
           ", ", v.sizes(), " for ", heads, "/", kv_heads, " heads");
  const int64_t B = q.size(0), T = k.size(1);
  R1_CHECK(q.size(1) == T || !first_key.defined(),
           "train_attention: queries at the last ", q.size(1), " of ", T, " positions take no first_key");
  torch::Tensor fk = none(), pk = none(), pv = none(), plen = none();
  int64_t group = 1;
  if (first_key.defined()) {
    R1_CHECK(first_key.is_cpu() && first_key.scalar_type() == torch::kLong && first_key.numel() == B * T,
             "train_attention: first_key must be [B*T] int64 on the CPU, got ", first_key.sizes());
    fk = first_key.contiguous();
  }
  if (prefix != nullptr) {
    group = prefix->group;
    R1_CHECK(group >= 1 && B % group == 0 && prefix->k.dim() == 3 && prefix->k.size(0) == B / group &&
                 prefix->k.size(2) == k.size(2) && prefix->v.sizes() == prefix->k.sizes() &&
                 prefix->length.numel() == B && prefix->length.scalar_type() == torch::kLong &&
                 train_ops_apply(prefix->k) && train_ops_apply(prefix->v),
             "train_attention: the prefix must be [B/G, Tp, KV*D] float32 with B lengths, got ", prefix->k.sizes(),
             " for ", B, " rows in groups of ", group);
    pk = prefix->k.contiguous();
    pv = prefix->v.contiguous();
    plen = prefix->length.to(torch::kCPU).contiguous();
  }
  return AttentionFn::apply(q.contiguous(), k.contiguous(), v.contiguous(), pk, pv, fk, plen, heads, kv_heads, group);
}

torch::Tensor train_rope_attention(const torch::Tensor& qkv, int64_t heads, int64_t kv_heads, const torch::Tensor& cos,
                                   const torch::Tensor& sin, const torch::Tensor& first_key) {
  R1_CHECK(train_ops_apply(qkv) && qkv.dim() == 3 && qkv.is_contiguous() && heads > 0 && kv_heads > 0 &&
               heads % kv_heads == 0 && cos.dim() == 2 && cos.sizes() == sin.sizes() && cos.size(1) % 2 == 0 &&
               qkv.size(2) == (heads + 2 * kv_heads) * cos.size(1) && cos.size(0) == qkv.size(0) * qkv.size(1) &&
               cos.is_contiguous() && sin.is_contiguous() && cos.scalar_type() == torch::kFloat32 &&
               sin.scalar_type() == torch::kFloat32,
           "train_rope_attention: expected a contiguous CPU float32 qkv [B,T,(H+2KV)*D] and contiguous float32 "
           "cos/sin [B*T, D], got ",
           qkv.sizes(), " with ", heads, "/", kv_heads, " heads and ", cos.sizes());
  torch::Tensor fk = none();
  if (first_key.defined()) {
    R1_CHECK(first_key.is_cpu() && first_key.scalar_type() == torch::kLong &&
                 first_key.numel() == qkv.size(0) * qkv.size(1),
             "train_rope_attention: first_key must be [B*T] int64 on the CPU, got ", first_key.sizes());
    fk = first_key.contiguous();
  }
  return RopeAttentionFn::apply(qkv, cos, sin, fk, heads, kv_heads);
}

torch::Tensor first_keys_from_segments(const torch::Tensor& segments) {
  const torch::Tensor seg = segments.to(torch::kCPU, torch::kLong).contiguous();
  R1_CHECK(seg.dim() == 2, "first_keys_from_segments: segments must be [B,T], got ", seg.sizes());
  const int64_t B = seg.size(0), T = seg.size(1);
  torch::Tensor first = torch::empty({B * T}, torch::kLong);
  const int64_t* s = seg.data_ptr<int64_t>();
  int64_t* f = first.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    std::unordered_set<int64_t> seen;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      if (t > 0 && s[i] == s[i - 1]) {
        f[i] = f[i - 1];
        continue;
      }
      if (!seen.insert(s[i]).second) return torch::Tensor();  // an id in two runs
      f[i] = t;
    }
  }
  return first;
}

}  // namespace r1kit
