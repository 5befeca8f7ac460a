// pass@k, majority votes and summaries on hand-derived cases (expected values in comments); the
// float64 comparison on a synthetic file is eval_metrics_reference.py.
#include "eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/check.h"
#include "eval/score.h"

using namespace r1kit;
using namespace r1kit::eval;

TEST(PassAtK, HandDerivedValues) {
  // n = 4, c = 1, k = 2: 1 - C(3,2)/C(4,2) = 1 - 3/6.
  EXPECT_DOUBLE_EQ(pass_at_k(4, 1, 2), 0.5);
  // k = 1 is c / n.
  EXPECT_DOUBLE_EQ(pass_at_k(8, 3, 1), 3.0 / 8);
  // c = 0 -> 0 for every k; k = n with c >= 1 -> 1.
  for (int64_t k : {1, 2, 4, 8}) EXPECT_EQ(pass_at_k(8, 0, k), 0.0);
  EXPECT_EQ(pass_at_k(8, 1, 8), 1.0);
  // n = 64, c = 2, k = 32: 1 - C(62,32)/C(64,32) = 1 - (32*31)/(64*63).
  const double want = 1.0 - (32.0 * 31.0) / (64.0 * 63.0);
  EXPECT_NEAR(pass_at_k(64, 2, 32), want, 1e-15);
  std::printf("pass@32 (n 64, c 2): %.17g, closed form %.17g, diff %.3g\n", pass_at_k(64, 2, 32), want,
              std::abs(pass_at_k(64, 2, 32) - want));
  // Huge n does not overflow: c = 1 gives k / n.
  EXPECT_NEAR(pass_at_k(100000, 1, 64), 64.0 / 100000, 1e-15);
  EXPECT_THROW(pass_at_k(4, 5, 1), Error);
  EXPECT_THROW(pass_at_k(4, 1, 5), Error);
  EXPECT_EQ(power_of_two_ks(12), (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(power_of_two_ks(1), (std::vector<int64_t>{1}));
}

TEST(MajorityVote, TiesGoToTheEarliestFirstMemberAndAbstentionsDoNotVote) {
  // classes: 1 0 1 0 -> tie 2:2, class 1 appears first (sample 0).
  EXPECT_EQ(majority_vote({1, 0, 1, 0}, 4).cls, 1);
  EXPECT_EQ(majority_vote({1, 0, 1, 0}, 4).first, 0);
  // -1 abstains: 0 has one vote, 1 has two.
  EXPECT_EQ(majority_vote({0, -1, 1, 1}, 4).cls, 1);
  EXPECT_EQ(majority_vote({-1, -1}, 2).cls, -1);
  // Only the first k samples vote.
  EXPECT_EQ(majority_vote({0, 1, 1, 1}, 1).cls, 0);
}

TEST(AnswerClasses, MathCheckerMergesEquivalentForms) {
  const std::vector<std::optional<std::string>> answers = {"0.5", "\\frac12", std::nullopt, "3", "\\frac{1}{2}", "6/2", "2/4"};
  const std::vector<int> classes = answer_classes(answers, math_answer_equiv());
  EXPECT_EQ(classes, (std::vector<int>{0, 0, -1, 1, 0, 1, 0}));
}

TEST(ProblemMetrics, MajAndPassAndSummaryWithStandardError) {
  // Problem a: verdicts 0 1 0 1, classes 1 0 1 0 (tie, wrong class first) -> maj@4 = 0, pass@4 = 1.
  ProblemSamples a{"a", {false, true, false, true}, {1, 0, 1, 0}, true};
  // Problem b: all wrong -> every metric 0.
  ProblemSamples b{"b", {false, false, false, false}, {0, 0, 1, -1}, false};
  const ProblemMetrics ma = problem_metrics(a), mb = problem_metrics(b);
  ASSERT_EQ(ma.pass_at.size(), 3u);
  EXPECT_DOUBLE_EQ(ma.pass_at[0].second, 0.5);
  EXPECT_DOUBLE_EQ(ma.pass_at[1].second, 1.0 - 1.0 / 6);  // 1 - C(2,2)/C(4,2)
  EXPECT_DOUBLE_EQ(ma.pass_at[2].second, 1.0);
  EXPECT_EQ(ma.maj_at[0].second, 0.0);  // maj@1: sample 0 (wrong)
  EXPECT_EQ(ma.maj_at[1].second, 0.0);  // maj@2: 1:1 tie, class 1 first (wrong)
  EXPECT_EQ(ma.maj_at[2].second, 0.0);
  const Summary s = summarize({ma, mb});
  EXPECT_EQ(s.problems, 2);
  EXPECT_EQ(s.samples, 8);
  // pass@1 over problems: 0.5 and 0 -> mean 0.25, sample std 0.353553, se = std / sqrt(2) = 0.25.
  ASSERT_NE(s.find("pass@1"), nullptr);
  EXPECT_DOUBLE_EQ(s.find("pass@1")->mean, 0.25);
  EXPECT_NEAR(s.find("pass@1")->se, 0.25, 1e-15);
  EXPECT_DOUBLE_EQ(s.find("greedy")->mean, 0.5);
  EXPECT_EQ(s.metrics.front().first, "pass@1");
  EXPECT_EQ(s.metrics.back().first, "greedy");
}
