// Code block extraction and stdout comparison.
#include <gtest/gtest.h>

#include "rewards/code_extract.h"

namespace r1kit::rewards {
namespace {

const std::vector<std::string> kPy = {"python", "py", "python3"};

TEST(CodeExtract, TakesTheLastMatchingBlock) {
  std::string t = "think\n```python\nprint(1)\n```\nmore\n```python\nprint(2)\n```\nbye";
  auto b = extract_code_block(t, kPy, false);
  ASSERT_TRUE(b.found);
  EXPECT_EQ(b.code, "print(2)\n");
  EXPECT_EQ(b.tag, "python");
}

TEST(CodeExtract, SkipsOtherLanguagesAndUntagged) {
  std::string t = "```python\na = 1\n```\n```cpp\nint main(){}\n```\n```\nplain\n```\n";
  EXPECT_EQ(extract_code_block(t, kPy, false).code, "a = 1\n");
  EXPECT_EQ(extract_code_block(t, kPy, true).code, "plain\n");
  EXPECT_EQ(extract_code_block(t, {"cpp"}, false).code, "int main(){}\n");
  EXPECT_FALSE(extract_code_block("no code here", kPy, true).found);
}

TEST(CodeExtract, CaseTildesIndentAndUnclosed) {
  EXPECT_EQ(extract_code_block("~~~Python\nx\n~~~\n", kPy, false).code, "x\n");
  EXPECT_EQ(extract_code_block("  ```py title=a\ny\n  ```\n", kPy, false).code, "y\n");
  // A block cut off by the generation limit runs to the end.
  EXPECT_EQ(extract_code_block("```python\nz = 1\nz += 1", kPy, false).code, "z = 1\nz += 1\n");
  // Inner ``` with a tag does not close the block; a longer fence needs an equally long close.
  EXPECT_EQ(extract_code_block("````python\ns = '''\n```python\n'''\n````\n", kPy, false).code,
            "s = '''\n```python\n'''\n");
}

TEST(CodeCompare, TokensAndTolerance) {
  EXPECT_TRUE(outputs_match("1 2\n3\n", "1 2 3", 0));
  EXPECT_TRUE(outputs_match("  5 2 1 3 4 \n", "5 2 1 3 4 \n", 0));
  EXPECT_FALSE(outputs_match("1 2", "1 2 3", 0));
  EXPECT_FALSE(outputs_match("1 2 3 4", "1 2 3", 0));
  EXPECT_FALSE(outputs_match("YES", "yes", 0));
  EXPECT_FALSE(outputs_match("0.3333", "0.333333", 0));
  EXPECT_TRUE(outputs_match("0.3333", "0.333333", 1e-3));
  EXPECT_FALSE(outputs_match("0.33", "0.333333", 1e-3));
  EXPECT_TRUE(outputs_match("1000000.5", "1000000.0", 1e-6));  // relative for large values
  EXPECT_FALSE(outputs_match("abc", "abd", 1e-3));
  EXPECT_FALSE(outputs_match("nan", "nan1", 1e-3));
  std::string why;
  EXPECT_FALSE(outputs_match("1 5", "1 4", 0, &why));
  EXPECT_NE(why.find("token 1"), std::string::npos);
  EXPECT_TRUE(outputs_match("", "\n", 0));
}

}  // namespace
}  // namespace r1kit::rewards
