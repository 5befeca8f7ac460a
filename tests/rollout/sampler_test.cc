// Sampler checks against an independent double-precision reference of the filtered distribution
// (HF warper order: penalty, temperature, top-k, top-p on the top-k renormalised distribution,
// min-p): drawn tokens stay in the support, frequencies match, log-probs are those of
// softmax(logits / T), and a row's draw does not depend on the rest of the batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "rollout/sampler.h"

using namespace r1kit;

namespace {

std::vector<double> reference_probs(const std::vector<float>& logits, const SamplingOptions& o,
                                    const std::set<int64_t>& seen = {}) {
  const size_t V = logits.size();
  std::vector<double> x(V);
  const double T = o.temperature == 0 ? 1.0 : o.temperature;
  for (size_t i = 0; i < V; ++i) {
    double l = logits[i];
    if (o.repetition_penalty != 1.0 && seen.count(static_cast<int64_t>(i)))
      l = l > 0 ? l / o.repetition_penalty : l * o.repetition_penalty;
    x[i] = l / T;
  }
  const double mx = *std::max_element(x.begin(), x.end());
  std::vector<double> p(V);
  double z = 0;
  for (size_t i = 0; i < V; ++i) z += (p[i] = std::exp(x[i] - mx));
  for (auto& v : p) v /= z;
  std::vector<size_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
  std::vector<bool> keep(V, true);
  if (o.top_k > 0)
    for (size_t r = static_cast<size_t>(o.top_k); r < V; ++r) keep[order[r]] = false;
  if (o.top_p < 1) {
    double kept = 0, excl = 0;
    for (size_t i = 0; i < V; ++i)
      if (keep[i]) kept += p[i];
    for (size_t r = 0; r < V; ++r) {
      const size_t i = order[r];
      if (!keep[i]) continue;
      if (excl / kept >= o.top_p) keep[i] = false;
      excl += p[i];
    }
  }
  if (o.min_p > 0)
    for (size_t i = 0; i < V; ++i)
      if (p[i] < o.min_p * p[order[0]]) keep[i] = false;
  double kz = 0;
  for (size_t i = 0; i < V; ++i) kz += keep[i] ? p[i] : 0;
  std::vector<double> q(V);
  for (size_t i = 0; i < V; ++i) q[i] = keep[i] ? p[i] / kz : 0;
  return q;
}

std::vector<float> random_logits(int64_t V, double scale, uint64_t seed) {
  torch::manual_seed(seed);
  auto t = torch::randn({V}) * scale;
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + V);
}

double log_softmax_at(const std::vector<float>& logits, double T, int64_t tok) {
  double mx = -1e300, z = 0;
  for (float l : logits) mx = std::max(mx, l / T);
  for (float l : logits) z += std::exp(l / T - mx);
  return logits[tok] / T - mx - std::log(z);
}

// Draws n tokens from one logits row (steps 0..n-1 of one random stream) in a single call.
SampledTokens draw_many(const std::vector<float>& logits, const SamplingOptions& o, int64_t n, uint64_t seed,
                        const std::set<int64_t>& seen = {}) {
  const int64_t V = static_cast<int64_t>(logits.size());
  auto row = torch::tensor(logits).view({1, V});
  auto batch = row.expand({n, V}).contiguous();
  std::vector<SampleRow> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = {&o, seed, 0, i};
  torch::Tensor seen_t;
  if (!seen.empty()) {
    seen_t = torch::zeros({n, V}, torch::kBool);
    for (int64_t s : seen) seen_t.select(1, s).fill_(true);
  }
  return sample_tokens(batch, rows, seen_t);
}

void expect_matches_reference(const std::vector<float>& logits, const SamplingOptions& o,
                              const std::set<int64_t>& seen = {}) {
  const int64_t n = 20000;
  auto ref = reference_probs(logits, o, seen);
  auto drawn = draw_many(logits, o, n, 1234, seen);
  std::vector<double> freq(logits.size(), 0.0);
  const double T = o.temperature == 0 ? 1.0 : o.temperature;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = drawn.tokens[i];
    ASSERT_GT(ref[t], 0.0) << "token " << t << " is outside the filtered support";
    freq[t] += 1.0 / n;
    ASSERT_NEAR(drawn.logprobs[i], log_softmax_at(logits, T, t), 1e-5);
  }
  double tv = 0;
  for (size_t i = 0; i < ref.size(); ++i) tv += std::abs(freq[i] - ref[i]) / 2;
  EXPECT_LT(tv, 0.025) << "total variation between sampled and reference distributions";
}

}  // namespace

TEST(Sampler, CounterUniformIsAPureFunctionOfItsCounter) {
  EXPECT_EQ(counter_uniform(7, 1, 2), counter_uniform(7, 1, 2));
  std::set<double> seen;
  for (uint64_t s = 0; s < 4; ++s)
    for (uint64_t j = 0; j < 4; ++j)
      for (uint64_t t = 0; t < 4; ++t) {
        double u = counter_uniform(s, j, t);
        EXPECT_GE(u, 0.0);
        EXPECT_LT(u, 1.0);
        seen.insert(u);
      }
  EXPECT_EQ(seen.size(), 64u);
  EXPECT_NE(derive_seed(0, 0), derive_seed(0, 1));
  EXPECT_NE(derive_seed(0, 1), derive_seed(1, 0));
}

TEST(Sampler, GreedyIsArgmaxWithTemperatureOneLogprob) {
  auto logits = random_logits(50, 3.0, 1);
  SamplingOptions o;
  o.temperature = 0;
  auto d = draw_many(logits, o, 3, 9);
  const int64_t argmax = std::max_element(logits.begin(), logits.end()) - logits.begin();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.tokens[i], argmax);
    EXPECT_NEAR(d.logprobs[i], log_softmax_at(logits, 1.0, argmax), 1e-5);
  }
}

TEST(Sampler, TemperatureMatchesReferenceDistribution) {
  auto logits = random_logits(12, 1.5, 2);
  for (double T : {1.0, 0.5, 1.7}) {
    SamplingOptions o;
    o.temperature = T;
    expect_matches_reference(logits, o);
  }
}

TEST(Sampler, TopKTopPMinPMatchReference) {
  auto logits = random_logits(16, 1.5, 3);
  struct Case { double T, top_p; int64_t top_k; double min_p; };
  for (const Case& c : {Case{1.0, 1.0, 3, 0.0}, Case{0.8, 0.7, 0, 0.0}, Case{1.0, 0.8, 5, 0.0},
                        Case{1.0, 1.0, 0, 0.2}, Case{1.3, 0.9, 0, 0.05}, Case{0.9, 0.5, 8, 0.1}}) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " top_p=" << c.top_p << " top_k=" << c.top_k << " min_p=" << c.min_p);
    SamplingOptions o;
    o.temperature = c.T;
    o.top_p = c.top_p;
    o.top_k = c.top_k;
    o.min_p = c.min_p;
    expect_matches_reference(logits, o);
  }
}

TEST(Sampler, RepetitionPenaltyFollowsHfRuleButLogprobIgnoresIt) {
  std::vector<float> logits = {3.0f, 2.9f, -1.0f, 0.5f, -0.2f};
  SamplingOptions o;
  o.temperature = 0;
  o.repetition_penalty = 2.0;
  // Token 0 seen: 3.0 / 2 = 1.5 < 2.9, so greedy picks token 1.
  auto d = draw_many(logits, o, 1, 0, {0});
  EXPECT_EQ(d.tokens[0], 1);
  EXPECT_NEAR(d.logprobs[0], log_softmax_at(logits, 1.0, 1), 1e-6);
  // A negative seen logit is multiplied: -0.2 * 2 = -0.4.
  o.temperature = 1.0;
  expect_matches_reference(logits, o, {0, 4});
}

TEST(Sampler, LargeVocabularyTopPUsesCandidatesOrFullSortCorrectly) {
  // Peaked: the nucleus lies inside the top-256 candidates. Flat: it does not (full sort).
  for (double scale : {8.0, 0.3}) {
    auto logits = random_logits(3000, scale, 4);
    SamplingOptions o;
    o.top_p = 0.9;
    auto ref = reference_probs(logits, o);
    auto d = draw_many(logits, o, 500, 5);
    for (int64_t t : d.tokens) ASSERT_GT(ref[t], 0.0) << "scale " << scale << " token " << t;
    o.top_k = 300;
    ref = reference_probs(logits, o);
    d = draw_many(logits, o, 500, 5);
    for (int64_t t : d.tokens) ASSERT_GT(ref[t], 0.0) << "scale " << scale << " top_k token " << t;
  }
}

TEST(Sampler, RowDrawDoesNotDependOnTheRestOfTheBatch) {
  const int64_t V = 400;
  SamplingOptions plain, greedy, trunc, minp;
  greedy.temperature = 0;
  trunc.top_p = 0.8;
  trunc.top_k = 40;
  trunc.temperature = 0.7;
  minp.min_p = 0.1;
  std::vector<const SamplingOptions*> opts = {&plain, &greedy, &trunc, &minp, &plain, &trunc};
  std::vector<std::vector<float>> rows;
  for (size_t i = 0; i < opts.size(); ++i) rows.push_back(random_logits(V, 2.0, 10 + i));
  std::vector<SampleRow> specs;
  std::vector<torch::Tensor> all;
  for (size_t i = 0; i < opts.size(); ++i) {
    specs.push_back({opts[i], 100 + i, static_cast<int64_t>(i % 3), 5});
    all.push_back(torch::tensor(rows[i]).view({1, V}));
  }
  auto batched = sample_tokens(torch::cat(all, 0), specs);
  for (size_t i = 0; i < opts.size(); ++i) {
    auto alone = sample_tokens(all[i], {specs[i]});
    EXPECT_EQ(alone.tokens[0], batched.tokens[i]) << "row " << i;
    EXPECT_FLOAT_EQ(alone.logprobs[0], batched.logprobs[i]) << "row " << i;
  }
  // Another seed or step changes the draw somewhere.
  int differ = 0;
  for (size_t i = 0; i < opts.size(); ++i) {
    if (opts[i] == &greedy) continue;
    SampleRow other = specs[i];
    other.step += 1;
    differ += sample_tokens(all[i], {other}).tokens[0] != batched.tokens[i];
  }
  EXPECT_GT(differ, 0);
}

TEST(Sampler, ValidateNamesTheBadField) {
  SamplingOptions o;
  o.top_p = 0;
  try {
    o.validate();
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
  }
  o = SamplingOptions();
  o.temperature = -1;
  EXPECT_THROW(o.validate(), std::exception);
  o = SamplingOptions();
  o.max_new_tokens = 0;
  EXPECT_THROW(o.validate(), std::exception);
}
