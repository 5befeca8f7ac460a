// The fused CPU float32 training ops (model/train_ops.h) against their eager ATen formulas, forward
// plus backward, measured in the same run on the tiny recipe's SFT shapes by default (64 rows of 35
// tokens, 4 heads of 48, SwiGLU 512). Prints per-op milliseconds and fused / eager.
//
//   build/bench/train_ops_bench [rows tokens heads kv_heads head_dim inter reps]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <vector>

#include "model/threads.h"
#include "model/train_ops.h"

using namespace r1kit;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median of `reps` timed calls after one warm-up, in milliseconds.
double median_ms(const std::function<void()>& fn, int reps) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now();
    fn();
    t.push_back(1e3 * (now() - t0));
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[reps / 2];
}

torch::Tensor leaf(const torch::Tensor& x) { return x.clone().requires_grad_(true); }

// Forward, then backward of sum(y * up) into the leaves.
void fwd_bwd(const std::function<torch::Tensor()>& forward, const torch::Tensor& up) {
  const torch::Tensor y = forward();
  y.backward(up);
}

}  // namespace

int main(int argc, char** argv) {
  auto arg = [&](int i, int64_t def) { return argc > i ? std::atoll(argv[i]) : def; };
  const int64_t B = arg(1, 64), T = arg(2, 35), H = arg(3, 4), KV = arg(4, 4), D = arg(5, 48), I = arg(6, 512);
  const int reps = static_cast<int>(arg(7, 30));
  const int64_t C = H * D, R = H / KV;
  const int threads = set_default_threads();
  if (!train_ops_enabled()) {
    std::fprintf(stderr, "train_ops_bench: R1_TRAIN_OPS=0 is set; unset it to measure the fused ops\n");
    return 1;
  }
  std::printf("rows %lld x tokens %lld, heads %lld / kv %lld, head_dim %lld, inter %lld, %d threads, median of %d\n\n",
              (long long)B, (long long)T, (long long)H, (long long)KV, (long long)D, (long long)I, threads, reps);
  std::printf("| op (forward + backward) | fused ms | eager ms | fused / eager |\n|---|---:|---:|---:|\n");
  torch::manual_seed(0);
  auto report = [&](const char* name, const std::function<void()>& fused, const std::function<void()>& eager) {
    const double f = median_ms(fused, reps), e = median_ms(eager, reps);
    std::printf("| %s | %.2f | %.2f | %.2fx |\n", name, f, e, f / e);
  };

  {  // attention: causal over each row, grouped heads
    const auto q = leaf(torch::randn({B, T, H * D})), k = leaf(torch::randn({B, T, KV * D})),
               v = leaf(torch::randn({B, T, KV * D}));
    const auto up = torch::randn({B, T, H * D});
    const auto causal = torch::ones({T, T}, torch::kBool).tril();
    report("attention", [&] { fwd_bwd([&] { return train_attention(q, k, v, H, KV, {}); }, up); },
           [&] {
             fwd_bwd([&] {
               auto qh = q.view({B, T, H, D}).transpose(1, 2);
               auto kh = k.view({B, T, KV, D}).transpose(1, 2).repeat_interleave(R, 1);
               auto vh = v.view({B, T, KV, D}).transpose(1, 2).repeat_interleave(R, 1);
               auto s = torch::matmul(qh, kh.transpose(-1, -2)).mul(1.0 / std::sqrt(double(D)));
               s = s.masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
               return torch::matmul(torch::softmax(s, -1), vh).transpose(1, 2).reshape({B, T, H * D});
             }, up);
           });
  }
  {  // SwiGLU gate on gate|up
    const auto gu = leaf(torch::randn({B * T, 2 * I}));
    const auto up = torch::randn({B * T, I});
    report("swiglu", [&] { fwd_bwd([&] { return train_swiglu(gu); }, up); },
           [&] { fwd_bwd([&] { return torch::silu(gu.narrow(1, 0, I)) * gu.narrow(1, I, I); }, up); });
  }
  {  // RMSNorm
    const auto x = leaf(torch::randn({B * T, C})), w = leaf(torch::rand({C}) + 0.5);
    const auto up = torch::randn({B * T, C});
    report("rms_norm", [&] { fwd_bwd([&] { return train_rms_norm(x, w, 1e-6); }, up); },
           [&] {
             fwd_bwd([&] { return w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6)); }, up);
           });
  }
  {  // q|k|v split + RoPE
    const int64_t W = (H + 2 * KV) * D;
    const auto qkv = leaf(torch::randn({B * T, W}));
    const auto pos = torch::arange(T, torch::kFloat32).repeat({B}).unsqueeze(1);                      // [N,1]
    const auto inv = torch::pow(10000.0, -torch::arange(0, D, 2, torch::kFloat32) / double(D));  // [D/2]
    const auto ang = torch::cat({pos * inv, pos * inv}, 1);                                          // [N,D]
    const auto cos = ang.cos().contiguous(), sin = ang.sin().contiguous();
    const auto uq = torch::randn({B * T, H * D}), uk = torch::randn({B * T, KV * D}), uv = torch::randn({B * T, KV * D});
    auto rotate = [&](const torch::Tensor& x, int64_t heads) {  // x [N, heads*D]
      const auto xh = x.view({B * T, heads, D});
      const auto rot = torch::cat({-xh.narrow(2, D / 2, D / 2), xh.narrow(2, 0, D / 2)}, 2);
      return (xh * cos.unsqueeze(1) + rot * sin.unsqueeze(1)).reshape({B * T, heads * D});
    };
    report("rope_split",
           [&] {
             const auto o = train_rope_split(qkv, H, KV, cos, sin);
             ((o[0] * uq).sum() + (o[1] * uk).sum() + (o[2] * uv).sum()).backward();
           },
           [&] {
             const auto q = rotate(qkv.narrow(1, 0, H * D), H), k = rotate(qkv.narrow(1, H * D, KV * D), KV);
             const auto v = qkv.narrow(1, (H + KV) * D, KV * D);
             ((q * uq).sum() + (k * uk).sum() + (v * uv).sum()).backward();
           });
  }
  return 0;
}
