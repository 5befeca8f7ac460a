// The packed training forward (Transformer::forward_hidden_packed, sequence packing): rows holding
// several documents, positions restarting per document, attention causal within a document only,
// equal the forward of every document on its own -- logits and gradients -- on the real HF
// checkpoints of ../shared/fixtures (Qwen2 and Llama layouts) with both training kernels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <tuple>

#include "model/checkpoint.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

// Two packed rows: row 0 = documents A (7 tokens), B (4), C (1); row 1 = D (9) then 3 pad tokens
// with a segment of their own. Ids are arbitrary in-vocabulary values.
struct Packed {
  std::vector<std::vector<int64_t>> docs = {{5, 17, 3, 88, 41, 2, 60}, {9, 9, 120, 7}, {33}, {1, 2, 4, 8, 16, 32, 64, 128, 256}};
  std::vector<std::pair<int64_t, int64_t>> where = {{0, 0}, {0, 7}, {0, 11}, {1, 0}};  // (row, start) of each doc
  torch::Tensor ids = torch::zeros({2, 12}, torch::kLong), pos = torch::zeros({2, 12}, torch::kLong),
                seg = torch::zeros({2, 12}, torch::kLong);
  Packed() {
    for (size_t d = 0; d < docs.size(); ++d)
      for (size_t t = 0; t < docs[d].size(); ++t) {
        const auto [r, s] = where[d];
        ids[r][s + int64_t(t)] = docs[d][t];
        pos[r][s + int64_t(t)] = int64_t(t);
        seg[r][s + int64_t(t)] = int64_t(d);
      }
    for (int64_t t = 9; t < 12; ++t) {  // padding: its own segment, positions 0..2
      ids[1][t] = 0;
      pos[1][t] = t - 9;
      seg[1][t] = 99;
    }
  }
};

torch::Tensor doc_ids(const std::vector<int64_t>& d) { return torch::tensor(d, torch::kLong).view({1, int64_t(d.size())}); }
torch::Tensor doc_pos(size_t n) { return torch::arange(int64_t(n), torch::kLong).view({1, int64_t(n)}); }

// A smooth loss over hidden states that weighs every element differently.
torch::Tensor loss_of(const torch::Tensor& h) { return (h.pow(2).sum(-1) * 1e-3).sum() + h.sin().sum(); }

// The parameters' gradients (zeros where none), which are then reset for the next backward.
std::vector<torch::Tensor> take_grads(Transformer& m) {
  std::vector<torch::Tensor> g;
  for (auto& prm : m->parameters()) {
    g.push_back(prm.grad().defined() ? prm.grad().clone() : torch::zeros_like(prm));
    if (prm.grad().defined()) prm.mutable_grad().zero_();
  }
  return g;
}

class PackedForward : public testing::TestWithParam<std::tuple<std::string, Kernels>> {};

TEST_P(PackedForward, EqualsEachDocumentOnItsOwnWithGradients) {
  const std::string dir = shared_path("fixtures/" + std::get<0>(GetParam()));
  R1_REQUIRE_FILE(dir + "/model.safetensors");
  Transformer m = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  m->set_kernels(std::get<1>(GetParam()));
  const Packed p;

  // 1. Logits: every document's slice of the packed rows == its own forward.
  double dl = 0, scale = 0;
  {
    torch::NoGradGuard g;
    const torch::Tensor packed = m->logits_from_hidden(m->forward_hidden_packed(p.ids, p.pos, p.seg));  // [2,12,V]
    for (size_t d = 0; d < p.docs.size(); ++d) {
      const auto [r, s] = p.where[d];
      const int64_t n = int64_t(p.docs[d].size());
      const torch::Tensor alone = m->forward(doc_ids(p.docs[d]), doc_pos(p.docs[d].size()))[0];  // [n,V]
      dl = std::max(dl, max_abs_diff(packed[r].narrow(0, s, n), alone));
      scale = std::max(scale, alone.abs().max().item<double>());
    }
    // Without the segments the same rows are one causal sequence: documents see each other.
    const torch::Tensor unpacked = m->forward(p.ids, p.pos);
    EXPECT_GT(max_abs_diff(unpacked[0].narrow(0, 7, 4), packed[0].narrow(0, 7, 4)), 1e-3);
  }
  std::printf("%s: packed vs per-document logits max|diff| %.3g (max |logit| %.1f)\n", std::get<0>(GetParam()).c_str(),
              dl, scale);
  EXPECT_LE(dl, 2e-6 * std::max(1.0, scale));  // a few float32 ulps of the largest logit

  // 2. Gradients of a loss over the real tokens (activation checkpointing on for the packed pass:
  //    the recomputed layers must see the same mask).
  auto grads = [&m] { return take_grads(m); };
  ComputeOptions co;
  co.activation_checkpointing = true;
  m->set_compute_options(co);
  m->train();
  const torch::Tensor hp = m->forward_hidden_packed(p.ids, p.pos, p.seg);
  torch::Tensor l1 = torch::zeros({});
  for (size_t d = 0; d < p.docs.size(); ++d)
    l1 = l1 + loss_of(hp[p.where[d].first].narrow(0, p.where[d].second, int64_t(p.docs[d].size())));
  l1.backward();
  const auto g1 = grads();
  m->set_compute_options(ComputeOptions());
  torch::Tensor l2 = torch::zeros({});
  for (const auto& d : p.docs) l2 = l2 + loss_of(m->forward_hidden(doc_ids(d), doc_pos(d.size()))[0]);
  l2.backward();
  const auto g2 = grads();
  double dg = 0;
  for (size_t i = 0; i < g1.size(); ++i) dg = std::max(dg, max_abs_diff(g1[i], g2[i]) / (1 + g2[i].abs().max().item<double>()));
  std::printf("%s: packed vs per-document gradients max relative |diff| %.3g (loss %.6f vs %.6f)\n",
              std::get<0>(GetParam()).c_str(), dg, l1.item<double>(), l2.item<double>());
  EXPECT_LE(dg, 1e-5);
}

// forward_hidden_rows (the SFT/KD loss rows only: the last layer's o_proj and MLP skip the rest;
// with the fused training ops its queries start at the first kept position) equals the full
// forward's rows, values and gradients, plain and packed, with and without the fused training ops
// and activation checkpointing, for scattered rows and for every row from a position on (an SFT
// batch's completions: the in-order case).
class RowsForward : public testing::TestWithParam<std::tuple<std::string, bool>> {};

TEST_P(RowsForward, EqualsTheFullForwardsRowsWithGradients) {
  const std::string dir = shared_path("fixtures/" + std::get<0>(GetParam()));
  R1_REQUIRE_FILE(dir + "/model.safetensors");
  Transformer m = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  m->set_train_ops(std::get<1>(GetParam()));
  m->train();
  const Packed p;
  const torch::Tensor scattered = torch::tensor(std::vector<int64_t>{1, 3, 4, 8, 10, 11, 14, 20, 21}, torch::kLong);
  const torch::Tensor from_5 = torch::cat({torch::arange(5, 12), torch::arange(17, 24)});  // positions 5..11
  auto grads = [&m] { return take_grads(m); };
  for (const torch::Tensor& keep : {scattered, from_5})
  for (const bool packed : {false, true})
    for (const bool checkpointing : {false, true}) {
      ComputeOptions co;
      co.activation_checkpointing = checkpointing;
      m->set_compute_options(co);
      const torch::Tensor seg = packed ? p.seg : torch::Tensor();
      const torch::Tensor full = packed ? m->forward_hidden_packed(p.ids, p.pos, p.seg) : m->forward_hidden(p.ids, p.pos);
      const torch::Tensor want = full.reshape({-1, full.size(-1)}).index_select(0, keep);
      loss_of(want).backward();
      const auto g_want = grads();
      const torch::Tensor got = m->forward_hidden_rows(p.ids, p.pos, seg, keep);
      ASSERT_EQ(got.sizes(), want.sizes());
      loss_of(got).backward();
      const auto g_got = grads();
      const double dh = max_abs_diff(got, want) / (1 + want.abs().max().item<double>());
      double dg = 0;
      for (size_t i = 0; i < g_got.size(); ++i)
        dg = std::max(dg, max_abs_diff(g_got[i], g_want[i]) / (1 + g_want[i].abs().max().item<double>()));
      std::printf("%s train_ops %d packed %d checkpointing %d: rows vs full forward max relative |diff| hidden %.3g, "
                  "gradients %.3g\n", std::get<0>(GetParam()).c_str(), int(std::get<1>(GetParam())), int(packed),
                  int(checkpointing), dh, dg);
      EXPECT_LE(dh, 1e-6);
      EXPECT_LE(dg, 1e-5);
      // The rows forward is not the full one by accident: another row set gives other values.
      const torch::Tensor others = (keep + 1).remainder(p.ids.numel());
      EXPECT_GT(max_abs_diff(m->forward_hidden_rows(p.ids, p.pos, seg, others).detach(), want.detach()), 1e-3);
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RowsForward,
                         testing::Combine(testing::Values("tiny-qwen2", "tiny-llama"), testing::Bool()),
                         [](const testing::TestParamInfo<std::tuple<std::string, bool>>& info) {
                           std::string name = std::get<0>(info.param);
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name + (std::get<1>(info.param) ? "_train_ops" : "_eager");
                         });

TEST(PackedForwardErrors, SegmentsMustMatchIds) {
  Transformer m(tiny_config());
  const torch::Tensor ids = torch::zeros({2, 5}, torch::kLong), pos = torch::zeros({2, 5}, torch::kLong);
  EXPECT_NE(error_of([&] { m->forward_hidden_packed(ids, pos, torch::zeros({2, 4}, torch::kLong)); })
                .find("segments must be [B,T] like ids"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m->forward_hidden_packed(ids, pos, torch::Tensor()); }).find("no segments given"),
            std::string::npos);
  EXPECT_NE(error_of([&] { m->forward_hidden_rows(ids, pos, {}, torch::zeros({2, 2}, torch::kLong)); })
                .find("keep must be [N] int64 row indices"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PackedForward,
                         testing::Combine(testing::Values("tiny-qwen2", "tiny-llama"),
                                          testing::Values(Kernels::kAten, Kernels::kOneDnn, Kernels::kSgemm)),
                         [](const testing::TestParamInfo<std::tuple<std::string, Kernels>>& info) {
                           std::string name = std::get<0>(info.param);
                           for (char& c : name)
                             if (c == '-') c = '_';
                           const Kernels k = std::get<1>(info.param);
                           return name + (k == Kernels::kAten ? "_aten" : k == Kernels::kOneDnn ? "_onednn" : "_sgemm");
                         });

}  // namespace
