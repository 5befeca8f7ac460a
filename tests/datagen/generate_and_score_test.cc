// The generate-and-score driver: every prompt's group arrives once, in prompt order, chunk by
// chunk, scored by the reward set; samples depend only on the prompt id (not on chunking, order or
// which prompts were skipped as already done), so a resumed job reproduces an uninterrupted one.
#include "datagen/generate_and_score.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/rollout/rollout_test_util.h"

using namespace r1kit;
using namespace r1kit::test;
using datagen::PromptItem;
using datagen::ScoredGroup;

namespace {

// Scores a completion by its number of even token ids (decoded as "id,id,...").
class EvenTokensReward : public rewards::Reward {
 public:
  rewards::RewardOutput score_one(const rewards::RewardInput& in) const override {
    rewards::RewardOutput out;
    int even = 0;
    size_t pos = 0;
    while (pos < in.completion.size()) {
      size_t end = in.completion.find(',', pos);
      if (end == std::string::npos) end = in.completion.size();
      even += std::stoll(in.completion.substr(pos, end - pos)) % 2 == 0;
      pos = end + 1;
    }
    out.score = even;
    return out;
  }
};

std::string ids_text(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::vector<PromptItem> items(const FixtureModel& f) {
  auto len100 = fixture_sequence(f, "len100");
  std::vector<PromptItem> out;
  for (int i = 0; i < 7; ++i) {
    PromptItem p;
    p.id = "p" + std::to_string(i);
    p.ids.assign(len100.begin() + 5 * i, len100.begin() + 5 * i + 2 + i);
    p.text = ids_text(p.ids);
    p.record = {{"row", i}};
    out.push_back(std::move(p));
  }
  return out;
}

struct JobOutput {
  std::map<std::string, std::vector<std::vector<int64_t>>> tokens;  // id -> samples
  std::map<std::string, std::vector<double>> totals;
  std::vector<std::string> order;  // ids as handed over
  std::vector<size_t> chunk_sizes;
};

JobOutput run_job(RolloutPool& pool, const rewards::RewardSet& set, const std::vector<PromptItem>& prompts, int64_t chunk) {
  datagen::DriverOptions o;
  o.samples_per_prompt = 3;
  o.chunk_prompts = chunk;
  o.sampling.max_new_tokens = 6;
  o.sampling.top_k = 40;
  o.sampling.seed = 11;
  JobOutput r;
  datagen::generate_and_score(pool, &set, prompts, o, [&](std::vector<ScoredGroup>&& groups) {
    r.chunk_sizes.push_back(groups.size());
    for (auto& g : groups) {
      r.order.push_back(g.prompt->id);
      EXPECT_EQ(g.group.id, g.prompt->id);
      EXPECT_EQ(g.scores.size(), g.group.samples.size());
      for (size_t s = 0; s < g.group.samples.size(); ++s) {
        r.tokens[g.prompt->id].push_back(g.group.samples[s].completion_ids);
        r.totals[g.prompt->id].push_back(g.scores[s].total);
      }
    }
  });
  return r;
}

}  // namespace

TEST(GenerateAndScore, ChunksInOrderScoredAndIndependentOfChunkingOrderAndResume) {
  R1_REQUIRE_FILE(fixture_dir("tiny-qwen2") + "/expected.json");
  auto f = load_fixture("tiny-qwen2");
  PoolOptions po;
  po.num_workers = 2;
  RolloutPool pool(f.model, po, [](const std::vector<int64_t>& ids) { return ids_text(ids); });
  rewards::RewardSet set;
  rewards::RewardEntry e;
  e.label = e.name = "even";
  e.weight = 0.5;
  e.reward = std::make_shared<EvenTokensReward>();
  set.add(e);

  const auto prompts = items(f);
  JobOutput a = run_job(pool, set, prompts, 3);
  EXPECT_EQ(a.chunk_sizes, (std::vector<size_t>{3, 3, 1}));
  std::vector<std::string> want_order;
  for (const auto& p : prompts) want_order.push_back(p.id);
  EXPECT_EQ(a.order, want_order);
  for (const auto& [id, samples] : a.tokens) {
    ASSERT_EQ(samples.size(), 3u);
    for (size_t s = 0; s < samples.size(); ++s) {
      EvenTokensReward r;
      rewards::RewardInput in;
      in.completion = ids_text(samples[s]);
      EXPECT_DOUBLE_EQ(a.totals[id][s], 0.5 * r.score_one(in).score) << id << " sample " << s;
    }
  }
  // Different chunking, reversed order, and a "resumed" job over the last four prompts only.
  std::vector<PromptItem> reversed(prompts.rbegin(), prompts.rend());
  JobOutput b = run_job(pool, set, reversed, 5);
  EXPECT_EQ(b.tokens, a.tokens);
  std::vector<PromptItem> rest(prompts.begin() + 3, prompts.end());
  JobOutput c = run_job(pool, set, rest, 2);
  for (const auto& [id, samples] : c.tokens) EXPECT_EQ(samples, a.tokens[id]) << id;
}

TEST(GenerateAndScore, RejectsDuplicateOrEmptyIds) {
  R1_REQUIRE_FILE(fixture_dir("tiny-qwen2") + "/expected.json");
  auto f = load_fixture("tiny-qwen2");
  RolloutPool pool(f.model);
  auto prompts = items(f);
  prompts[2].id = prompts[1].id;
  datagen::DriverOptions o;
  auto ignore = [](std::vector<ScoredGroup>&&) {};
  try {
    datagen::generate_and_score(pool, nullptr, prompts, o, ignore);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'p1' appears twice"), std::string::npos) << e.what();
  }
  prompts[2].id = "";
  EXPECT_THROW(datagen::generate_and_score(pool, nullptr, prompts, o, ignore), Error);
}

TEST(GenerateAndScore, PromptSeedDependsOnIdAndBaseSeedOnly) {
  EXPECT_EQ(datagen::prompt_seed(1, "gsm8k/17"), datagen::prompt_seed(1, "gsm8k/17"));
  EXPECT_NE(datagen::prompt_seed(1, "gsm8k/17"), datagen::prompt_seed(2, "gsm8k/17"));
  EXPECT_NE(datagen::prompt_seed(1, "gsm8k/17"), datagen::prompt_seed(1, "gsm8k/71"));
  EXPECT_GE(datagen::prompt_seed(~0ULL, "x"), 0);
}
