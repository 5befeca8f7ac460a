// extract_answer: boxed (nested, last, joined), <answer>, phrases, last math, last number, options.
#include <gtest/gtest.h>

#include "rewards/math_verify.h"

namespace r1kit::rewards {
namespace {

TEST(MathExtract, BoxedNestedAndLast) {
  EXPECT_EQ(extract_answer("so \\boxed{\\frac{1}{2}}.").value(), "\\frac{1}{2}");
  EXPECT_EQ(extract_answer("\\boxed{\\boxed{5}}").value(), "\\boxed{5}");
  EXPECT_EQ(extract_answer("\\boxed{\\{1, \\{2\\}\\}}").value(), "\\{1, \\{2\\}\\}");
  EXPECT_EQ(extract_answer("\\fbox{7}").value(), "7");
  EXPECT_EQ(extract_answer("first \\boxed{3}. After a long check of every step we see this was wrong, so we fix it: \\boxed{4}")
                .value(),
            "4");
  EXPECT_EQ(extract_answer("\\boxed{1} and \\boxed{2}").value(), "1, 2");
  EXPECT_EQ(extract_answer("\\boxed {x}").value(), "x");
}

TEST(MathExtract, AnswerTagPhrasesAndFallbacks) {
  EXPECT_EQ(extract_answer("<think>2+2</think><answer> 4 </answer>").value(), "4");
  EXPECT_EQ(extract_answer("<answer>so $\\boxed{9}$</answer>").value(), "9");
  EXPECT_EQ(extract_answer("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.").value(),
            "\\frac{3}{4}");
  EXPECT_EQ(extract_answer("We get $x=2$ and then $y = 5$").value(), "y = 5");
  EXPECT_EQ(extract_answer("Adding them gives 12 apples, then 15 pears.").value(), "15");
  EXPECT_FALSE(extract_answer("no numbers at all").has_value());
  ExtractOptions o;
  o.last_number = false;
  EXPECT_FALSE(extract_answer("Adding them gives 12 apples.", o).has_value());
  o.last_math = false;
  EXPECT_FALSE(extract_answer("We get $x=2$", o).has_value());
  o.boxed = false;
  EXPECT_FALSE(extract_answer("\\boxed{2}", o).has_value());
}

TEST(MathExtract, AfterThink) {
  EXPECT_EQ(extract_answer("<think>maybe \\boxed{3}?</think><answer>5</answer>").value(), "5");
  EXPECT_EQ(extract_answer("<think>so \\boxed{3}</think> The result is \\boxed{4}.").value(), "4");
  EXPECT_EQ(extract_answer("<think>it is \\boxed{3}</think> done").value(), "3");  // nothing after: the thought
  ExtractOptions o;
  o.after_think = false;
  EXPECT_EQ(extract_answer("<think>maybe \\boxed{3}?</think><answer>5</answer>", o).value(), "3");
}

TEST(MathExtract, GoldFormats) {
  EXPECT_TRUE(math_equal(gold_from_field(json("Half of 48 is 24.\n#### 24"), GoldFormat::kGsm8k),
                         "She sold 24 clips. The answer is 24."));
  EXPECT_TRUE(math_equal(gold_from_field(json("007"), GoldFormat::kInt), "\\boxed{7}"));
  EXPECT_TRUE(math_equal("\\left( 3, \\frac{\\pi}{2} \\right)", "$\\boxed{(3, \\pi/2)}$"));
}

}  // namespace
}  // namespace r1kit::rewards
