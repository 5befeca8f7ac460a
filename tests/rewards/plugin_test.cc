// External reward plugins: the shipped example, and a faulty plugin that crashes, hangs, prints
// garbage, answers with the wrong count or id, starts slowly or speaks another protocol version.
// Each failure must give error outputs (score = error_score) for that request, and the next batch
// must work again on a restarted process.
#include "rewards/plugin.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>

#include "core/fs.h"
#include "core/thread_pool.h"
#include "rewards/registry.h"
#include "rewards/reward_set.h"

namespace r1kit::rewards {
namespace {

namespace fs = std::filesystem;

std::string faulty_plugin() { return std::string(R1_TEST_DATA_DIR) + "/rewards/plugins/faulty_plugin.py"; }

std::vector<RewardInput> batch(std::vector<std::string> completions) {
  std::vector<RewardInput> out;
  for (auto& c : completions) {
    RewardInput in;
    in.prompt = "p";
    in.completion = c;
    in.fields = {{"k", 1}};
    out.push_back(in);
  }
  return out;
}

class FaultyPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = fs::path(::testing::TempDir()) /
             ("r1kit_plugin_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(state_);
    fs::create_directories(state_);
  }
  // Timeouts are generous because a loaded CI machine can take seconds to start Python.
  std::unique_ptr<PluginReward> make(const std::string& mode, double timeout_s = 30, double startup_s = 30,
                                     const std::string& slow_start_s = "3") {
    PluginOptions o;
    o.command = {"python3", faulty_plugin(), mode, state_.string(), slow_start_s};
    o.timeout_s = timeout_s;
    o.startup_timeout_s = startup_s;
    o.error_score = -7;
    return std::make_unique<PluginReward>(o);
  }
  // The first batch works, the second fails with `expect` in every message, the third works again.
  void expect_recovery(PluginReward& r, const std::string& expect) {
    auto first = r.score_batch(batch({"ab", "abc"}), nullptr);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_FALSE(first[0].error) << first[0].error_message;
    EXPECT_EQ(first[0].score, 2.0);
    EXPECT_EQ(first[1].score, 3.0);
    EXPECT_EQ(first[1].components.at("len"), 3.0);
    const pid_t pid1 = r.pid();

    auto second = r.score_batch(batch({"x", "yy", "zzz"}), nullptr);
    ASSERT_EQ(second.size(), 3u);
    for (const auto& o : second) {
      EXPECT_TRUE(o.error);
      EXPECT_EQ(o.score, -7.0);
      EXPECT_NE(o.error_message.find(expect), std::string::npos) << o.error_message;
    }
    EXPECT_EQ(r.failures(), 1);
    EXPECT_EQ(::kill(pid1, 0), -1) << "the failed plugin process must be gone";

    auto third = r.score_batch(batch({"four", "", "sixsix"}), nullptr);
    ASSERT_EQ(third.size(), 3u);
    for (const auto& o : third) EXPECT_FALSE(o.error) << o.error_message;
    EXPECT_EQ(third[0].score, 4.0);
    EXPECT_EQ(third[1].score, 0.0);
    EXPECT_EQ(third[2].score, 6.0);
    EXPECT_EQ(r.starts(), 2);
    EXPECT_NE(r.pid(), pid1);
  }
  std::string read_count() const { return read_file((state_ / "count").string()); }
  fs::path state_;
};

TEST_F(FaultyPlugin, Crash) {
  auto r = make("crash");
  expect_recovery(*r, "exit code 3");
}

TEST_F(FaultyPlugin, HangIsKilledAfterTheTimeout) {
  auto r = make("hang", /*timeout_s=*/4.0);
  const auto start = std::chrono::steady_clock::now();
  expect_recovery(*r, "timed out");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 30.0);
}

TEST_F(FaultyPlugin, Garbage) {
  auto r = make("garbage");
  expect_recovery(*r, "not JSON");
}

TEST_F(FaultyPlugin, WrongCount) {
  auto r = make("wrong_count");
  expect_recovery(*r, "2 results for 3 samples");
}

TEST_F(FaultyPlugin, WrongId) {
  auto r = make("wrong_id");
  expect_recovery(*r, "does not match");
}

TEST_F(FaultyPlugin, SlowStartTimesOutThenRestarts) {
  auto r = make("slow_start", 30, /*startup_s=*/5.0, /*slow_start_s=*/"120");
  auto first = r->score_batch(batch({"a", "bb"}), nullptr);
  for (const auto& o : first) {
    EXPECT_TRUE(o.error);
    EXPECT_EQ(o.score, -7.0);
    EXPECT_NE(o.error_message.find("handshake"), std::string::npos) << o.error_message;
  }
  auto second = r->score_batch(batch({"a", "bb"}), nullptr);
  EXPECT_FALSE(second[0].error) << second[0].error_message;
  EXPECT_EQ(second[1].score, 2.0);
  EXPECT_EQ(r->starts(), 2);
}

TEST_F(FaultyPlugin, SlowStartWithinTheLimitWorks) {
  auto r = make("slow_start", 30, /*startup_s=*/30.0, /*slow_start_s=*/"2");
  auto first = r->score_batch(batch({"a", "bb"}), nullptr);
  EXPECT_FALSE(first[0].error) << first[0].error_message;
  EXPECT_EQ(first[1].score, 2.0);
}

TEST_F(FaultyPlugin, WrongProtocolVersion) {
  auto r = make("bad_version");
  for (int i = 0; i < 2; ++i) {
    auto out = r->score_batch(batch({"a"}), nullptr);
    EXPECT_TRUE(out[0].error);
    EXPECT_NE(out[0].error_message.find("version 99"), std::string::npos) << out[0].error_message;
  }
}

TEST_F(FaultyPlugin, SampleAndBatchErrorsKeepTheProcess) {
  auto r = make("sample_error");
  auto out = r->score_batch(batch({"good", "bad", "ok"}), nullptr);
  EXPECT_FALSE(out[0].error);
  EXPECT_TRUE(out[1].error);
  EXPECT_EQ(out[1].error_message, "bad sample");
  EXPECT_EQ(out[1].score, -7.0);
  EXPECT_EQ(out[2].score, 2.0);
  EXPECT_EQ(r->failures(), 0);

  auto b = make("batch_error");
  auto out2 = b->score_batch(batch({"a", "b"}), nullptr);
  EXPECT_TRUE(out2[0].error);
  EXPECT_NE(out2[1].error_message.find("cannot score this batch"), std::string::npos);
  b->score_batch(batch({"a"}), nullptr);
  EXPECT_EQ(b->starts(), 1);
}

TEST_F(FaultyPlugin, MissingProgramIsAnErrorOutput) {
  PluginOptions o;
  o.command = {"/nonexistent/r1kit-plugin"};
  PluginReward r(o);
  auto out = r.score_batch(batch({"a"}), nullptr);
  EXPECT_TRUE(out[0].error);
  EXPECT_NE(out[0].error_message.find("cannot execute"), std::string::npos) << out[0].error_message;
}

TEST_F(FaultyPlugin, LargeBatchesAreSplitAndOrdered) {
  PluginOptions o;
  o.command = {"python3", faulty_plugin(), "none", state_.string()};
  o.max_batch_size = 7;
  PluginReward r(o);
  std::vector<std::string> completions;
  for (int i = 0; i < 50; ++i) completions.push_back(std::string(static_cast<std::size_t>(i), 'x'));
  completions.push_back(std::string(1u << 20, 'y'));  // a 1 MB completion travels too
  auto out = r.score_batch(batch(completions), nullptr);
  ASSERT_EQ(out.size(), 51u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(out[i].score, i);
  EXPECT_EQ(out[50].score, 1 << 20);
  EXPECT_EQ(std::stoi(read_count()), 8);  // ceil(51 / 7) requests
}

TEST(ExamplePlugin, KeywordRewardThroughTheRegistry) {
  json cfg = {{"rewards",
               {{{"name", "plugin"},
                 {"label", "keywords"},
                 {"options",
                  {{"command", {"python3", std::string(R1_SOURCE_DIR) + "/plugins/example_keyword_reward.py"}},
                   {"config", {{"keywords", {"verify", "Check"}}}}}}}}}};
  ConfigNode node(cfg, "inline");
  RewardSet set = RewardSet::from_config(node);
  auto inputs = batch({"Let me verify and check.", "I verify.", "nothing", "CHECK"});
  inputs[3].fields = {{"keywords", {"check", "zzz", "q"}}};
  ThreadPool pool(2);
  const auto s = set.score(inputs, &pool);
  EXPECT_DOUBLE_EQ(s[0].total, 1.0);
  EXPECT_DOUBLE_EQ(s[1].total, 0.5);
  EXPECT_EQ(s[1].outputs[0].components.at("Check"), 0.0);
  EXPECT_DOUBLE_EQ(s[2].total, 0.0);
  EXPECT_NEAR(s[3].total, 1.0 / 3.0, 1e-12);
  EXPECT_EQ(s[0].outputs[0].diagnostics["found"], json({"verify", "Check"}));
}

}  // namespace
}  // namespace r1kit::rewards
