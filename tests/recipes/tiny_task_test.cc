// The tiny R1-Zero task: exact prompt/completion text (the example from ../shared/notes/tiny-r1-zero.md),
// the teacher's bug rate, the held-out set, and the tokenizer r1kit writes for it.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>

#include "core/check.h"
#include "model/tokenizer.h"
#include "recipes/tiny_task.h"

namespace r1kit::recipes {
namespace {

TinyProblem notes_example() {
  TinyProblem p;  // Q:6-6-0-4+8+7-6=
  p.start = 6;
  p.signs = {'-', '-', '-', '+', '+', '-'};
  p.digits = {6, 0, 4, 8, 7, 6};
  return p;
}

TEST(TinyTask, NotesExampleWithCorrectTeacher) {
  const TinyProblem p = notes_example();
  std::mt19937_64 rng(1);
  EXPECT_EQ(p.prompt(), "Q:6-6-0-4+8+7-6=<think>");
  EXPECT_EQ(p.answer(), 5);
  bool bugged = true;
  EXPECT_EQ(p.completion(0.0, rng, &bugged), "6,0,0c6c4c1c5</think><answer>5</answer><eos>");
  EXPECT_FALSE(bugged);
}

TEST(TinyTask, BuggyTeacherWritesSmallerFromLarger) {
  // 0-4 borrows: correct 6, the bug writes 4-0 = 4 and carries on from 4: 4+8=12 -> c2, 2+7 -> ,9, 9-6 -> ,3.
  // Default marker ',': the step is written as if no borrow happened; 'c' keeps the borrow marker.
  const TinyProblem p = notes_example();
  std::mt19937_64 rng(1);
  bool bugged = false;
  EXPECT_EQ(p.completion(1.0, rng, &bugged), "6,0,0,4c2,9,3</think><answer>3</answer><eos>");
  EXPECT_TRUE(bugged);
  EXPECT_EQ(p.completion(1.0, rng, &bugged, 'c'), "6,0,0c4c2,9,3</think><answer>3</answer><eos>");
  TinyTaskOptions bad;
  bad.bug_marker = 'x';
  EXPECT_THROW(TinyTask{bad}, Error);
}

TEST(TinyTask, ParseIsTheInverseOfPrompt) {
  const TinyProblem p = notes_example();
  TinyProblem q;
  ASSERT_TRUE(TinyProblem::parse(p.prompt(), &q));
  EXPECT_EQ(q.prompt(), p.prompt());
  EXPECT_EQ(q.answer(), 5);
  for (const char* bad : {"", "Q:=<think>", "Q:6-6-0=", "Q:6-6-=<think>", "Q:6*6=<think>", "X:6-6=<think>"})
    EXPECT_FALSE(TinyProblem::parse(bad, &q)) << bad;
}

TEST(TinyTask, BorrowStatsCountTheFixTheBugAndOtherValues) {
  // Q:6-6-0-4+8+7-6: the only counted borrow is 0-4 (x=0 < d=4, d-x != 5); 6-6 is x >= d.
  const TinyProblem p = notes_example();
  auto stats = [&](const std::string& c) { return borrow_stats(p, c); };
  BorrowStats fix = stats("6,0,0c6c4c1c5</think><answer>5</answer><eos>");
  EXPECT_EQ(fix.steps, 1);
  EXPECT_EQ(fix.correct, 1);
  EXPECT_EQ(fix.carry_marker, 1);
  BorrowStats bug = stats("6,0,0,4c2,9,3</think><answer>3</answer><eos>");
  EXPECT_EQ(bug.bug, 1);
  EXPECT_EQ(bug.comma_marker, 1);
  BorrowStats other = stats("6,0,0c7</think>");  // later steps follow its own values, so stop here
  EXPECT_EQ(other.other, 1);
  // A thought that stops before the borrow counts nothing; garbage after a value ends the parse.
  EXPECT_EQ(stats("6,0</think>").steps, 0);
  EXPECT_EQ(stats("6,0xx0c6").steps, 0);
  BorrowStats sum = fix;
  sum.add(bug);
  sum.add(other);
  const json j = sum.to_json();
  EXPECT_EQ(j["borrow/steps"].get<int64_t>(), 3);
  EXPECT_NEAR(j["borrow/correct"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(j["borrow/bug"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(j["borrow/carry_marker"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_EQ(BorrowStats{}.to_json()["borrow/correct"].get<double>(), 0.0);
}

TEST(TinyTask, BugRateIsTheConfiguredProbability) {
  TinyProblem p;  // 1-7: correct 4 (borrow), buggy 7-1 = 6
  p.start = 1;
  p.signs = {'-'};
  p.digits = {7};
  std::mt19937_64 rng(7);
  const int n = 20000;
  int buggy = 0;
  for (int i = 0; i < n; ++i) {
    const std::string c = p.completion(0.6, rng);
    if (c == "1,6</think><answer>6</answer><eos>") ++buggy;
    else ASSERT_EQ(c, "1c4</think><answer>4</answer><eos>");
  }
  // Binomial(20000, 0.6): sd = 0.0035; 5 sd bounds.
  EXPECT_NEAR(double(buggy) / n, 0.6, 0.0175);
  // No borrow, no bug: 7-1 and 3+9 are written the same way at any bug probability.
  TinyProblem q;
  q.start = 7;
  q.signs = {'-', '+'};
  q.digits = {1, 9};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(q.completion(1.0, rng), "7,6c5</think><answer>5</answer><eos>");
}

TEST(TinyTask, GreedyBugPolicyIsRightAboutAThirdOfTheTime) {
  // A model that always takes the majority (buggy) branch answers correctly only when no borrow
  // occurs or the bug lands on the same digit: ~30% per the notes. This is the SFT ceiling GRPO lifts.
  TinyTask task;
  std::mt19937_64 rng(3);
  int right = 0;
  for (const auto& p : task.heldout()) {
    const std::string c = p.completion(1.0, rng);
    right += c.find("<answer>" + std::to_string(p.answer()) + "</answer>") != std::string::npos;
  }
  const double acc = double(right) / task.heldout().size();
  EXPECT_GT(acc, 0.2);
  EXPECT_LT(acc, 0.4);
}

TEST(TinyTask, HeldOutIsFixedDistinctAndNeverSampled) {
  TinyTask a, b;
  ASSERT_EQ(a.heldout().size(), 1000u);
  std::set<std::string> prompts;
  for (size_t i = 0; i < a.heldout().size(); ++i) {
    EXPECT_EQ(a.heldout()[i].prompt(), b.heldout()[i].prompt());
    prompts.insert(a.heldout()[i].prompt());
  }
  EXPECT_EQ(prompts.size(), 1000u);
  // With one operation there are only 10 * 2 * 10 = 200 problems: half are held out, and sampling
  // must produce exactly the other half.
  TinyTaskOptions small;
  small.n_ops = 1;
  small.n_heldout = 100;
  TinyTask t(small);
  std::mt19937_64 rng(5);
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    const std::string s = t.sample(rng).prompt();
    ASSERT_FALSE(t.is_heldout(s)) << s;
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 100u);
  small.n_heldout = 201;
  EXPECT_THROW(TinyTask{small}, r1kit::Error);
}

TEST(TinyTask, SftExampleAndRecordFields) {
  TinyTask task;
  std::mt19937_64 rng(11);
  const json ex = task.sft_example(rng);
  ASSERT_TRUE(ex.contains("prompt") && ex.contains("completion") && ex.contains("answer"));
  EXPECT_EQ(ex["completion"].get<std::string>().substr(0, 1), ex["prompt"].get<std::string>().substr(2, 1));
  EXPECT_FALSE(task.is_heldout(ex["prompt"]));
}

TEST(TinyTokenizer, LoadsThroughTheHfTokenizerAndTagsAreSingleTokens) {
  const std::string dir = testing::TempDir() + "/tiny_tokenizer";
  std::filesystem::remove_all(dir);
  write_tiny_tokenizer(dir);
  ASSERT_TRUE(std::filesystem::exists(dir + "/tokenizer_config.json"));
  const Tokenizer tok = Tokenizer::from_file(dir + "/tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), tiny_tokenizer_vocab_size());
  for (const char* tag : {"<think>", "</think>", "<answer>", "</answer>", "<eos>"}) {
    EXPECT_GE(tok.token_to_id(tag), 0) << tag;
    EXPECT_EQ(tok.encode(tag).size(), 1u) << tag;
  }
  EXPECT_TRUE(tok.is_special(tok.token_to_id("<eos>")));
  EXPECT_FALSE(tok.is_special(tok.token_to_id("<think>")));
  // The notes' token counts: prompt 17, completion 18.
  const std::string prompt = "Q:6-6-0-4+8+7-6=<think>", completion = "6,0,0c6c4c1c5</think><answer>5</answer><eos>";
  const auto p = tok.encode(prompt), c = tok.encode(completion);
  EXPECT_EQ(p.size(), 17u);
  EXPECT_EQ(c.size(), 18u);
  EXPECT_EQ(tok.decode(c), completion);
  EXPECT_EQ(tok.decode(c, /*skip_special_tokens=*/true), "6,0,0c6c4c1c5</think><answer>5</answer>");
  // Any ASCII text encodes one token per character (a space included) and round-trips.
  const std::string text = "The answer is 42.\n";
  EXPECT_EQ(tok.encode(text).size(), text.size());
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
}

}  // namespace
}  // namespace r1kit::recipes
