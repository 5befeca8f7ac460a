// RewardSet: config parsing (weights, labels, errors naming file and key), weighted totals,
// parallel == serial, failure isolation, statistics; and the registry.
#include "rewards/reward_set.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cmath>
#include <fstream>

#include "core/fs.h"
#include "core/thread_pool.h"
#include "rewards/registry.h"

namespace r1kit::rewards {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/r1kit_reward_set_" + name;
  write_file_atomic(path, text);
  return path;
}

RewardSet load_set(const std::string& name, const std::string& yaml) {
  ConfigNode node = ConfigNode::load(write_temp(name, yaml));
  RewardSet set = RewardSet::from_config(node);
  node.finish();
  return set;
}

std::string error_of(const std::string& name, const std::string& yaml) {
  try {
    load_set(name, yaml);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<RewardInput> countdown_samples(int n) {
  std::vector<RewardInput> out;
  const char* completions[] = {"<think>easy</think><answer>3*5+7</answer>", "<think>hmm</think><answer>7*5+3</answer>",
                               "no tags at all", "<think>x</think>\n<answer>(3+5)*7</answer>",
                               "<think>a b c a b c a b c</think><answer>3*5+7</answer>"};
  for (int i = 0; i < n; ++i) {
    RewardInput in;
    in.prompt = "Use 3, 5, 7 to make 22.";
    in.completion = completions[i % 5] + std::string(static_cast<std::size_t>(i % 7), ' ');
    in.fields = {{"nums", {3, 5, 7}}, {"target", 22}};
    out.push_back(in);
  }
  return out;
}

TEST(RewardSet, WeightedTotalFromYaml) {
  RewardSet set = load_set("weights.yaml",
                           "rewards:\n"
                           "  - {name: countdown, weight: 1.0}\n"
                           "  - {name: format, weight: 0.1, options: {think_prefilled: false}}\n"
                           "  - {name: repetition, weight: 0.5, options: {ngram_size: 3}}\n");
  ASSERT_EQ(set.entries().size(), 3u);
  EXPECT_EQ(set.entries()[1].label, "format");
  EXPECT_DOUBLE_EQ(set.entries()[1].weight, 0.1);
  const auto inputs = countdown_samples(5);
  const auto scores = set.score(inputs, nullptr);
  // countdown: 1, 0.1, 0, 0.1, 1; format: 1, 1, 0, 1, 1; repetition of sample 4: 9 words, 7 trigrams,
  // 5 distinct
  // (words: "<think>a", "b", "c", "a", "b", "c", "a", "b", "c</think><answer>3*5+7</answer>")
  const double expected[] = {1.0 + 0.1, 0.1 + 0.1, 0.0, 0.1 + 0.1, 1.0 + 0.1 + 0.5 * (-(1.0 - 5.0 / 7.0))};
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    EXPECT_NEAR(scores[i].total, expected[i], 1e-12);
    double sum = 0;
    for (std::size_t k = 0; k < 3; ++k) sum += set.entries()[k].weight * scores[i].outputs[k].score;
    EXPECT_DOUBLE_EQ(scores[i].total, sum);
    EXPECT_EQ(scores[i].errors, 0);
  }
}

TEST(RewardSet, IssueExampleWithMathAccuracy) {
  RewardSet set = load_set("issue.yaml",
                           "rewards:\n"
                           "  - {name: accuracy, weight: 1.0}\n"
                           "  - {name: format, weight: 0.1, options: {think_prefilled: false}}\n"
                           "  - {name: math, label: math_alias, weight: 0.0}\n");
  EXPECT_EQ(set.entries()[2].name, "accuracy");
  std::vector<RewardInput> in(3);
  in[0].completion = "<think>2+2=4</think>The answer is $\\boxed{4}$.";
  in[1].completion = "<think>2+2=5</think>The answer is $\\boxed{5}$.";
  in[2].completion = "The answer is $\\boxed{4}$.";
  for (auto& i : in) i.fields = {{"answer", "4"}};
  ThreadPool pool(2);
  const auto s = set.score(in, &pool);
  EXPECT_DOUBLE_EQ(s[0].total, 1.1);
  EXPECT_DOUBLE_EQ(s[1].total, 0.1);
  EXPECT_DOUBLE_EQ(s[2].total, 1.0);
  EXPECT_EQ(s[2].outputs[2].score, 1.0);
}

TEST(RewardSet, NamesOnlyAndAliasesAndLabels) {
  RewardSet set = load_set("names.json",
                           R"({"rewards": ["format", {"name": "language_consistency"},
                               {"name": "format", "label": "format_answer", "options": {"answer_tags": true}}]})");
  ASSERT_EQ(set.entries().size(), 3u);
  EXPECT_EQ(set.entries()[1].name, "language");
  EXPECT_EQ(set.entries()[1].label, "language_consistency");
  EXPECT_EQ(set.entries()[2].label, "format_answer");
  RewardInput in;
  in.completion = "<think>ok</think>42";
  const auto s = set.score({in}, nullptr);
  EXPECT_EQ(s[0].outputs[0].score, 1.0);
  EXPECT_EQ(s[0].outputs[2].score, 0.0);  // no <answer> tags
  const json j = set.to_json(s[0]);
  EXPECT_EQ(j["reward"], 2.0);
  EXPECT_EQ(j["rewards"]["format_answer"], 0.0);
  EXPECT_TRUE(j["reward_diagnostics"].contains("format"));
  EXPECT_FALSE(j.contains("reward_errors"));
}

TEST(RewardSet, ConfigErrorsNameFileAndKey) {
  std::string e = error_of("unknown.yaml", "rewards:\n  - {name: format}\n  - {name: accurracy_typo}\n");
  EXPECT_NE(e.find("unknown.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("rewards[1].name"), std::string::npos) << e;
  EXPECT_NE(e.find("accurracy_typo"), std::string::npos) << e;
  EXPECT_NE(e.find("countdown"), std::string::npos) << "lists the registered rewards: " << e;

  e = error_of("option.yaml", "rewards:\n  - {name: format, options: {think_prefiled: true}}\n");
  EXPECT_NE(e.find("option.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("rewards[0].options.think_prefiled"), std::string::npos) << e;

  e = error_of("key.yaml", "rewards:\n  - {name: format, wieght: 2}\n");
  EXPECT_NE(e.find("rewards[0].wieght"), std::string::npos) << e;

  e = error_of("value.yaml", "rewards:\n  - {name: overlong, options: {max_len: 10, cache_len: 20}}\n");
  EXPECT_NE(e.find("rewards[0].options.max_len"), std::string::npos) << e;

  e = error_of("enum.yaml", "rewards:\n  - {name: language, options: {language: xx}}\n");
  EXPECT_NE(e.find("rewards[0].options.language"), std::string::npos) << e;

  e = error_of("type.yaml", "rewards:\n  - {name: format, weight: heavy}\n");
  EXPECT_NE(e.find("rewards[0].weight"), std::string::npos) << e;

  e = error_of("dup.yaml", "rewards: [format, format]\n");
  EXPECT_NE(e.find("used twice"), std::string::npos) << e;

  e = error_of("empty.yaml", "rewards: []\n");
  EXPECT_NE(e.find("non-empty"), std::string::npos) << e;

  e = error_of("inner.yaml", "rewards:\n  - {name: cosine, options: {correctness: {name: nope}}}\n");
  EXPECT_NE(e.find("rewards[0].options.correctness.name"), std::string::npos) << e;

  e = error_of("plugin.yaml", "rewards:\n  - {name: plugin, options: {}}\n");
  EXPECT_NE(e.find("rewards[0].options.command"), std::string::npos) << e;
}

TEST(RewardSet, ParallelEqualsSerial) {
  RewardSet set = load_set("parallel.yaml",
                           "rewards:\n"
                           "  - {name: countdown, weight: 1.0}\n"
                           "  - {name: format, weight: 0.1}\n"
                           "  - {name: tag_count, weight: 0.2}\n"
                           "  - {name: language, weight: 0.3}\n"
                           "  - {name: repetition, weight: 0.5}\n"
                           "  - {name: overlong, weight: 1.0, options: {max_len: 30, cache_len: 10}}\n"
                           "  - {name: cosine, weight: 1.0, options: {correctness: {name: countdown}, max_len: 60}}\n");
  const auto inputs = countdown_samples(203);
  ThreadPool pool(3);
  const auto parallel = set.score(inputs, &pool);
  const auto serial = set.score(inputs, nullptr);
  ASSERT_EQ(parallel.size(), inputs.size());
  double spread = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(parallel[i].total, serial[i].total) << i;
    spread += std::fabs(parallel[i].total - parallel[0].total);
    for (std::size_t k = 0; k < set.entries().size(); ++k) {
      EXPECT_EQ(parallel[i].outputs[k].score, serial[i].outputs[k].score);
      EXPECT_EQ(parallel[i].outputs[k].components, serial[i].outputs[k].components);
      EXPECT_EQ(parallel[i].outputs[k].diagnostics, serial[i].outputs[k].diagnostics);
    }
  }
  EXPECT_GT(spread, 1.0) << "samples should not all score the same";
}

// A reward that throws on one sample, or returns the wrong number of outputs.
class FlakyReward : public Reward {
 public:
  explicit FlakyReward(bool wrong_count) : wrong_count_(wrong_count) {}
  RewardOutput score_one(const RewardInput& in) const override {
    if (in.completion == "boom") throw Error("boom sample");
    RewardOutput o;
    o.score = 2.0;
    return o;
  }
  std::vector<RewardOutput> score_batch(const std::vector<RewardInput>& in, ThreadPool* pool) const override {
    auto out = Reward::score_batch(in, pool);
    if (wrong_count_) out.pop_back();
    return out;
  }

 private:
  bool wrong_count_;
};

TEST(RewardSet, AThrowingRewardOnlyFailsItsSample) {
  for (bool wrong_count : {false, true}) {
    RewardSet set;
    set.add({"flaky", "flaky", 0.5, -3.0, std::make_shared<FlakyReward>(wrong_count)});
    set.add({"format", "format", 1.0, 0.0, RewardRegistry::global().create("format")});
    std::vector<RewardInput> in(4);
    in[0].completion = "<think>a</think>b";
    in[1].completion = "boom";
    in[2].completion = "x";
    in[3].completion = "<think>c</think>d";
    ThreadPool pool(2);
    const auto s = set.score(in, &pool);
    EXPECT_EQ(s[0].outputs[0].score, 2.0);
    EXPECT_TRUE(s[1].outputs[0].error);
    EXPECT_NE(s[1].outputs[0].error_message.find("boom sample"), std::string::npos);
    EXPECT_EQ(s[1].outputs[0].score, -3.0);
    EXPECT_EQ(s[1].errors, 1);
    EXPECT_DOUBLE_EQ(s[1].total, 0.5 * -3.0 + 0.0);
    EXPECT_DOUBLE_EQ(s[3].total, 0.5 * 2.0 + 1.0);
    EXPECT_EQ(s[2].errors, 0);
    EXPECT_EQ(set.to_json(s[1])["reward_errors"]["flaky"], "boom sample");
  }
}

// Sleeps `seconds` on a sample whose completion is "slow" (a stand-in for a hung reward).
class SlowReward : public Reward {
 public:
  explicit SlowReward(double seconds) : seconds_(seconds) {}
  RewardOutput score_one(const RewardInput& in) const override {
    if (in.completion == "slow") std::this_thread::sleep_for(std::chrono::duration<double>(seconds_));
    RewardOutput out;
    out.score = 1.0;
    return out;
  }

 private:
  double seconds_;
};

TEST(RewardSet, ABatchOverItsTimeLimitGetsErrorsAndTheCallReturns) {
  RewardSet set;
  set.add({"slow", "slow", 1.0, 0.0, std::make_shared<SlowReward>(3.0), /*timeout_s=*/0.5});
  set.add({"format", "format", 1.0, 0.0, RewardRegistry::global().create("format")});
  std::vector<RewardInput> in(3);
  in[0].completion = "<think>a</think>b";
  in[1].completion = "slow";
  in[2].completion = "x";
  ThreadPool pool(2);
  const auto t0 = std::chrono::steady_clock::now();
  const auto s = set.score(in, &pool);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ timeout ] returned after %.2f s (limit 0.5 s, the reward sleeps 3 s)\n", waited);
  EXPECT_LT(waited, 2.5);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(s[i].outputs[0].error) << i;  // the whole batch of the slow reward
    EXPECT_NE(s[i].outputs[0].error_message.find("timed out"), std::string::npos);
    EXPECT_FALSE(s[i].outputs[1].error);  // the other reward still scores
  }
  EXPECT_EQ(s[0].outputs[1].score, 1.0);
  // The config key, and its check.
  EXPECT_EQ(load_set("timeout.yaml", "rewards:\n  - {name: format, timeout_s: 2.5}\n").entries()[0].timeout_s, 2.5);
  EXPECT_NE(error_of("timeout_bad.yaml", "rewards:\n  - {name: format, timeout_s: -1}\n").find("timeout_s"),
            std::string::npos);
}

TEST(RewardStats, MeanStdMinMaxErrors) {
  RewardSet set;
  set.add({"flaky", "flaky", 1.0, -1.0, std::make_shared<FlakyReward>(false)});
  set.add({"format", "format", 2.0, 0.0, RewardRegistry::global().create("format")});
  std::vector<RewardInput> in(4);
  in[0].completion = "<think>a</think>b";  // flaky 2, format 1 -> total 4
  in[1].completion = "boom";               // flaky -1 (error), format 0 -> total -1
  in[2].completion = "x";                  // 2, 0 -> 2
  in[3].completion = "<think>c</think>d";  // 2, 1 -> 4
  RewardStats stats(set);
  stats.add(set.score(in, nullptr));
  const auto& c = stats.columns();
  ASSERT_EQ(c.size(), 3u);
  EXPECT_DOUBLE_EQ(c[0].mean, 1.25);
  EXPECT_NEAR(c[0].std(), std::sqrt((3 * 0.75 * 0.75 + 2.25 * 2.25) / 4), 1e-12);
  EXPECT_EQ(c[0].min, -1.0);
  EXPECT_EQ(c[0].max, 2.0);
  EXPECT_EQ(c[0].errors, 1);
  EXPECT_DOUBLE_EQ(c[1].mean, 0.5);
  EXPECT_EQ(c[2].label, "total");
  EXPECT_DOUBLE_EQ(c[2].mean, 2.25);
  EXPECT_EQ(c[2].errors, 1);
  const json j = stats.to_json();
  EXPECT_EQ(j["format/max"], 1.0);
  EXPECT_EQ(j["total/min"], -1.0);
  EXPECT_NE(stats.table().find("total"), std::string::npos);
}

TEST(RewardRegistry, ListsEveryBuiltinWithHelp) {
  const auto infos = RewardRegistry::global().list();
  std::set<std::string> names;
  for (const auto& i : infos) {
    names.insert(i.name);
    EXPECT_GT(i.help.size(), 40u) << i.name;
  }
  for (const char* n : {"format", "tag_count", "language", "cosine", "overlong", "repetition", "countdown", "plugin"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(RewardRegistry::global().canonical("repetition_penalty"), "repetition");
  EXPECT_EQ(RewardRegistry::global().canonical("nope"), "");
}

TEST(RewardRegistry, DefaultsConstructAndDuplicatesAreRejected) {
  for (const auto& info : RewardRegistry::global().list()) {
    // need a command, sandbox settings or a model directory
    if (info.name == "plugin" || info.name == "code" || info.name == "reward_model" || info.name == "llm_judge") continue;
    if (info.name == "cosine" && !RewardRegistry::global().contains("accuracy")) continue;
    EXPECT_NO_THROW(RewardRegistry::global().create(info.name)) << info.name;
  }
  RewardRegistry local;
  local.add({"mine", {"alias"}, "help", [](ConfigNode&) { return std::make_unique<FlakyReward>(false); }});
  EXPECT_THROW(local.add({"alias", {}, "h", [](ConfigNode&) { return std::make_unique<FlakyReward>(false); }}),
               Error);
  EXPECT_NE(local.create("alias"), nullptr);
  EXPECT_THROW(local.create("other"), Error);
}

}  // namespace
}  // namespace r1kit::rewards
