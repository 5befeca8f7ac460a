// Offline scoring of a JSONL file (the `r1kit reward` command's engine).
#include "rewards/score_jsonl.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/fs.h"
#include "core/thread_pool.h"

namespace r1kit::rewards {
namespace {

std::string temp(const std::string& name) { return ::testing::TempDir() + "/r1kit_score_jsonl_" + name; }

RewardSet make_set() {
  json cfg = json::parse(R"({"rewards": [{"name": "countdown"}, {"name": "format", "weight": 0.5}]})");
  ConfigNode node(cfg, "inline");
  return RewardSet::from_config(node);
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  for_each_jsonl(path, [&](const json& r, int) { out.push_back(r); });
  return out;
}

TEST(ScoreJsonl, FieldsTopLevelOrNestedAndOutputKeys) {
  const std::string in = temp("in.jsonl"), out = temp("out.jsonl");
  write_file_atomic(in,
                    R"({"prompt": "p", "completion": "<think>t</think><answer>1+2</answer>", "nums": [1, 2], "target": 3, "id": 7})"
                    "\n\n"
                    R"({"completion": "<answer>2-1</answer>", "fields": {"nums": [1, 2], "target": 3}, "reward": 99, "reward_errors": {}})"
                    "\n"
                    R"({"prompt": "p", "completion": "nothing", "fields": {"numbers": [1, 2]}})"
                    "\n");
  ThreadPool pool(2);
  ScoreFileOptions o;
  o.batch_size = 2;  // two batches
  RewardStats stats = score_jsonl_file(make_set(), in, out, &pool, o);
  const auto rows = read_jsonl(out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["id"], 7);  // input keys are kept
  EXPECT_EQ(rows[0]["rewards"]["countdown"], 1.0);
  EXPECT_EQ(rows[0]["rewards"]["format"], 1.0);
  EXPECT_EQ(rows[0]["reward"], 1.5);
  EXPECT_EQ(rows[1]["rewards"]["countdown"], 0.1);  // 2-1 = 1
  EXPECT_EQ(rows[1]["rewards"]["format"], 0.0);
  EXPECT_DOUBLE_EQ(rows[1]["reward"].get<double>(), 0.1);  // the old "reward": 99 is replaced
  EXPECT_FALSE(rows[1].contains("reward_errors"));         // stale outputs removed
  EXPECT_TRUE(rows[2]["reward_errors"].contains("countdown"));  // no target: an error, not a crash
  EXPECT_FALSE(rows[2]["reward_components"].contains("countdown"));
  EXPECT_EQ(stats.columns()[0].n, 3);
  EXPECT_EQ(stats.columns()[0].errors, 1);
  EXPECT_EQ(stats.columns()[0].max, 1.0);
}

TEST(ScoreJsonl, BadLinesNameFileAndLineAndWriteNothing) {
  const std::string in = temp("bad.jsonl"), out = temp("bad_out.jsonl");
  std::remove(out.c_str());
  write_file_atomic(in, "{\"completion\": \"a\"}\n{\"prompt\": \"no completion\"}\n");
  try {
    score_jsonl_file(make_set(), in, out, nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(in + ":2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("completion"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(path_exists(out));
  write_file_atomic(in, "{\"completion\": 5}\n");
  EXPECT_THROW(score_jsonl_file(make_set(), in, out, nullptr), Error);
  write_file_atomic(in, "not json\n");
  EXPECT_THROW(score_jsonl_file(make_set(), in, out, nullptr), Error);
  EXPECT_FALSE(path_exists(out));
}

TEST(ScoreJsonl, RecordToInput) {
  RewardInput a = reward_input_from_record({{"completion", "c"}, {"answer", "4"}, {"rewards", {{"x", 1}}}});
  EXPECT_EQ(a.prompt, "");
  EXPECT_EQ(a.fields, json({{"answer", "4"}}));
  RewardInput b = reward_input_from_record({{"completion", "c"}, {"prompt", "p"}, {"fields", {{"answer", "5"}}}, {"answer", "4"}});
  EXPECT_EQ(b.fields, json({{"answer", "5"}}));
  EXPECT_THROW(reward_input_from_record({{"completion", "c"}, {"fields", 3}}), Error);
  EXPECT_THROW(reward_input_from_record(json::array()), Error);
}

}  // namespace
}  // namespace r1kit::rewards
