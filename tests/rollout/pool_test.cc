// RolloutPool: several workers give the same groups as one, groups stream to the caller, and
// weight updates apply to the next groups with their version recorded.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "rollout/pool.h"
#include "tests/rollout/rollout_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

std::vector<PromptRequest> pool_prompts(const FixtureModel& f, int64_t g) {
  auto len100 = fixture_sequence(f, "len100");
  std::vector<PromptRequest> out;
  for (size_t i = 0; i < 6; ++i)
    out.push_back(request(std::vector<int64_t>(len100.begin() + 7 * i, len100.begin() + 7 * i + 3 + 4 * i), g));
  return out;
}

// The fixture's weights, perturbed: a different policy with the same shapes.
Transformer perturbed(FixtureModel& f, double scale, uint64_t seed) {
  torch::manual_seed(seed);
  Transformer m = clone_with_config(f.model, f.cfg);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * scale);
  return m;
}

std::vector<std::vector<int64_t>> tokens_of(const std::vector<Group>& groups) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& g : groups)
    for (const auto& s : g.samples) out.push_back(s.completion_ids);
  return out;
}

}  // namespace

TEST(RolloutPool, WorkersMatchOneWorkerAndStreamGroups) {
  R1_REQUIRE_FILE(fixture_dir("tiny-qwen2") + "/expected.json");
  auto f = load_fixture("tiny-qwen2");
  auto prompts = pool_prompts(f, 3);
  SamplingOptions o;
  o.max_new_tokens = 12;
  o.seed = 5;
  o.top_k = 50;

  PoolOptions one;
  RolloutPool single(f.model, one);
  auto ref = single.generate(prompts, o);

  PoolOptions two;
  two.num_workers = 2;
  two.engine.max_batch = 4;
  RolloutPool pool(f.model, two);
  std::vector<int64_t> streamed;
  std::set<int> workers;
  auto got = pool.generate(prompts, o, [&](const Group& g) {
    streamed.push_back(g.index);
    workers.insert(g.worker);
  });
  ASSERT_EQ(got.size(), prompts.size());
  EXPECT_EQ(streamed.size(), prompts.size()) << "one callback per group, before generate returns";
  EXPECT_EQ(std::set<int64_t>(streamed.begin(), streamed.end()).size(), prompts.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(got[i].prompt_ids, prompts[i].prompt_ids);
    EXPECT_EQ(got[i].weight_version, 0);
    ASSERT_EQ(got[i].samples.size(), 3u);
    for (size_t j = 0; j < 3; ++j) {
      EXPECT_EQ(got[i].samples[j].completion_ids, ref[i].samples[j].completion_ids) << "group " << i << " sample " << j;
      for (size_t t = 0; t < got[i].samples[j].logprobs.size(); ++t)
        EXPECT_NEAR(got[i].samples[j].logprobs[t], ref[i].samples[j].logprobs[t], 1e-4);
    }
  }
  auto st = pool.stats();
  EXPECT_EQ(st.prefills_per_request.size(), prompts.size());
  for (const auto& [index, count] : st.prefills_per_request) EXPECT_EQ(count, 1);
  // The pool matches the plain engine too.
  GenerationEngine engine(f.model);
  EXPECT_EQ(tokens_of(engine.generate(prompts, o)), tokens_of(ref));
}

TEST(RolloutPool, WeightUpdatesApplyToNextGroupsWithVersions) {
  R1_REQUIRE_FILE(fixture_dir("tiny-qwen2") + "/expected.json");
  auto f = load_fixture("tiny-qwen2");
  auto prompts = pool_prompts(f, 2);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 10;
  o.ignore_eos = true;
  Transformer v1 = perturbed(f, 0.05, 1), v2 = perturbed(f, 0.05, 2);
  GenerationEngine e0(f.model), e1(v1), e2(v2);
  auto ref0 = tokens_of(e0.generate(prompts, o));
  auto ref1 = tokens_of(e1.generate(prompts, o));
  auto ref2 = tokens_of(e2.generate(prompts, o));
  ASSERT_NE(ref0, ref1) << "the perturbed policy must behave differently for this test to mean anything";

  PoolOptions po;
  po.num_workers = 2;
  po.engine.max_batch = 2;
  RolloutPool pool(f.model, po);
  auto g0 = pool.generate(prompts, o);
  EXPECT_EQ(tokens_of(g0), ref0);
  for (const auto& g : g0) EXPECT_EQ(g.weight_version, 0);

  pool.update_weights(1, hf_state_dict(v1));
  {
    // The pool copied the tensors: changing the trainer's model afterwards changes nothing.
    torch::NoGradGuard no_grad;
    for (auto& p : v1->parameters()) p.mul_(3.0);
  }
  EXPECT_EQ(pool.weight_version(), 1);
  auto g1 = pool.generate(prompts, o);
  EXPECT_EQ(tokens_of(g1), ref1);
  for (const auto& g : g1) EXPECT_EQ(g.weight_version, 1);
  EXPECT_THROW(pool.update_weights(1, hf_state_dict(v2)), r1kit::Error);

  // Update while generating (from the first finished group): groups already started finish on the
  // old version, groups admitted afterwards use the new one; each matches its version's policy.
  // Whether any group is still queued when the caller's callback runs depends on scheduling (a loaded
  // machine can let the workers take every group first), so the update is retried, alternating v2 and
  // v1 under increasing versions, until a group on the new version is seen; every attempt is checked.
  const std::vector<std::vector<int64_t>>* refs[2] = {&ref1, &ref2};
  Transformer* models[2] = {&v1, &v2};
  v1 = perturbed(f, 0.05, 1);  // undo the *3 above: version 3, 5, ... load these weights again
  int64_t version = 1;
  bool saw_new = false;
  for (int attempt = 0; attempt < 20 && !saw_new; ++attempt) {
    const int64_t old_version = version, new_version = version + 1;
    const auto& old_ref = *refs[(old_version + 1) % 2];  // odd versions: v1, even: v2
    const auto& new_ref = *refs[(new_version + 1) % 2];
    std::atomic<bool> updated{false};
    auto g2 = pool.generate(prompts, o, [&](const Group&) {
      if (!updated.exchange(true)) pool.update_weights(new_version, hf_state_dict(*models[(new_version + 1) % 2]));
    });
    for (size_t i = 0; i < g2.size(); ++i) {
      ASSERT_TRUE(g2[i].weight_version == old_version || g2[i].weight_version == new_version);
      saw_new = saw_new || g2[i].weight_version == new_version;
      const auto& ref = g2[i].weight_version == old_version ? old_ref : new_ref;
      for (size_t j = 0; j < g2[i].samples.size(); ++j)
        ASSERT_EQ(g2[i].samples[j].completion_ids, ref[2 * i + j])
            << "attempt " << attempt << " group " << i << " version " << g2[i].weight_version;
    }
    version = new_version;
  }
  EXPECT_TRUE(saw_new) << "in 20 attempts no group was admitted after the update";
  auto g3 = pool.generate(prompts, o);
  EXPECT_EQ(tokens_of(g3), *refs[(version + 1) % 2]);
  for (const auto& g : g3) EXPECT_EQ(g.weight_version, version);
}

TEST(RolloutPool, ErrorsReachTheCaller) {
  R1_REQUIRE_FILE(fixture_dir("tiny-qwen2") + "/expected.json");
  auto f = load_fixture("tiny-qwen2");
  RolloutPool pool(f.model);
  SamplingOptions o;
  o.max_new_tokens = 4;
  EXPECT_THROW(pool.generate({request({f.cfg.vocab_size + 3})}, o), r1kit::Error);
  // A throwing callback stops the call and leaves the pool usable.
  auto prompts = pool_prompts(f, 1);
  EXPECT_THROW(pool.generate(prompts, o, [](const Group&) { throw r1kit::Error("reward failed"); }), r1kit::Error);
  EXPECT_EQ(pool.generate(prompts, o).size(), prompts.size());
}
