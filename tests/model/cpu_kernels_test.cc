// The decode kernels (model/cpu_kernels.h) for every instruction set this CPU has, against float64
// references: linear (with bias / accumulate, every tile remainder), attention over a ragged cache
// (GQA, T > 1), RMSNorm, RoPE, SiLU-gate, exp and argmax passes. Batch invariance is checked bit
// for bit: a row computed alone equals the same row inside any batch, and the result does not
// depend on how the output columns are split over threads.
#include "model/cpu_kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tests/model/model_test_util.h"

using namespace r1kit;

namespace {

std::vector<std::string> isas() {
  std::vector<std::string> out;
  for (const char* isa : {"generic", "avx2", "avx512"})
    if (cpu::kernels_for(isa)) out.push_back(isa);
  return out;
}

double max_rel(const torch::Tensor& got, const torch::Tensor& want) {
  auto g = got.to(torch::kFloat64), w = want.to(torch::kFloat64);
  return ((g - w).abs() / (w.abs() + 1.0)).max().item<double>();
}

torch::Tensor run_linear(const cpu::KernelTable& k, const torch::Tensor& x, const torch::Tensor& w,
                         const torch::Tensor& b, torch::Tensor y, bool accumulate, int64_t split = 0) {
  cpu::LinearArgs a;
  a.x = x.data_ptr<float>();
  a.ldx = x.stride(0);
  a.rows = x.size(0);
  a.w = w.data_ptr<float>();
  a.n = w.size(0);
  a.k = w.size(1);
  a.bias = b.defined() ? b.data_ptr<float>() : nullptr;
  a.y = y.data_ptr<float>();
  a.ldy = y.stride(0);
  a.accumulate = accumulate;
  if (split <= 0 || split >= a.n) {
    k.linear(a, 0, a.n);
  } else {  // two "threads": columns [0, split) and [split, n)
    k.linear(a, 0, split);
    k.linear(a, split, a.n);
  }
  return y;
}

// y0 (+)= x w^T + b with the [N, K] weights read from a copy only (a.w is null: it must not be read);
// use_copy points the arguments at the copy. Columns in two calls, split at `split` (two "threads").
template <class F>
torch::Tensor run_from_copy(const cpu::KernelTable& k, const torch::Tensor& x, int64_t N, const torch::Tensor& b,
                            const torch::Tensor& y0, bool accumulate, int64_t split, F&& use_copy) {
  cpu::LinearArgs a;
  a.x = x.data_ptr<float>();
  a.ldx = x.size(1);
  a.rows = x.size(0);
  a.w = nullptr;
  use_copy(a);
  a.n = N;
  a.k = x.size(1);
  a.bias = b.data_ptr<float>();
  auto got = y0.clone();
  a.y = got.data_ptr<float>();
  a.ldy = N;
  a.accumulate = accumulate;
  k.linear(a, 0, split);
  if (split < N) k.linear(a, split, N);
  return got;
}

class Kernels : public testing::TestWithParam<std::string> {
 protected:
  const cpu::KernelTable& k() const { return *cpu::kernels_for(GetParam().c_str()); }
};

TEST_P(Kernels, LinearMatchesFloat64AndIsBatchInvariant) {
  torch::manual_seed(1);
  double worst = 0, worst_long = 0;  // K <= 512; longer sums (> 1024: in blocks of k) round more
  for (int64_t K : {1, 7, 16, 17, 100, 512, 1024, 1025, 2100}) {
    double& err = K <= 512 ? worst : worst_long;
    for (int64_t N : {1, 5, 8, 9, 36}) {
      auto w = torch::randn({N, K});
      auto b = torch::randn({N});
      auto x = torch::randn({70, K});
      const auto want = (x.to(torch::kFloat64).matmul(w.to(torch::kFloat64).t()) + b.to(torch::kFloat64));
      auto all = run_linear(k(), x, w, b, torch::empty({70, N}), false);
      err = std::max(err, max_rel(all, want));
      // Every row alone, and rows inside batches of every size up to 9: identical bits.
      for (int64_t M : {1, 2, 3, 4, 5, 9}) {
        auto part = run_linear(k(), x.narrow(0, 3, M).contiguous(), w, b, torch::empty({M, N}), false, N / 2);
        ASSERT_TRUE(torch::equal(part, all.narrow(0, 3, M))) << GetParam() << " K=" << K << " N=" << N << " M=" << M;
      }
      // accumulate: y += x w^T + b; strided input rows.
      auto wide = torch::randn({70, K + 3});
      auto xs = wide.narrow(1, 0, K);
      auto y0 = torch::randn({70, N});
      auto acc = run_linear(k(), xs, w, b, y0.clone(), true);
      const auto want_acc = y0.to(torch::kFloat64) + xs.to(torch::kFloat64).matmul(w.to(torch::kFloat64).t()) +
                            b.to(torch::kFloat64);
      err = std::max(err, max_rel(acc, want_acc));
    }
  }
  std::printf("[%s] linear max relative error vs float64 %.3g (K <= 512), %.3g (K up to 2100)\n",
              GetParam().c_str(), worst, worst_long);
  EXPECT_LT(worst, 2e-5);
  EXPECT_LT(worst_long, 1e-4);
}

// Weights packed as bfloat16 (values that are bfloat16 numbers, as in a bf16 checkpoint loaded in
// float32) give the float32 rows' bits exactly: every K remainder around the packed chunks (2 * the
// vector width) and the k blocks, batch sizes across the tile shapes, bias and accumulate. A value
// with any of its low 16 bits set is refused.
TEST_P(Kernels, PackedBf16WeightsGiveTheFloat32Bits) {
  torch::manual_seed(7);
  const int vw = k().vec_width;
  ASSERT_TRUE(vw == 4 || vw == 8 || vw == 16) << vw;
  for (int64_t K : {1, 3, 8, 15, 16, 17, 31, 32, 33, 47, 100, 896, 1024, 1031, 2100}) {
    for (int64_t N : {1, 5, 8, 9, 13, 21}) {
      auto w = torch::randn({N, K}).to(torch::kBFloat16).to(torch::kFloat32);  // bf16-exact
      auto b = torch::randn({N});
      const int64_t words = cpu::bf16_packed_words(N, K, vw);
      ASSERT_EQ(words % (vw * cpu::kBf16Panel), 0);
      ASSERT_GE(words * 2, N * K);
      auto packed = torch::full({words}, -1, torch::kInt32);  // chunk padding must be written, not kept
      ASSERT_TRUE(k().pack_bf16(w.data_ptr<float>(), K, 0, N, reinterpret_cast<uint32_t*>(packed.data_ptr<int32_t>())));
      for (int64_t M : {1, 2, 3, 4, 5, 9, 70}) {
        auto x = torch::randn({M, K});
        for (bool accumulate : {false, true}) {
          auto y0 = torch::randn({M, N});
          auto want = run_linear(k(), x, w, b, y0.clone(), accumulate);
          auto got = run_from_copy(k(), x, N, b, y0, accumulate, N / 2, [&](cpu::LinearArgs& a) {  // a split inside a panel
            a.w_bf16 = reinterpret_cast<const uint32_t*>(packed.data_ptr<int32_t>());
            a.bf16_width = vw;
          });
          ASSERT_TRUE(torch::equal(got, want)) << GetParam() << " K=" << K << " N=" << N << " M=" << M
                                               << " max diff " << (got - want).abs().max().item<float>();
        }
      }
    }
  }
  // One value off the bfloat16 grid (the last one of the last row) and the rows holding it are refused.
  auto w = torch::randn({3, 40}).to(torch::kBFloat16).to(torch::kFloat32);
  std::vector<uint32_t> out(cpu::bf16_packed_words(3, 40, vw));
  EXPECT_TRUE(k().pack_bf16(w.data_ptr<float>(), 40, 0, 3, out.data()));
  w[2][39] = w[2][39].item<float>() * (1.0f + 1.0f / 1024);
  EXPECT_TRUE(k().pack_bf16(w.data_ptr<float>(), 40, 0, 2, out.data()));
  EXPECT_FALSE(k().pack_bf16(w.data_ptr<float>(), 40, 2, 3, out.data()));
}

// Batches of 1-3 rows read from the k-chunked copy give the bits of the float32 rows: K around the
// chunk width, N around the panel height, column splits (threads) inside a panel, bias and accumulate.
TEST_P(Kernels, ChunkedFloat32WeightsGiveTheRowsBits) {
  torch::manual_seed(11);
  for (int64_t K : {16, 1023, 1024, 1025, 2100, 4864}) {
    for (int64_t N : {1, 9, 64, 65, 130}) {
      auto w = torch::randn({N, K});
      auto b = torch::randn({N});
      const auto packed = test::chunked_layout(w);
      for (int64_t n = 0; n < N; n += 7)  // the layout function agrees with the order above
        for (int64_t c : {int64_t{0}, K / 2, K - 1})
          ASSERT_EQ(packed[cpu::chunked_offset(n, c, N, K)].item<float>(), w[n][c].item<float>()) << n << "," << c;
      for (int64_t M : {1, 2, 3}) {
        auto x = torch::randn({M, K});
        for (bool accumulate : {false, true}) {
          auto y0 = torch::randn({M, N});
          auto want = run_linear(k(), x, w, b, y0.clone(), accumulate);
          const int64_t split = N > 67 ? 67 : N / 2;  // a split inside the second panel, or the first
          auto got = run_from_copy(k(), x, N, b, y0, accumulate, split,
                                   [&](cpu::LinearArgs& a) { a.w_chunked = packed.data_ptr<float>(); });
          ASSERT_TRUE(torch::equal(got, want)) << GetParam() << " K=" << K << " N=" << N << " M=" << M
                                               << " max diff " << (got - want).abs().max().item<float>();
        }
      }
    }
  }
}

TEST_P(Kernels, CachedAttentionMatchesMaskedSoftmaxReference) {
  torch::manual_seed(2);
  const int64_t rows = 5, KV = 2, R = 3, H = KV * R, D = 24, L = 40, T = 3;
  auto kc = torch::randn({rows, KV, L, D});
  auto vc = torch::randn({rows, KV, L, D});
  const std::vector<int64_t> cache_row = {4, 0, 2}, past = {0, 17, 36};
  const int64_t B = 3;
  auto q = torch::randn({B * T, H * D + 5});  // row stride larger than H*D, like the fused q|k|v
  auto out = torch::empty({B * T, H * D});
  cpu::AttentionArgs a;
  a.q = q.data_ptr<float>();
  a.q_stride = q.stride(0);
  a.k_cache = kc.data_ptr<float>();
  a.v_cache = vc.data_ptr<float>();
  a.max_len = L;
  a.cache_row = cache_row.data();
  a.past = past.data();
  a.batch = B;
  a.tokens = T;
  a.heads = H;
  a.kv_heads = KV;
  a.head_dim = D;
  a.scale = float(1.0 / std::sqrt(double(D)));
  a.out = out.data_ptr<float>();
  a.out_stride = H * D;
  k().attention(a, 0, B * KV);
  double worst = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t len = past[b] + t + 1, g = h / R;
        auto qv = q[b * T + t].narrow(0, h * D, D).to(torch::kFloat64);
        auto keys = kc[cache_row[b]][g].narrow(0, 0, len).to(torch::kFloat64);
        auto vals = vc[cache_row[b]][g].narrow(0, 0, len).to(torch::kFloat64);
        auto p = torch::softmax(keys.matmul(qv) / std::sqrt(double(D)), 0);
        auto want = p.matmul(vals);
        worst = std::max(worst, max_rel(out[b * T + t].narrow(0, h * D, D), want));
      }
  std::printf("[%s] attention max relative error vs float64 %.3g\n", GetParam().c_str(), worst);
  EXPECT_LT(worst, 1e-5);
  // A row's result does not depend on the other rows of the call.
  auto alone = torch::empty({T, H * D});
  cpu::AttentionArgs one = a;
  const std::vector<int64_t> r1 = {cache_row[1]}, p1 = {past[1]};
  one.q = q.data_ptr<float>() + T * q.stride(0);
  one.cache_row = r1.data();
  one.past = p1.data();
  one.batch = 1;
  one.out = alone.data_ptr<float>();
  k().attention(one, 0, KV);
  EXPECT_TRUE(torch::equal(alone, out.narrow(0, T, T)));
}

TEST_P(Kernels, ElementwiseOpsMatchReferences) {
  torch::manual_seed(3);
  const int64_t rows = 4, C = 37;
  // RMSNorm (strided rows).
  auto x = torch::randn({rows, C + 2}).narrow(1, 0, C);
  auto w = torch::randn({C});
  auto out = torch::empty({rows, C});
  k().rms_norm(x.data_ptr<float>(), x.stride(0), w.data_ptr<float>(), out.data_ptr<float>(), rows, C, 1e-6f);
  auto xd = x.to(torch::kFloat64);
  auto want = w.to(torch::kFloat64) * xd * torch::rsqrt(xd.pow(2).mean(-1, true) + 1e-6);
  EXPECT_LT(max_rel(out, want), 2e-6) << GetParam();
  // RoPE on 3 heads of dim 20 starting inside a wider row.
  const int64_t heads = 3, D = 20;
  auto buf = torch::randn({rows, 70});
  auto cos = torch::randn({rows, D}), sin = torch::randn({rows, D});
  auto before = buf.clone();
  k().rope(buf.data_ptr<float>() + 4, buf.stride(0), buf.data_ptr<float>() + 4, buf.stride(0), cos.data_ptr<float>(),
           sin.data_ptr<float>(), rows, heads, D);
  auto v = before.narrow(1, 4, heads * D).reshape({rows, heads, D}).to(torch::kFloat64);
  auto rot = torch::cat({-v.narrow(2, D / 2, D / 2), v.narrow(2, 0, D / 2)}, 2);
  auto want_rope = v * cos.unsqueeze(1).to(torch::kFloat64) + rot * sin.unsqueeze(1).to(torch::kFloat64);
  EXPECT_LT(max_rel(buf.narrow(1, 4, heads * D).reshape({rows, heads, D}), want_rope), 2e-6) << GetParam();
  EXPECT_TRUE(torch::equal(buf.narrow(1, 0, 4), before.narrow(1, 0, 4)));
  EXPECT_TRUE(torch::equal(buf.narrow(1, 4 + heads * D, 70 - 4 - heads * D), before.narrow(1, 4 + heads * D, 70 - 4 - heads * D)));
  // SiLU gate.
  const int64_t I = 29;
  auto gu = torch::randn({rows, 2 * I}) * 6;
  auto act = torch::empty({rows, I});
  k().silu_mul(gu.data_ptr<float>(), act.data_ptr<float>(), rows, I);
  auto g = gu.narrow(1, 0, I).to(torch::kFloat64), u = gu.narrow(1, I, I).to(torch::kFloat64);
  EXPECT_LT(max_rel(act, g * torch::sigmoid(g) * u), 2e-6) << GetParam();
}

TEST_P(Kernels, ExpShiftAndArgmax) {
  torch::manual_seed(4);
  for (int64_t n : {1, 15, 16, 33, 1000}) {
    auto x = torch::randn({n}) * 20;
    auto e = torch::empty({n});
    const float m = x.max().item<float>();
    const float sum = k().exp_shift(x.data_ptr<float>(), 0.5f, 0.5f * m, e.data_ptr<float>(), n);
    auto want = (x.to(torch::kFloat64) * 0.5 - 0.5 * double(m)).exp();
    EXPECT_LT(max_rel(e, want), 3e-7) << GetParam() << " n=" << n;
    EXPECT_NEAR(sum, want.sum().item<double>(), 1e-5 * want.sum().item<double>());
    float got_max;
    int64_t got_idx;
    k().max_argmax(x.data_ptr<float>(), n, &got_max, &got_idx);
    EXPECT_EQ(got_idx, x.argmax().item<int64_t>());
    EXPECT_EQ(got_max, m);
  }
  // Ties: the first index; far below the shift: exactly 0.
  std::vector<float> t = {1, 3, 3, -1e30f, 3};
  float mx;
  int64_t idx;
  k().max_argmax(t.data(), 5, &mx, &idx);
  EXPECT_EQ(idx, 1);
  std::vector<float> e(5);
  k().exp_shift(t.data(), 1.0f, 3.0f, e.data(), 5);
  EXPECT_EQ(e[3], 0.0f);
  EXPECT_EQ(e[1], 1.0f);
}

INSTANTIATE_TEST_SUITE_P(Isa, Kernels, testing::ValuesIn(isas()));

}  // namespace
