// The fused training ops (model/train_ops.h) against the eager formula they replace: values and
// gradients, every instruction set's kernels, and a whole model's forward and parameter gradients
// with the ops on and off (plain, packed and shared-prefix forwards).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "model/cpu_kernels.h"
#include "model/layer_ops.h"
#include "model/train_ops.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

using test::max_abs_diff;

// |a - b| relative to the largest |b| (at least 1).
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return max_abs_diff(a, b) / std::max(1.0, b.abs().max().item<double>());
}

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// Gradients of sum(out * upstream) with respect to `inputs`.
std::vector<torch::Tensor> grads_of(const torch::Tensor& out, const std::vector<torch::Tensor>& inputs,
                                    const torch::Tensor& upstream) {
  return torch::autograd::grad({(out * upstream).sum()}, inputs, {}, false, false, /*allow_unused=*/true);
}

void expect_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = rel_diff(got[i], want[i]);
    std::printf("%s gradient %zu: max relative difference %.3g\n", what.c_str(), i, d);
    EXPECT_LT(d, tol) << what << " gradient " << i;
  }
}

TEST(TrainOps, RmsNormMatchesEagerFormula) {
  torch::manual_seed(1);
  const auto x0 = torch::randn({3, 5, 40}), w0 = torch::randn({40});  // 40: a partial last vector
  auto x = leaf(x0), w = leaf(w0), xe = leaf(x0), we = leaf(w0);
  const auto y = train_rms_norm(x, w, 1e-5);
  const auto ye = rms_norm(xe, we, 1e-5, Kernels::kAten);
  const double d = rel_diff(y, ye);
  std::printf("rms_norm values: max relative difference %.3g\n", d);
  EXPECT_LT(d, 1e-6);
  const auto up = torch::randn(y.sizes());
  expect_close(grads_of(y, {x, w}, up), grads_of(ye, {xe, we}, up), 1e-5, "rms_norm");
  // Without a weight gradient (a frozen norm under LoRA) the input gradient is the same.
  auto w_frozen = w0.clone();
  auto x2 = leaf(x0);
  const auto g = grads_of(train_rms_norm(x2, w_frozen, 1e-5), {x2}, up);
  auto x3 = leaf(x0);
  EXPECT_LT(rel_diff(g[0], grads_of(rms_norm(x3, we, 1e-5, Kernels::kAten), {x3}, up)[0]), 1e-5);
}

// The fused residual add + norm is the add and train_rms_norm apart, bit for bit: values, and the
// gradients of x, a and w (h's own gradient summed into the norm's, as autograd sums them), with h
// used downstream and without (the final norm).
TEST(TrainOps, AddRmsNormIsTheAddAndTheNormBitForBit) {
  torch::manual_seed(11);
  const auto x0 = torch::randn({3, 5, 40}), a0 = torch::randn({3, 5, 40}), w0 = torch::randn({40});
  const auto up_h = torch::randn({3, 5, 40}), up_n = torch::randn({3, 5, 40});
  for (bool h_used : {true, false}) {
    auto x = leaf(x0), a = leaf(a0), w = leaf(w0), xe = leaf(x0), ae = leaf(a0), we = leaf(w0);
    const auto [h, n] = train_add_rms_norm(x, a, w, 1e-6);
    const auto he = xe + ae;
    const auto ne = train_rms_norm(he, we, 1e-6);
    EXPECT_TRUE(torch::equal(h, he));
    EXPECT_TRUE(torch::equal(n, ne));
    const auto loss = (n * up_n).sum() + (h_used ? (h * up_h).sum() : torch::zeros({}));
    const auto loss_e = (ne * up_n).sum() + (h_used ? (he * up_h).sum() : torch::zeros({}));
    const auto g = torch::autograd::grad({loss}, {x, a, w});
    const auto ge = torch::autograd::grad({loss_e}, {xe, ae, we});
    for (size_t i = 0; i < g.size(); ++i) {
      std::printf("add_rms_norm (h %s) gradient %zu: max difference %.3g\n", h_used ? "used" : "unused", i,
                  max_abs_diff(g[i], ge[i]));
      EXPECT_TRUE(torch::equal(g[i], ge[i])) << "gradient " << i << (h_used ? " (h used)" : " (h unused)");
    }
  }
}

TEST(TrainOps, SwigluMatchesEagerFormula) {
  torch::manual_seed(2);
  const auto gu0 = torch::randn({4, 7, 2 * 37}) * 4;  // large |gate| too: the sigmoid's tails
  auto gu = leaf(gu0), gue = leaf(gu0);
  const auto y = train_swiglu(gu);
  const auto ye = torch::silu(gue.narrow(-1, 0, 37)) * gue.narrow(-1, 37, 37);
  const double d = rel_diff(y, ye);
  std::printf("swiglu values: max relative difference %.3g\n", d);
  EXPECT_LT(d, 1e-6);
  const auto up = torch::randn(y.sizes());
  expect_close(grads_of(y, {gu}, up), grads_of(ye, {gue}, up), 1e-5, "swiglu");
}

// x [..., heads*D] -> x*cos + rotate_half(x)*sin per head; cos/sin [N, D].
torch::Tensor eager_rope(const torch::Tensor& x, int64_t heads, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t D = cos.size(1), half = D / 2;
  auto x3 = x.reshape({-1, heads, D});
  auto rotated = torch::cat({-x3.narrow(-1, half, half), x3.narrow(-1, 0, half)}, -1);
  return (x3 * cos.unsqueeze(1) + rotated * sin.unsqueeze(1)).reshape(x.sizes());
}

TEST(TrainOps, RopeSplitMatchesEagerFormula) {
  torch::manual_seed(3);
  const int64_t B = 2, T = 6, H = 4, KV = 2, D = 40;  // half = 20: a partial vector per half
  const auto qkv0 = torch::randn({B, T, (H + 2 * KV) * D});
  const auto angles = torch::rand({B * T, D / 2}) * 6;
  const auto emb = torch::cat({angles, angles}, 1);
  const auto cos = emb.cos().contiguous(), sin = emb.sin().contiguous();
  auto qkv = leaf(qkv0), qkve = leaf(qkv0);
  const auto out = train_rope_split(qkv, H, KV, cos, sin);
  const auto q_e = eager_rope(qkve.narrow(2, 0, H * D), H, cos, sin);
  const auto k_e = eager_rope(qkve.narrow(2, H * D, KV * D), KV, cos, sin);
  const auto v_e = qkve.narrow(2, (H + KV) * D, KV * D);
  EXPECT_LT(rel_diff(out[0], q_e), 1e-6);
  EXPECT_LT(rel_diff(out[1], k_e), 1e-6);
  EXPECT_EQ(max_abs_diff(out[2], v_e), 0.0);
  const auto uq = torch::randn(out[0].sizes()), uk = torch::randn(out[1].sizes()), uv = torch::randn(out[2].sizes());
  const auto loss = (out[0] * uq).sum() + (out[1] * uk).sum() + (out[2] * uv).sum();
  const auto loss_e = (q_e * uq).sum() + (k_e * uk).sum() + (v_e * uv).sum();
  expect_close(torch::autograd::grad({loss}, {qkv}), torch::autograd::grad({loss_e}, {qkve}), 1e-5, "rope_split");
}

// The in-place op over packed qkv: the same bits as train_rope_split + train_attention, forward and
// the qkv gradient, with and without packed documents (first_key).
TEST(TrainOps, RopeAttentionIsRopeSplitThenAttentionBitForBit) {
  torch::manual_seed(11);
  const int64_t B = 3, T = 9, H = 4, KV = 2, D = 40;
  const auto qkv0 = torch::randn({B, T, (H + 2 * KV) * D});
  const auto angles = torch::rand({B * T, D / 2}) * 6;
  const auto emb = torch::cat({angles, angles}, 1);
  const auto cos = emb.cos().contiguous(), sin = emb.sin().contiguous();
  const auto segments = torch::tensor({0, 0, 0, 1, 1, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 6, 6, 3, 4, 4, 4, 4, 4, 4, 9, 9},
                                      torch::kLong).view({B, T});
  for (const torch::Tensor& first : {torch::Tensor(), first_keys_from_segments(segments)}) {
    auto x = leaf(qkv0), xe = leaf(qkv0);
    const auto qkv = x * 1.0f;  // a projection-like output the op may rotate in place
    const auto y = train_rope_attention(qkv, H, KV, cos, sin, first);
    const auto parts = train_rope_split(xe * 1.0f, H, KV, cos, sin);
    const auto ye = train_attention(parts[0], parts[1], parts[2], H, KV, first);
    EXPECT_EQ(max_abs_diff(y, ye), 0.0);
    const auto up = torch::randn(y.sizes());
    const auto g = torch::autograd::grad({(y * up).sum()}, {x})[0];
    const auto ge = torch::autograd::grad({(ye * up).sum()}, {xe})[0];
    EXPECT_EQ(max_abs_diff(g, ge), 0.0) << (first.defined() ? "with first_key" : "causal");
  }
}

// Eager attention: q [B,T,H*D], keys/values [B,L,KV*D], allowed [B,T,L] bool -> [B,T,H*D].
torch::Tensor eager_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& allowed, int64_t H, int64_t KV) {
  const int64_t B = q.size(0), T = q.size(1), L = k.size(1), D = q.size(2) / H, R = H / KV;
  auto qh = q.view({B, T, H, D}).transpose(1, 2);                                        // [B,H,T,D]
  auto kh = k.view({B, L, KV, D}).transpose(1, 2).repeat_interleave(R, 1);               // [B,H,L,D]
  auto vh = v.view({B, L, KV, D}).transpose(1, 2).repeat_interleave(R, 1);
  auto s = torch::matmul(qh, kh.transpose(-1, -2)) / std::sqrt(double(D));             // [B,H,T,L]
  s = s.masked_fill(allowed.unsqueeze(1).logical_not(), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(s, -1), vh).transpose(1, 2).reshape({B, T, H * D});
}

struct AttentionCase {
  int64_t B = 3, T = 9, H = 4, KV = 2, D = 20;
};

class TrainOpsCausal : public ::testing::TestWithParam<AttentionCase> {};

// Short rows (fewer keys than a vector) and long ones (several blocks of keys, whole vectors of D).
TEST_P(TrainOpsCausal, AttentionMatchesEager) {
  torch::manual_seed(4);
  const AttentionCase c = GetParam();
  const auto q0 = torch::randn({c.B, c.T, c.H * c.D}), k0 = torch::randn({c.B, c.T, c.KV * c.D}),
             v0 = torch::randn({c.B, c.T, c.KV * c.D});
  auto q = leaf(q0), k = leaf(k0), v = leaf(v0), qe = leaf(q0), ke = leaf(k0), ve = leaf(v0);
  const auto y = train_attention(q, k, v, c.H, c.KV, torch::Tensor());
  const auto causal = torch::ones({c.T, c.T}, torch::kBool).tril().unsqueeze(0).expand({c.B, c.T, c.T});
  const auto ye = eager_attention(qe, ke, ve, causal, c.H, c.KV);
  const double d = rel_diff(y, ye);
  std::printf("causal attention values: max relative difference %.3g\n", d);
  EXPECT_LT(d, 1e-5);
  const auto up = torch::randn(y.sizes());
  expect_close(grads_of(y, {q, k, v}, up), grads_of(ye, {qe, ke, ve}, up), 1e-5, "causal attention");
}

INSTANTIATE_TEST_SUITE_P(Shapes, TrainOpsCausal,
                         ::testing::Values(AttentionCase{3, 9, 4, 2, 20}, AttentionCase{2, 41, 4, 4, 48},
                                           AttentionCase{2, 37, 6, 2, 64},
                                           // 700 x 700 keys x 2 heads: the backward's query blocks (4)
                                           AttentionCase{1, 700, 2, 1, 16}));

TEST(TrainOps, PackedAttentionSeesOnlyItsDocument) {
  torch::manual_seed(5);
  AttentionCase c;
  const auto segments = torch::tensor({0, 0, 0, 1, 1, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 5, 6, 6, 3, 4, 4, 4, 4, 4, 4, 9, 9},
                                      torch::kLong).view({c.B, c.T});
  const auto first = first_keys_from_segments(segments);
  ASSERT_TRUE(first.defined());
  EXPECT_EQ(first.view({c.B, c.T})[0][4].item<int64_t>(), 3);
  const auto q0 = torch::randn({c.B, c.T, c.H * c.D}), k0 = torch::randn({c.B, c.T, c.KV * c.D}),
             v0 = torch::randn({c.B, c.T, c.KV * c.D});
  auto q = leaf(q0), k = leaf(k0), v = leaf(v0), qe = leaf(q0), ke = leaf(k0), ve = leaf(v0);
  const auto y = train_attention(q, k, v, c.H, c.KV, first);
  const auto causal = torch::ones({c.T, c.T}, torch::kBool).tril().unsqueeze(0);
  const auto allowed = (segments.unsqueeze(2) == segments.unsqueeze(1)).logical_and(causal);
  const auto ye = eager_attention(qe, ke, ve, allowed, c.H, c.KV);
  EXPECT_LT(rel_diff(y, ye), 1e-5);
  const auto up = torch::randn(y.sizes());
  expect_close(grads_of(y, {q, k, v}, up), grads_of(ye, {qe, ke, ve}, up), 1e-5, "packed attention");
  // A segment id in two runs of a row is not a run-start mask: the caller keeps the masked path.
  EXPECT_FALSE(first_keys_from_segments(torch::tensor({0, 0, 1, 0}, torch::kLong).view({1, 4})).defined());
}

// Completions of P prompts in groups of G; prompt 1 is right-padded to Tp (length short_len).
void check_prefix_attention(int64_t P, int64_t G, int64_t Tp, int64_t short_len, int64_t T, int64_t H, int64_t KV,
                            int64_t D) {
  const int64_t B = P * G;
  std::vector<int64_t> lens(B, Tp);
  for (int64_t b = G; b < 2 * G && b < B; ++b) lens[b] = short_len;
  const auto lengths = torch::tensor(lens, torch::kLong);
  const auto q0 = torch::randn({B, T, H * D}), k0 = torch::randn({B, T, KV * D}), v0 = torch::randn({B, T, KV * D});
  const auto pk0 = torch::randn({P, Tp, KV * D}), pv0 = torch::randn({P, Tp, KV * D});
  auto q = leaf(q0), k = leaf(k0), v = leaf(v0), pk = leaf(pk0), pv = leaf(pv0);
  auto qe = leaf(q0), ke = leaf(k0), ve = leaf(v0), pke = leaf(pk0), pve = leaf(pv0);
  TrainAttentionPrefix prefix{pk, pv, lengths, G};
  const auto y = train_attention(q, k, v, H, KV, torch::Tensor(), &prefix);
  // Eager: each completion row's keys are its prompt's (expanded over the group) then its own.
  const auto keys = torch::cat({pke.repeat_interleave(G, 0), ke}, 1), values = torch::cat({pve.repeat_interleave(G, 0), ve}, 1);
  const auto prompt_part = (torch::arange(Tp).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).expand({B, T, Tp});
  const auto own_part = torch::ones({T, T}, torch::kBool).tril().unsqueeze(0).expand({B, T, T});
  const auto ye = eager_attention(qe, keys, values, torch::cat({prompt_part, own_part}, 2), H, KV);
  EXPECT_LT(rel_diff(y, ye), 1e-5);
  const auto up = torch::randn(y.sizes());
  expect_close(grads_of(y, {q, k, v, pk, pv}, up), grads_of(ye, {qe, ke, ve, pke, pve}, up), 1e-5, "prefix attention");
}

TEST(TrainOps, PrefixAttentionMatchesConcatenatedKeys) {
  torch::manual_seed(6);
  check_prefix_attention(2, 3, 5, 3, 4, 4, 2, 20);
}

// 300 prompt + 300 own keys x 2 heads: the backward's query blocks accumulate the prompt's dK/dV.
TEST(TrainOps, PrefixAttentionInQueryBlocks) {
  torch::manual_seed(8);
  check_prefix_attention(2, 2, 300, 170, 300, 2, 1, 16);
}

// Every instruction set's training kernels give what the chosen one gives (same inputs).
TEST(TrainOps, EveryInstructionSetAgrees) {
  torch::manual_seed(7);
  const int64_t B = 2, T = 7, H = 4, KV = 2, D = 20, rows = 7, I = 43;
  const auto q = torch::randn({B, T, H * D}), k = torch::randn({B, T, KV * D}), v = torch::randn({B, T, KV * D});
  const auto dout = torch::randn({B, T, H * D});
  const auto gu = torch::randn({rows, 2 * I}) * 3, dy = torch::randn({rows, I});
  const auto x = torch::randn({5, 37}), w = torch::randn({37}), dyn = torch::randn({5, 37});
  const auto res = torch::randn({5, 37});  // a residual's addend, then its gradient
  struct Out {
    torch::Tensor out, lse, dq, dk, dv, sw, dgu, dx, dw, h, n, dxr;
  };
  auto run = [&](const cpu::KernelTable& kt) {
    Out o;
    o.out = torch::empty_like(q);
    o.lse = torch::empty({B, H, T});
    o.dq = torch::empty_like(q);
    o.dk = torch::empty_like(k);
    o.dv = torch::empty_like(v);
    cpu::TrainAttentionArgs a;
    a.q = q.data_ptr<float>();
    a.q_stride = H * D;
    a.k = k.data_ptr<float>();
    a.v = v.data_ptr<float>();
    a.kv_stride = KV * D;
    a.batch = B;
    a.tokens = T;
    a.heads = H;
    a.kv_heads = KV;
    a.head_dim = D;
    a.scale = float(1.0 / std::sqrt(double(D)));
    a.out = o.out.data_ptr<float>();
    a.lse = o.lse.data_ptr<float>();
    a.dout = dout.data_ptr<float>();
    a.dq = o.dq.data_ptr<float>();
    a.dk = o.dk.data_ptr<float>();
    a.dv = o.dv.data_ptr<float>();
    kt.attention_train_forward(a, 0, B * KV);
    kt.attention_train_backward(a, 0, B * KV);
    o.sw = torch::empty({rows, I});
    o.dgu = torch::empty({rows, 2 * I});
    kt.silu_mul(gu.data_ptr<float>(), o.sw.data_ptr<float>(), rows, I);
    kt.silu_mul_backward(gu.data_ptr<float>(), dy.data_ptr<float>(), o.dgu.data_ptr<float>(), rows, I);
    o.dx = torch::empty_like(x);
    o.dw = torch::zeros({37});
    kt.rms_norm_backward(x.data_ptr<float>(), w.data_ptr<float>(), dyn.data_ptr<float>(), nullptr, 5, 37, 1e-5f,
                         o.dx.data_ptr<float>(), o.dw.data_ptr<float>());
    o.h = torch::empty_like(x);
    o.n = torch::empty_like(x);
    o.dxr = torch::empty_like(x);
    kt.add_rms_norm(x.data_ptr<float>(), res.data_ptr<float>(), o.h.data_ptr<float>(), w.data_ptr<float>(),
                    o.n.data_ptr<float>(), 5, 37, 1e-5f);
    kt.rms_norm_backward(x.data_ptr<float>(), w.data_ptr<float>(), dyn.data_ptr<float>(), res.data_ptr<float>(), 5, 37,
                         1e-5f, o.dxr.data_ptr<float>(), nullptr);
    return o;
  };
  const Out want = run(cpu::kernels());
  int tested = 0;
  for (const char* isa : {"generic", "avx2", "avx512"}) {
    const cpu::KernelTable* kt = cpu::kernels_for(isa);
    if (kt == nullptr) continue;
    ++tested;
    const Out got = run(*kt);
    const std::vector<std::pair<torch::Tensor, torch::Tensor>> pairs = {
        {got.out, want.out}, {got.lse, want.lse}, {got.dq, want.dq}, {got.dk, want.dk}, {got.dv, want.dv},
        {got.sw, want.sw},   {got.dgu, want.dgu}, {got.dx, want.dx}, {got.dw, want.dw},
        {got.h, want.h},     {got.n, want.n},     {got.dxr, want.dxr}};
    for (size_t i = 0; i < pairs.size(); ++i) EXPECT_LT(rel_diff(pairs[i].first, pairs[i].second), 1e-5) << isa << " output " << i;
  }
  EXPECT_GE(tested, 1);
}

// A whole model: forwards and parameter gradients with the fused ops on equal those with them off.
class TrainOpsModel : public ::testing::TestWithParam<std::string> {};

std::vector<torch::Tensor> param_grads(Transformer& m, const torch::Tensor& loss) {
  return torch::autograd::grad({loss}, m->parameters(), {}, false, false, /*allow_unused=*/true);
}

TEST_P(TrainOpsModel, ForwardsAndGradientsMatchTheEagerOps) {
  torch::manual_seed(8);
  ModelConfig cfg = test::tiny_config(GetParam());  // GQA 4/2 heads; qwen2 has q/k/v biases
  Transformer model(cfg);
  model->train();
  const int64_t B = 3, T = 10;
  const auto ids = torch::randint(4, cfg.vocab_size, {B, T}, torch::kLong);
  const auto pos = torch::arange(T).unsqueeze(0).expand({B, T}).contiguous();
  const auto segments = torch::tensor({0, 0, 0, 0, 1, 1, 1, 2, 2, 2}, torch::kLong).unsqueeze(0).expand({B, T}).contiguous();
  const auto packed_pos = torch::tensor({0, 1, 2, 3, 0, 1, 2, 0, 1, 2}, torch::kLong).unsqueeze(0).expand({B, T}).contiguous();
  const int64_t P = 2, G = 2, Tp = 4, Tc = 3;
  const auto prompts = torch::randint(4, cfg.vocab_size, {P, Tp}, torch::kLong);
  const auto completions = torch::randint(4, cfg.vocab_size, {P * G, Tc}, torch::kLong);
  const std::vector<int64_t> lengths = {4, 2};
  const auto up = torch::randn({B, T, cfg.hidden_size}), up_c = torch::randn({P * G, Tc, cfg.hidden_size});

  for (const char* kind : {"plain", "packed", "shared_prefix"}) {
    std::vector<torch::Tensor> out, grads;
    for (bool fused : {false, true}) {
      model->set_train_ops(fused);
      torch::Tensor h, loss;
      if (std::string(kind) == "plain") {
        h = model->forward_hidden(ids, pos);
        loss = (h * up).sum();
      } else if (std::string(kind) == "packed") {
        h = model->forward_hidden_packed(ids, packed_pos, segments);
        loss = (h * up).sum();
      } else {
        const SharedPrefixHidden s = model->forward_shared_prefix(prompts, lengths, completions, G);
        h = s.completion;
        loss = (h * up_c).sum() + s.prompt.narrow(1, 0, 2).sum();
      }
      // The fused path really ran (the final norm is its node), or the comparison would be empty.
      EXPECT_EQ(h.grad_fn()->name().find("RmsNormFn") != std::string::npos, fused) << kind << ": " << h.grad_fn()->name();
      out.push_back(h.detach());
      grads.push_back(torch::cat([&] {
        std::vector<torch::Tensor> flat;
        const auto params = model->parameters();
        const auto g = param_grads(model, loss);
        for (size_t i = 0; i < g.size(); ++i)  // lm_head takes no part in a hidden-state loss
          flat.push_back(g[i].defined() ? g[i].reshape({-1}) : torch::zeros({params[i].numel()}));
        return flat;
      }(), 0));
    }
    const double dv = rel_diff(out[1], out[0]), dg = rel_diff(grads[1], grads[0]);
    std::printf("%s %s: hidden max relative difference %.3g, parameter gradients %.3g\n", GetParam().c_str(), kind, dv, dg);
    EXPECT_LT(dv, 1e-5) << kind;
    EXPECT_LT(dg, 1e-5) << kind;
  }
}

// Rows that share their first p tokens: the prefix run once (forward_shared_prefix with keep) gives
// forward_hidden_rows' hidden states and parameter gradients, with the fused ops on and off; kept
// rows from a later position on in some rows only, so the last layer's query subset is gathered.
TEST_P(TrainOpsModel, SharedPrefixWithKeptRowsEqualsForwardHiddenRows) {
  torch::manual_seed(10);
  ModelConfig cfg = test::tiny_config(GetParam());
  Transformer model(cfg);
  model->train();
  const int64_t B = 4, T = 9, p = 3;
  torch::Tensor ids = torch::randint(4, cfg.vocab_size, {B, T}, torch::kLong);
  ids.narrow(1, 0, p).copy_(ids.narrow(0, 0, 1).narrow(1, 0, p).expand({B, p}));
  const auto pos = torch::arange(T).unsqueeze(0).expand({B, T}).contiguous();
  std::vector<int64_t> keep_v, keep_c;  // rows b*T + t of the whole batch, b*(T-p) + t-p of the completions
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = p + 1 + (b % 2); t < T; ++t) {
      keep_v.push_back(b * T + t);
      keep_c.push_back(b * (T - p) + t - p);
    }
  const auto keep = torch::tensor(keep_v, torch::kLong), keep_comp = torch::tensor(keep_c, torch::kLong);
  const auto up = torch::randn({keep.size(0), cfg.hidden_size});
  for (bool fused : {false, true}) {
    model->set_train_ops(fused);
    const auto want = model->forward_hidden_rows(ids, pos, {}, keep);
    const auto want_g = param_grads(model, (want * up).sum());
    const auto got = model->forward_shared_prefix(ids.narrow(0, 0, 1).narrow(1, 0, p).contiguous(), {p},
                                                  ids.narrow(1, p, T - p).contiguous(), B, keep_comp).completion;
    ASSERT_EQ(got.sizes(), want.sizes());
    for (const auto* h : {&got, &want})  // the fused path really ran
      EXPECT_EQ(h->grad_fn()->name().find("RmsNormFn") != std::string::npos, fused) << h->grad_fn()->name();
    const auto got_g = param_grads(model, (got * up).sum());
    double dg = 0;
    for (size_t i = 0; i < got_g.size(); ++i) {
      ASSERT_EQ(got_g[i].defined(), want_g[i].defined()) << i;
      if (got_g[i].defined()) dg = std::max(dg, rel_diff(got_g[i], want_g[i]));
    }
    const double dv = rel_diff(got, want);
    std::printf("%s fused %d: shared prefix vs whole rows: hidden %.3g, parameter gradients %.3g\n",
                GetParam().c_str(), int(fused), dv, dg);
    EXPECT_LT(dv, 1e-5);
    EXPECT_LT(dg, 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TrainOpsModel, ::testing::Values("llama", "qwen2"));

}  // namespace
}  // namespace r1kit

namespace r1kit {
namespace {

// Under autocast the matmuls return bf16, which the fused ops do not take: the forward runs the
// eager formula, exactly as with the ops off (before, it failed at RoPE).
TEST(TrainOps, AutocastForwardRunsTheEagerFormula) {
  torch::manual_seed(9);
  Transformer model(test::tiny_config("qwen2"));
  model->train();
  ComputeOptions co;
  co.autocast = true;
  model->set_compute_options(co);
  const auto ids = torch::randint(4, 97, {2, 6}, torch::kLong);
  const auto pos = torch::arange(6).unsqueeze(0).expand({2, 6}).contiguous();
  model->set_train_ops(false);
  const auto eager = model->forward_hidden(ids, pos);
  model->set_train_ops(true);
  const auto h = model->forward_hidden(ids, pos);
  EXPECT_EQ(h.grad_fn()->name().find("RmsNormFn"), std::string::npos) << h.grad_fn()->name();
  EXPECT_EQ(max_abs_diff(h, eager), 0.0);
}

}  // namespace
}  // namespace r1kit
