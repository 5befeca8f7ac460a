// UTF-8 walking, script classification and the thought / length helpers the rewards share.
#include "rewards/text_util.h"

#include <gtest/gtest.h>

namespace r1kit::rewards {
namespace {

TEST(TextUtil, DecodesValidUtf8) {
  const std::string s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
  std::size_t i = 0;
  EXPECT_EQ(next_code_point(s, i), U'a');
  EXPECT_EQ(next_code_point(s, i), 0xE9u);
  EXPECT_EQ(next_code_point(s, i), 0x4E2Du);
  EXPECT_EQ(next_code_point(s, i), 0x1F600u);
  EXPECT_EQ(i, s.size());
  EXPECT_EQ(count_code_points(s), 4u);
}

TEST(TextUtil, InvalidBytesAdvanceOneByteEach) {
  // Lone continuation, truncated 3-byte sequence, overlong '/', surrogate, 0xFF.
  const std::string s = std::string("\x80", 1) + "\xE4\xB8" + "\xC0\xAF" + "\xED\xA0\x80" + "\xFF";
  std::size_t i = 0, n = 0;
  while (i < s.size()) {
    EXPECT_EQ(next_code_point(s, i), 0xFFFDu);
    ++n;
  }
  EXPECT_EQ(n, s.size());
}

TEST(TextUtil, Scripts) {
  EXPECT_EQ(script_of(U'a'), Script::kLatin);
  EXPECT_EQ(script_of(U'Z'), Script::kLatin);
  EXPECT_EQ(script_of(0xE9), Script::kLatin);       // é
  EXPECT_EQ(script_of(0xD7), Script::kNone);        // ×
  EXPECT_EQ(script_of(U'7'), Script::kNone);
  EXPECT_EQ(script_of(0x4E2D), Script::kHan);       // 中
  EXPECT_EQ(script_of(0x3042), Script::kHiragana);  // あ
  EXPECT_EQ(script_of(0x30C6), Script::kKatakana);  // テ
  EXPECT_EQ(script_of(0xD55C), Script::kHangul);    // 한
  EXPECT_EQ(script_of(0x0416), Script::kCyrillic);  // Ж
  EXPECT_EQ(script_of(0x0628), Script::kArabic);    // ب
  EXPECT_EQ(script_of(0x03B2), Script::kOtherLetter);  // β
  EXPECT_EQ(script_of(0x3002), Script::kNone);      // 。
}

TEST(TextUtil, ThoughtAndPrefill) {
  EXPECT_EQ(thought_of("<think>abc</think>def", false), "abc");
  EXPECT_EQ(thought_of("abc</think>def", true), "abc");
  EXPECT_EQ(thought_of("no tags", false), "no tags");
  EXPECT_EQ(thought_of("<think>open", false), "open");
  EXPECT_TRUE(prompt_prefills_think("Assistant: <think>\n"));
  EXPECT_TRUE(prompt_prefills_think("<think>"));
  EXPECT_FALSE(prompt_prefills_think("<think>x"));
  EXPECT_FALSE(prompt_prefills_think(""));
  EXPECT_EQ(count_occurrences("aaaa", "aa"), 2u);
  EXPECT_EQ(count_occurrences("abc", ""), 0u);
}

TEST(TextUtil, CompletionLengthTokens) {
  RewardInput in;
  in.completion = std::string(10, 'x');
  EXPECT_EQ(completion_length_tokens(in, 4.0), 3.0);  // ceil(10 / 4)
  in.fields = {{"completion_tokens", 7}};
  EXPECT_EQ(completion_length_tokens(in, 4.0), 7.0);
  in.fields = {{"completion_tokens", -1}};
  EXPECT_EQ(completion_length_tokens(in, 4.0), 3.0);
}

}  // namespace
}  // namespace r1kit::rewards
