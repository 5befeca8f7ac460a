// math_equal / math_verify: exactness, parsed forms, options, thread safety.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/check.h"
#include "rewards/math_verify.h"

namespace r1kit::rewards {
namespace {

TEST(MathVerify, ExactWhereMathVerifyRounds) {
  EXPECT_FALSE(math_equal("\\frac{1}{3^{100}}", "\\frac{1}{3^{99}}"));
  EXPECT_TRUE(math_equal("1500", "1.5e3"));
  EXPECT_FALSE(math_equal("1.5", "1.5e3"));
  EXPECT_FALSE(math_equal("2", "2\\pi"));
  EXPECT_TRUE(math_equal("2\\pi", "2π"));
  MathVerifyResult r = math_verify("\\frac{1}{3^{100}}", "3^{-100}");
  EXPECT_TRUE(r.correct);
  EXPECT_TRUE(r.exact);
  EXPECT_EQ(r.reason, "exact rational");
}

TEST(MathVerify, SymbolicProofIsExactAndNumericFallbackIsMarked) {
  MathVerifyResult r = math_verify("2\\sqrt{2}", "\\sqrt{8}");
  EXPECT_TRUE(r.correct);
  EXPECT_TRUE(r.exact) << r.reason;  // radicals are put in a canonical form before GiNaC
  r = math_verify("\\frac{5\\sqrt{42}}{27}", "\\frac{10\\sqrt{10.5}}{27}");
  EXPECT_TRUE(r.correct);
  EXPECT_TRUE(r.exact) << r.reason;
  r = math_verify("\\sqrt[3]{16}", "2\\sqrt[3]{2}");
  EXPECT_TRUE(r.exact) << r.reason;
  EXPECT_FALSE(math_equal("\\sqrt{2}", "\\sqrt{3}"));
  r = math_verify("x^2-1", "(x-1)(x+1)");
  EXPECT_TRUE(r.correct);
  EXPECT_TRUE(r.exact) << r.reason;
  r = math_verify("\\tan^2(y)+1", "\\sec^2(y)");  // GiNaC does not simplify this; numbers decide
  EXPECT_TRUE(r.correct);
  EXPECT_FALSE(r.exact) << r.reason;
}

TEST(MathVerify, ParsedFormsForExplain) {
  MathVerifyResult r = math_verify("$\\frac{1}{2}$", "so the answer is \\boxed{0.5}.");
  EXPECT_TRUE(r.correct);
  EXPECT_EQ(r.gold_extracted, "\\frac{1}{2}");
  EXPECT_EQ(r.pred_extracted, "0.5");
  EXPECT_FALSE(r.gold_parsed.empty());
  EXPECT_EQ(r.pred_parsed, "1/2");
  r = math_verify("5", "I do not know.");
  EXPECT_FALSE(r.correct);
  EXPECT_FALSE(r.reason.empty());
}

TEST(MathVerify, Options) {
  MathVerifyOptions o;
  EXPECT_FALSE(math_equal("\\frac13", "0.33", o));
  EXPECT_TRUE(math_equal("\\frac13", "0.3333", o));  // default 4
  o.float_rounding = 6;
  EXPECT_FALSE(math_equal("\\frac13", "0.3333", o));
  EXPECT_TRUE(math_equal("\\frac13", "0.333333", o));
  o.float_rounding = 2;
  EXPECT_TRUE(math_equal("\\frac13", "0.33", o));
  MathVerifyOptions strict;
  EXPECT_FALSE(math_equal("f(x)", "f(y)", strict));
  MathVerifyOptions lenient;
  lenient.strict = false;
  EXPECT_TRUE(math_equal("f(x)", "f(y)", lenient));
  MathVerifyOptions rel;
  EXPECT_FALSE(math_equal("[-2, 7]", "-2 \\le x \\le 7", rel));
  rel.allow_set_relation = true;
  EXPECT_TRUE(math_equal("[-2, 7]", "-2 \\le x \\le 7", rel));
  EXPECT_TRUE(math_equal("-2 \\le x \\le 7", "[-2, 7]"));  // relation gold, set pred: always
  MathVerifyOptions no_extract;
  no_extract.extract_gold = no_extract.extract_pred = false;
  EXPECT_TRUE(math_equal("x = 3", "3", no_extract));
}

TEST(MathVerify, GoldFromField) {
  EXPECT_EQ(gold_from_field(json("Natalia sold 48/2 = 24 clips.\n#### 1,072"), GoldFormat::kAuto), "1072");
  EXPECT_EQ(gold_from_field(json("025"), GoldFormat::kInt), "25");
  EXPECT_EQ(gold_from_field(json(27.0)), "27");
  EXPECT_EQ(gold_from_field(json(12)), "12");
  EXPECT_EQ(gold_from_field(json(" \\frac{1}{2} "), GoldFormat::kLatex), "\\frac{1}{2}");
  EXPECT_THROW(gold_from_field(json("no hashes"), GoldFormat::kGsm8k), Error);
  EXPECT_THROW(gold_from_field(json("2.5"), GoldFormat::kInt), Error);
  EXPECT_THROW(gold_from_field(json::array()), Error);
  EXPECT_EQ(parse_gold_format("gsm8k"), GoldFormat::kGsm8k);
  EXPECT_THROW(parse_gold_format("yaml"), Error);
}

// Many threads checking at once (GiNaC is serialised inside; the gold cache is shared).
TEST(MathVerify, ThreadSafe) {
  const std::vector<std::tuple<std::string, std::string, bool>> cases = {
      {"x^2+2x+1", "(x+1)^2", true},         {"\\frac{1}{2}", "0.5", true},   {"2\\sqrt{2}", "\\sqrt{8}", true},
      {"\\tan^2(y)+1", "\\sec^2(y)", true},  {"(1,2)", "(2,1)", false},       {"x<3", "3>x", true},
      {"\\frac{1}{3^{100}}", "3^{-99}", false}, {"\\{1,2\\}", "\\{2,1\\}", true}};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        auto& [g, p, want] = cases[(i + t) % cases.size()];
        if (math_equal(g, p) != want) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace r1kit::rewards
