// Weight copies for decoding (model/decode_weight_copy.h). Bfloat16: a model whose float32 weights are
// all bfloat16 numbers decodes to the same bits with the copies as without them; the copies follow
// in-place writes (a weight sync, the fused q|k|v rows written through their parameters), new storage
// (Module::to), and are dropped when the weights leave the bfloat16 grid. k-chunked float32: made for
// rows longer than 4096 at batches under 4 only, in the documented layout, same bits, rebuilt on writes.
#include "model/decode_weight_copy.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/layer_ops.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

// Random float32 weights; bf16: rounded to bfloat16 numbers (a bf16 checkpoint loaded in float32).
void fill(Transformer& m, uint64_t seed, bool bf16) {
  torch::manual_seed(seed);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) {
    auto v = p.dim() == 1 ? torch::randn(p.sizes()) * 0.3 + 1.0 : torch::randn(p.sizes()) / std::sqrt(double(p.size(1)));
    if (bf16) v = v.to(torch::kBFloat16).to(torch::kFloat32);
    p.copy_(v);
  }
}

// Prefill of 2 rows, then 3 decode steps of one token each, as the rollout engine runs them (fused
// projections, InferenceMode, native kernels): every step's decode_logits, concatenated.
torch::Tensor decode(Transformer& m) {
  c10::InferenceMode inference;
  m->fuse_projections();
  const ModelConfig& cfg = m->config();
  KvCache cache(cfg, 2, 16, torch::kFloat32, torch::kCPU);
  auto ids = torch::tensor({{5, 9, 2, 7, 11}, {3, 1, 4, 1, 5}}, torch::kLong);
  auto pos = torch::arange(5, torch::kLong).unsqueeze(0).expand({2, 5});
  std::vector<torch::Tensor> out;
  auto h = m->forward_hidden(ids, pos, &cache);
  out.push_back(m->decode_logits(h.select(1, 4)));
  for (int64_t t = 0; t < 3; ++t) {
    auto next = std::get<1>(out.back().max(-1)).unsqueeze(1);  // [2, 1]
    auto p = torch::full({2, 1}, 5 + t, torch::kLong);
    out.push_back(m->decode_logits(m->forward_hidden(next, p, &cache).select(1, 0)));
  }
  return torch::stack(out);
}

// The same decode with the copies off.
torch::Tensor decode_without_copies(Transformer& m) {
  set_bf16_weight_copies_enabled(false);
  auto y = decode(m);
  set_bf16_weight_copies_enabled(true);
  return y;
}

// Copies on for the test (whatever $R1_BF16_WEIGHTS says), as they were afterwards.
struct CopiesOn {
  bool before = bf16_weight_copies_enabled();
  CopiesOn() { set_bf16_weight_copies_enabled(true); }
  ~CopiesOn() { set_bf16_weight_copies_enabled(before); }
};

TEST(Bf16WeightCopies, DecodeToTheFloat32BitsAndFollowWrites) {
  CopiesOn on;
  for (const char* type : {"qwen2", "llama"}) {
    SCOPED_TRACE(type);
    const ModelConfig cfg = tiny_config(type, /*tied=*/std::string(type) == "qwen2", 2);
    Transformer m(cfg), ref(cfg);
    fill(m, 1, true);
    fill(ref, 1, true);
    // Every decode weight (q|k|v, o, gate|up, down per layer, lm_head) gets a copy, once.
    const int64_t expected = 4 * cfg.num_hidden_layers + 1;
    const int64_t made = bf16_weight_copies_made();
    const auto with = decode(m);
    EXPECT_EQ(bf16_weight_copies_made() - made, expected);
    const auto without = decode_without_copies(ref);
    EXPECT_TRUE(torch::equal(with, without)) << "max diff " << max_abs_diff(with, without);
    EXPECT_TRUE(torch::equal(decode(m), with));
    EXPECT_EQ(bf16_weight_copies_made() - made, expected) << "unchanged weights reuse their copies";

    // A weight sync: new bf16 values copied into the parameters in place (the fused rows through
    // their parameters). Every copy is rebuilt; the result is the new weights' float32 decode.
    fill(m, 2, true);
    fill(ref, 2, true);
    const auto synced = decode(m);
    EXPECT_EQ(bf16_weight_copies_made() - made, 2 * expected);
    EXPECT_TRUE(torch::equal(synced, decode_without_copies(ref)));
    EXPECT_FALSE(torch::equal(synced, with));

    // One q_proj value moved off the bfloat16 grid: that layer's q|k|v decodes from float32.
    {
      torch::NoGradGuard g;
      auto& wq = m->layers->ptr<DecoderLayerImpl>(0)->self_attn->q_proj->weight;
      auto& rq = ref->layers->ptr<DecoderLayerImpl>(0)->self_attn->q_proj->weight;
      wq[0][0].mul_(1.0f + 1.0f / 1024);
      rq[0][0].mul_(1.0f + 1.0f / 1024);
    }
    EXPECT_TRUE(torch::equal(decode(m), decode_without_copies(ref)));
    EXPECT_EQ(bf16_weight_copies_made() - made, 2 * expected) << "no copy for weights off the bf16 grid";

    // Plain float32 weights: no copies at all.
    fill(m, 3, false);
    fill(ref, 3, false);
    EXPECT_TRUE(torch::equal(decode(m), decode_without_copies(ref)));
    EXPECT_EQ(bf16_weight_copies_made() - made, 2 * expected);

    // New storage (Module::to there and back: the fused rows are given up): copies of the new tensors.
    fill(m, 4, true);
    fill(ref, 4, true);
    m->to(torch::kFloat64);
    m->to(torch::kFloat32);
    EXPECT_TRUE(torch::equal(decode(m), decode_without_copies(ref)));
    EXPECT_EQ(bf16_weight_copies_made() - made, 3 * expected);
  }
}

// Plain float32 weights, a down projection with rows of 4200 (> 4096): batch-2 decoding makes one
// k-chunked copy per layer (of down_proj only) and gives the bits of decoding without them; the
// copies follow a weight sync; bfloat16 weights get bfloat16 copies instead.
TEST(ChunkedWeightCopies, DecodeToTheRowsBitsAndFollowWrites) {
  struct ChunkedOn {
    bool before = chunked_weight_copies_enabled();
    ChunkedOn() { set_chunked_weight_copies_enabled(true); }
    ~ChunkedOn() { set_chunked_weight_copies_enabled(before); }
  } on;
  CopiesOn bf16_on;
  ModelConfig cfg = tiny_config("qwen2", true, 2);
  cfg.intermediate_size = 4200;
  Transformer m(cfg), ref(cfg);
  fill(m, 1, false);
  fill(ref, 1, false);
  auto without = [&](Transformer& t) {
    set_chunked_weight_copies_enabled(false);
    auto y = decode(t);
    set_chunked_weight_copies_enabled(true);
    return y;
  };
  const int64_t made = chunked_weight_copies_made();
  const auto with = decode(m);
  EXPECT_EQ(chunked_weight_copies_made() - made, cfg.num_hidden_layers);
  const auto plain = without(ref);
  EXPECT_TRUE(torch::equal(with, plain)) << "max diff " << max_abs_diff(with, plain);
  EXPECT_TRUE(torch::equal(decode(m), with));
  EXPECT_EQ(chunked_weight_copies_made() - made, cfg.num_hidden_layers) << "unchanged weights reuse their copies";

  fill(m, 2, false);  // a weight sync, in place
  fill(ref, 2, false);
  const auto synced = decode(m);
  EXPECT_EQ(chunked_weight_copies_made() - made, 2 * cfg.num_hidden_layers);
  EXPECT_TRUE(torch::equal(synced, without(ref)));
  EXPECT_FALSE(torch::equal(synced, with));

  fill(m, 3, true);  // bfloat16 numbers: bfloat16 copies, no chunked ones
  EXPECT_TRUE(decode(m).defined());
  EXPECT_EQ(chunked_weight_copies_made() - made, 2 * cfg.num_hidden_layers);
}

// The copy's layout is the one cpu_kernels.h describes; only rows longer than 4096 get one, and only
// batches under 4 ask for it; a row decoded alone from it equals the same row in a batch of 5 read
// from the float32 rows.
TEST(ChunkedWeightCopies, LayoutAndWhenTheyAreUsed) {
  torch::manual_seed(5);
  const bool before = chunked_weight_copies_enabled();
  set_chunked_weight_copies_enabled(true);
  auto w = torch::randn({70, 4300});
  DecodeWeightCopy c;
  const auto packed = c.chunked(w);
  ASSERT_TRUE(packed.defined());
  EXPECT_TRUE(torch::equal(packed.reshape({-1}), chunked_layout(w)));
  DecodeWeightCopy short_rows;
  EXPECT_FALSE(short_rows.chunked(torch::randn({70, 4096})).defined());

  auto x = torch::randn({5, 4300});
  DecodeWeightCopy copies;
  const int64_t made = chunked_weight_copies_made();
  const auto five = linear(x, w, {}, Kernels::kNative, nullptr, &copies);
  EXPECT_EQ(chunked_weight_copies_made(), made) << "a batch of 5 reads the rows";
  for (int64_t r = 0; r < 5; ++r) {
    const auto one = linear(x.narrow(0, r, 1), w, {}, Kernels::kNative, nullptr, &copies);
    EXPECT_TRUE(torch::equal(one, five.narrow(0, r, 1))) << "row " << r;
  }
  EXPECT_EQ(chunked_weight_copies_made(), made + 1) << "one copy, made at the first batch of 1";

  set_chunked_weight_copies_enabled(false);
  DecodeWeightCopy off;
  EXPECT_FALSE(off.chunked(w).defined());
  set_chunked_weight_copies_enabled(before);
}

}  // namespace
