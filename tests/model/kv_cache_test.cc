// KV cache semantics on tiny random models (no fixtures needed): cached prefill / decode equal the
// full causal forward, also for batched rows of different lengths, non-contiguous rows, copy_row
// prefix sharing and row reuse; bad calls raise Errors.
#include "model/kv_cache.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "model/generate.h"
#include "model/threads.h"
#include "model/transformer.h"
#include "tests/model/model_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

constexpr double kTol = 1e-4;  // float32 reassociation noise between cached and full attention

// A random model whose norms, biases and weights all matter (larger than the default init).
Transformer random_model(const ModelConfig& cfg, uint64_t seed = 0) {
  torch::manual_seed(seed);
  Transformer m(cfg);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) {
    if (p.dim() == 1) p.normal_(1.0, 0.3);  // norms and biases: clearly non-trivial
    else p.normal_(0.0, 0.6 / std::sqrt(double(p.size(1))) * 2.0);
  }
  return m;
}

std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  auto t = torch::randint(vocab, {n}, torch::Generator(at::detail::createCPUGenerator(seed)), torch::kLong);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
}

torch::Tensor ids_of(const std::vector<int64_t>& ids) { return torch::tensor(ids, torch::kLong).view({1, -1}); }

// Full (no cache) logits [T,V] of one sequence.
torch::Tensor full(Transformer& m, const std::vector<int64_t>& ids) {
  const int64_t T = int64_t(ids.size());
  return m->forward(ids_of(ids), torch::arange(T, torch::kLong).view({1, T})).select(0, 0);
}

struct Variant {
  std::string model_type;
  bool tied;
  int64_t n_kv;
};

class KvCacheTest : public testing::TestWithParam<Variant> {
 protected:
  ModelConfig cfg() const { return tiny_config(GetParam().model_type, GetParam().tied, GetParam().n_kv); }
};

TEST_P(KvCacheTest, BatchedDecodeWithDifferentLengthsMatchesFullForward) {
  const ModelConfig c = cfg();
  Transformer m = random_model(c);
  torch::NoGradGuard g;
  const std::vector<int64_t> prompt_len = {5, 11, 2};
  const int64_t steps = 6, B = 3;
  std::vector<std::vector<int64_t>> seqs;
  for (int64_t b = 0; b < B; ++b) seqs.push_back(random_ids(prompt_len[b] + steps, c.vocab_size, 10 + b));

  KvCache cache(c, B, 32, torch::kFloat32, torch::kCPU);
  for (int64_t b = 0; b < B; ++b) {  // prefill each row on its own
    std::vector<int64_t> row = {b};
    std::vector<int64_t> p(seqs[b].begin(), seqs[b].begin() + prompt_len[b]);
    auto logits = m->forward(ids_of(p), torch::arange(prompt_len[b], torch::kLong).view({1, -1}), &cache, &row);
    EXPECT_LE(max_abs_diff(logits.select(0, 0), full(m, p)), kTol);
  }
  double worst = 0;
  for (int64_t s = 0; s < steps; ++s) {  // one batched T=1 step for rows of lengths 5+s, 11+s, 2+s
    auto ids = torch::empty({B, 1}, torch::kLong), pos = torch::empty({B, 1}, torch::kLong);
    for (int64_t b = 0; b < B; ++b) {
      ids[b][0] = seqs[b][prompt_len[b] + s];
      pos[b][0] = prompt_len[b] + s;
    }
    auto logits = m->forward(ids, pos, &cache);  // [B,1,V]
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int64_t> prefix(seqs[b].begin(), seqs[b].begin() + prompt_len[b] + s + 1);
      worst = std::max(worst, max_abs_diff(logits[b][0], full(m, prefix)[-1]));
      EXPECT_EQ(cache.length(b), prompt_len[b] + s + 1);
    }
  }
  std::printf("[%s kv=%lld] batched decode vs full forward max|diff| %.3g\n", c.model_type.c_str(),
              (long long)c.num_key_value_heads, worst);
  EXPECT_LE(worst, kTol);
}

TEST_P(KvCacheTest, BatchedMultiTokenStepOnRaggedRowsInAnyOrder) {
  const ModelConfig c = cfg();
  Transformer m = random_model(c, 1);
  torch::NoGradGuard g;
  KvCache cache(c, 4, 40, torch::kFloat32, torch::kCPU);
  auto a = random_ids(12, c.vocab_size, 1), b = random_ids(7, c.vocab_size, 2);
  // Row 3 gets a (first 9), row 1 gets b (first 4); then one call adds 3 tokens to both, rows {3,1}.
  std::vector<int64_t> r3 = {3}, r1 = {1}, both = {3, 1};
  m->forward(ids_of({a.begin(), a.begin() + 9}), torch::arange(9, torch::kLong).view({1, -1}), &cache, &r3);
  m->forward(ids_of({b.begin(), b.begin() + 4}), torch::arange(4, torch::kLong).view({1, -1}), &cache, &r1);
  auto ids = torch::tensor({a[9], a[10], a[11], b[4], b[5], b[6]}, torch::kLong).view({2, 3});
  auto pos = torch::tensor({9, 10, 11, 4, 5, 6}, torch::kLong).view({2, 3});
  auto logits = m->forward(ids, pos, &cache, &both);  // [2,3,V]
  EXPECT_LE(max_abs_diff(logits[0], full(m, a).narrow(0, 9, 3)), kTol);
  EXPECT_LE(max_abs_diff(logits[1], full(m, b).narrow(0, 4, 3)), kTol);
  EXPECT_EQ(cache.length(3), 12);
  EXPECT_EQ(cache.length(1), 7);
  EXPECT_EQ(cache.length(0), 0);
}

TEST_P(KvCacheTest, CopyRowSharesThePrefix) {
  const ModelConfig c = cfg();
  Transformer m = random_model(c, 2);
  torch::NoGradGuard g;
  KvCache cache(c, 4, 24, torch::kFloat32, torch::kCPU);
  auto prefix = random_ids(6, c.vocab_size, 3);
  std::vector<int64_t> r0 = {0};
  m->forward(ids_of(prefix), torch::arange(6, torch::kLong).view({1, -1}), &cache, &r0);
  cache.copy_row(0, {1, 3});
  EXPECT_EQ(cache.length(1), 6);
  EXPECT_EQ(cache.length(3), 6);
  EXPECT_EQ(cache.length(2), 0);
  // One destination row into a fresh cache: the prefix K/V arrive unchanged.
  KvCache single(c, 2, 24, torch::kFloat32, torch::kCPU);
  m->forward(ids_of(prefix), torch::arange(6, torch::kLong).view({1, -1}), &single, &r0);
  single.copy_row(0, {1});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    EXPECT_TRUE(torch::equal(single.k(l)[1].narrow(1, 0, 6), single.k(l)[0].narrow(1, 0, 6)));
    EXPECT_TRUE(torch::equal(single.v(l)[1].narrow(1, 0, 6), single.v(l)[0].narrow(1, 0, 6)));
  }
  std::vector<int64_t> rows = {0, 1, 3};
  std::vector<std::vector<int64_t>> seqs(3, prefix);
  for (int64_t s = 0; s < 4; ++s) {
    auto ids = torch::empty({3, 1}, torch::kLong);
    for (int64_t b = 0; b < 3; ++b) {
      seqs[b].push_back((7 * s + 13 * b + 1) % c.vocab_size);  // different continuations per row
      ids[b][0] = seqs[b].back();
    }
    auto logits = m->forward(ids, torch::full({3, 1}, 6 + s, torch::kLong), &cache, &rows);
    for (int64_t b = 0; b < 3; ++b) EXPECT_LE(max_abs_diff(logits[b][0], full(m, seqs[b])[-1]), kTol);
  }
}

TEST_P(KvCacheTest, ResetRowIsReusable) {
  const ModelConfig c = cfg();
  Transformer m = random_model(c, 3);
  torch::NoGradGuard g;
  KvCache cache(c, 1, 16, torch::kFloat32, torch::kCPU);
  auto first = random_ids(10, c.vocab_size, 4), second = random_ids(4, c.vocab_size, 5);
  m->forward(ids_of(first), torch::arange(10, torch::kLong).view({1, -1}), &cache);
  cache.reset_row(0);
  auto logits = m->forward(ids_of(second), torch::arange(4, torch::kLong).view({1, -1}), &cache).select(0, 0);
  EXPECT_LE(max_abs_diff(logits, full(m, second)), kTol);  // stale slots 4..9 are masked out
}

INSTANTIATE_TEST_SUITE_P(Variants, KvCacheTest,
                         testing::Values(Variant{"llama", false, 2}, Variant{"qwen2", true, 2},
                                         Variant{"llama", true, 1}, Variant{"qwen2", false, 4}),
                         [](const testing::TestParamInfo<Variant>& i) {
                           return i.param.model_type + (i.param.tied ? "_tied" : "_untied") + "_kv" +
                                  std::to_string(i.param.n_kv);
                         });

TEST(KvCache, BatchWithoutCacheEqualsRowByRow) {
  const ModelConfig c = tiny_config();
  Transformer m = random_model(c, 4);
  torch::NoGradGuard g;
  auto a = random_ids(9, c.vocab_size, 6), b = random_ids(9, c.vocab_size, 7);
  auto ids = torch::cat({ids_of(a), ids_of(b)}, 0);
  auto pos = torch::arange(9, torch::kLong).view({1, 9}).expand({2, 9});
  auto logits = m->forward(ids, pos);  // [2,9,V]
  EXPECT_LE(max_abs_diff(logits[0], full(m, a)), kTol);
  EXPECT_LE(max_abs_diff(logits[1], full(m, b)), kTol);
  // forward == logits_from_hidden(forward_hidden)
  EXPECT_TRUE(torch::equal(logits, m->logits_from_hidden(m->forward_hidden(ids, pos))));
}

TEST(KvCache, BadCallsRaiseErrors) {
  const ModelConfig c = tiny_config();
  Transformer m = random_model(c, 5);
  torch::NoGradGuard g;
  KvCache cache(c, 2, 4, torch::kFloat32, torch::kCPU);
  auto five = torch::zeros({1, 5}, torch::kLong);
  EXPECT_NE(error_of([&] { m->forward(five, five, &cache); }).find("exceed max_len 4"), std::string::npos);
  std::vector<int64_t> dup = {1, 1};
  auto two = torch::zeros({2, 1}, torch::kLong);
  EXPECT_NE(error_of([&] { m->forward(two, two, &cache, &dup); }).find("used twice"), std::string::npos);
  std::vector<int64_t> bad = {0, 7};
  EXPECT_NE(error_of([&] { m->forward(two, two, &cache, &bad); }).find("row 7 out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { cache.copy_row(2, {0}); }).find("row 2 out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { cache.set_length(0, 5); }).find("out of range"), std::string::npos);
  EXPECT_EQ(cache.length(0), 0);  // failed calls leave lengths untouched
  EXPECT_EQ(cache.nbytes(), 2 * 2 * (2 * 2 * 4 * 8) * 4);
}

TEST(KvCache, GenerateGreedyEqualsFullRecomputeAndStopsOnStopIds) {
  const ModelConfig c = tiny_config("qwen2", true);
  Transformer m = random_model(c, 6);
  auto prompt = random_ids(5, c.vocab_size, 8);
  GenerateOptions o;
  o.max_new_tokens = 12;
  auto out = generate_tokens(m, prompt, o);
  ASSERT_EQ(out.size(), 12u);
  std::vector<int64_t> seq = prompt;
  torch::NoGradGuard g;
  for (int64_t tok : out) {
    EXPECT_EQ(full(m, seq)[-1].argmax().item<int64_t>(), tok);
    seq.push_back(tok);
  }
  o.stop_ids = {out[3]};
  auto stopped = generate_tokens(m, prompt, o);
  const size_t first = std::find(out.begin(), out.end(), out[3]) - out.begin();
  EXPECT_EQ(stopped, std::vector<int64_t>(out.begin(), out.begin() + first + 1));
  // Sampling: same seed, same tokens; tokens stay in the vocabulary.
  o.stop_ids.clear();
  o.temperature = 1.0;
  o.seed = 42;
  auto s1 = generate_tokens(m, prompt, o), s2 = generate_tokens(m, prompt, o);
  EXPECT_EQ(s1, s2);
  for (int64_t t : s1) EXPECT_TRUE(t >= 0 && t < c.vocab_size);
}

TEST(Threads, SetDefaultThreadsHonoursR1Threads) {
  ::setenv("R1_THREADS", "2", 1);
  EXPECT_EQ(set_default_threads(), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  ::setenv("R1_THREADS", "zero", 1);
  EXPECT_NE(error_of([] { set_default_threads(); }).find("R1_THREADS"), std::string::npos);
  ::unsetenv("R1_THREADS");
  EXPECT_GE(set_default_threads(), 1);
}

}  // namespace
