// Unit tests of the tokenizer on tiny hand-made tokenizer.json files (tests/data/tokenizer):
//  - tiny_string_merges.json: "a b" merges, NFC, ByteLevel with the GPT-2 regex, TemplateProcessing
//    (<s> A </s>), added tokens with lstrip/rstrip, single_word and normalized contents;
//  - tiny_array_merges.json: ["a","b"] merges, ignore_merges, Split String/Removed and
//    Regex/MergedWithNext, ByteLevel add_prefix_space, no normalizer.
// Expected ids/texts are Hugging Face tokenizers 0.22.2's output for the same files.
// Also: malformed files give r1kit::Error naming file and field; fast matchers == regex engine;
// UTF-8 repair like Rust's from_utf8_lossy; concurrent encode.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <random>
#include <thread>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/tokenizer.h"
#include "model/tokenizer_regex.h"
#include "model/unicode.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids, ids_with_special;
  std::string decoded, decoded_skip_special;
};

void expect_cases(const Tokenizer& tok, const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(json(c.text).dump());
    EXPECT_EQ(tok.encode(c.text, false), c.ids);
    EXPECT_EQ(tok.encode(c.text, true), c.ids_with_special);
    EXPECT_EQ(tok.decode(c.ids, false), c.decoded);
    EXPECT_EQ(tok.decode(c.ids, true), c.decoded_skip_special);
  }
}

TEST(Tokenizer, TinyStringMergesMatchesHuggingFace) {
  const Tokenizer tok = Tokenizer::from_file(test::test_data_path("tokenizer/tiny_string_merges.json"));
  expect_cases(tok, {
      {"abc abcd", {8, 5, 8, 3}, {13, 8, 5, 8, 3, 14}, "abc abcd", "abc abcd"},
      {"abcd", {8, 3}, {13, 8, 3, 14}, "abcd", "abcd"},
      {" a  b", {9, 5, 5, 1}, {13, 9, 5, 5, 1, 14}, " a  b", " a  b"},
      {"zzz a", {9}, {13, 9, 14}, " a", " a"},  // bytes without a token are dropped, as in HF
      {"a<x>b", {0, 15, 1}, {13, 0, 15, 1, 14}, "a<x>b", "a<x>b"},
      {"a  <x>  b", {0, 15, 1}, {13, 0, 15, 1, 14}, "a<x>b", "a<x>b"},  // lstrip + rstrip
      {"cab abcab cab", {16, 5, 8, 7, 5, 16}, {13, 16, 5, 8, 7, 5, 16, 14}, "cab abcab cab", "cab abcab cab"},
      {"e\u0301 abc", {17, 5, 8}, {13, 17, 5, 8, 14}, "e\u0301 abc", "e\u0301 abc"},  // NFC + normalized token
      {"<s>abc</s>", {13, 8, 14}, {13, 13, 8, 14, 14}, "<s>abc</s>", "abc"},
      {"a\nb\n\n c", {0, 6, 1, 6, 6, 5, 2}, {13, 0, 6, 1, 6, 6, 5, 2, 14}, "a\nb\n\n c", "a\nb\n\n c"},
      {"", {}, {13, 14}, "", ""},
      {"abc\u00e9d", {8, 17, 3}, {13, 8, 17, 3, 14}, "abce\u0301d", "abce\u0301d"},  // decodes to its content
  });
  EXPECT_EQ(tok.token_to_id("<s>"), 13);
  EXPECT_EQ(tok.token_to_id("\u0120ab"), 12);
  EXPECT_EQ(tok.token_to_id("missing"), -1);
  EXPECT_EQ(tok.id_to_token(8), "abc");
  EXPECT_TRUE(tok.is_special(13));
  EXPECT_FALSE(tok.is_special(15));
  EXPECT_EQ(tok.vocab_size(), 18);
}

TEST(Tokenizer, TinyArrayMergesIgnoreMergesAndSplitBehaviors) {
  const Tokenizer tok = Tokenizer::from_file(test::test_data_path("tokenizer/tiny_array_merges.json"));
  expect_cases(tok, {
      {"abc abcd", {5, 8, 5, 8, 3}, {5, 8, 5, 8, 3}, " abc abcd", " abc abcd"},
      {"ab-cd", {12, 5, 10}, {12, 5, 10}, " ab cd", " ab cd"},  // "-" removed; " ab" whole (ignore_merges)
      {" a  b", {9, 5, 5, 1}, {9, 5, 5, 1}, " a  b", " a  b"},
      {"a<x>b", {9, 15, 5, 1}, {9, 15, 5, 1}, " a<x> b", " a<x> b"},
      {"<s>abc</s>", {13, 5, 8, 14}, {13, 5, 8, 14}, "<s> abc</s>", " abc"},
      {"a\nb\n\n c", {9, 5, 6, 1, 5, 6, 6, 5, 2}, {9, 5, 6, 1, 5, 6, 6, 5, 2}, " a \nb \n\n c", " a \nb \n\n c"},
      {"\u00e9", {5}, {5}, " ", " "},
  });
}

TEST(Tokenizer, DecodeSkipsUnknownIdsAndRepairsUtf8) {
  const Tokenizer tok = Tokenizer::from_file(test::test_data_path("tokenizer/tiny_string_merges.json"));
  EXPECT_EQ(tok.decode({0, 1000000, -5, 1}), "ab");
  // Ill-formed input is repaired first: each bad byte sequence becomes U+FFFD.
  EXPECT_EQ(tok.encode("a\xff"), tok.encode("a\xef\xbf\xbd"));
}

TEST(Unicode, Utf8LossyMatchesRust) {
  EXPECT_EQ(unicode::utf8_lossy("ok"), "ok");
  EXPECT_EQ(unicode::utf8_lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");                  // truncated: one U+FFFD
  EXPECT_EQ(unicode::utf8_lossy("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong: two
  EXPECT_EQ(unicode::utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(unicode::utf8_lossy("a\xC3(b"), "a\xEF\xBF\xBD(b");
  EXPECT_FALSE(unicode::is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Unicode, NormalizeLikeHfKeepsCharactersNewerThanUnicode9) {
  EXPECT_EQ(unicode::normalize_like_hf("e\u0301", unicode::NormalForm::kNFC), "\u00e9");
  EXPECT_EQ(unicode::normalize_like_hf("x\u0301\u0323", unicode::NormalForm::kNFC), "x\u0323\u0301");
  // U+1183A (Dogra nukta, Unicode 11, ccc 7) is unknown to HF's tables: no reordering around it.
  EXPECT_EQ(unicode::normalize_like_hf("x\u0301\U0001183A", unicode::NormalForm::kNFC), "x\u0301\U0001183A");
}

// Writes `text` to a temporary tokenizer.json and returns the error message of loading it.
std::string load_error(const std::string& text) {
  const std::string path = testing::TempDir() + "/r1kit_bad_tokenizer.json";
  write_file_atomic(path, text);
  try {
    Tokenizer::from_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string tiny_with(const std::function<void(json&)>& edit) {
  json j = parse_json(read_file(test::test_data_path("tokenizer/tiny_string_merges.json")), "tiny");
  edit(j);
  return j.dump();
}

TEST(Tokenizer, BadFilesNameFileAndField) {
  using ::testing::HasSubstr;
  EXPECT_THAT(load_error("{\"model\": {"), HasSubstr("r1kit_bad_tokenizer.json: invalid JSON"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"].erase("vocab"); })), HasSubstr("missing model.vocab"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["vocab"] = json::array(); })),
              HasSubstr("model.vocab must be an object"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["vocab"]["a"] = "zero"; })),
              HasSubstr("model.vocab[\"a\"] must be an integer id"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["type"] = "WordPiece"; })),
              HasSubstr("model.type \"WordPiece\" is unsupported"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["type"] = "Unigram"; })), HasSubstr("unsupported"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["merges"][1] = "ab c d"; })),
              HasSubstr("model.merges[1] must be \"left right\""));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["merges"][0] = json::array({"a"}); })),
              HasSubstr("model.merges[0] must be [\"left\", \"right\"]"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["merges"][0] = "a q"; })),
              HasSubstr("token \"q\" is not in model.vocab"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["model"]["merges"][0] = "b a"; })),
              HasSubstr("merged token \"ba\" is not in model.vocab"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j.erase("model"); })), HasSubstr("missing model"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; })),
              HasSubstr("normalizer.type \"Lowercase\" is unsupported"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; })),
              HasSubstr("pre_tokenizer.type \"Whitespace\" is unsupported"));
  EXPECT_THAT(load_error(tiny_with([](json& j) {
                j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(?<=a)b"}}}, {"behavior", "Isolated"}};
              })),
              HasSubstr("pre_tokenizer.pattern: regex not supported"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["added_tokens"][0].erase("id"); })),
              HasSubstr("added_tokens[0].id"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<q>"; })),
              HasSubstr("special token \"<q>\" is not in special_tokens"));
  EXPECT_THAT(load_error(tiny_with([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; })),
              HasSubstr("decoder.type \"WordPiece\" is unsupported"));
  EXPECT_THROW(Tokenizer::from_file(testing::TempDir() + "/no_such_dir"), Error);
}

// The hand-written matchers of the known patterns must give the regex engine's matches.
TEST(SplitRegex, FastMatchersEqualRegexEngine) {
  const std::vector<std::string> patterns = {
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
      R"(\p{N}{1,3})",
      "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
      "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
  };
  const std::vector<std::string> pieces = {
      "a", "Z", "q", "'", "s", "S", "\u017f", "t", "re", "VE", "m", "ll", "D", " ", " ", "  ", "\t", "\n", "\r", "\r\n",
      "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b", "1", "7", "\u0663", "\u00b2", "\u2167", "!", ".", "-", "$", "+",
      "\u2019", "\u00bf", "\u0301", "\u093f", "\u4e00", "\u3042", "\u30a2", "\ud55c", "\U0001f600", "\u200d", "\u200b",
      "\x01", "\U0001d400", "\U00013460", "\U00010d40", "\ue000", "\u0378", "\uffff", "\u0645", "\u00e9", "\u00df"};
  std::mt19937 rng(123);
  std::vector<std::pair<size_t, size_t>> fast, slow;
  for (const std::string& p : patterns) {
    const SplitRegex f(p, "test", true), r(p, "test", false);
    for (int n = 0; n < 3000; ++n) {
      std::string text;
      const int len = 1 + static_cast<int>(rng() % 12);
      for (int k = 0; k < len; ++k) text += pieces[rng() % pieces.size()];
      fast.clear();
      slow.clear();
      f.find_all(text, &fast);
      r.find_all(text, &slow);
      ASSERT_EQ(fast, slow) << "pattern " << p << "\ntext " << json(text).dump();
    }
  }
}

TEST(Tokenizer, ConcurrentEncodeMatchesSequential) {
  const Tokenizer tok = Tokenizer::from_file(test::test_data_path("tokenizer/tiny_string_merges.json"));
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(std::string(i % 7, ' ') + "abc ab" + std::to_string(i) + " cab<x>d");
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok.encode(t));
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t i = 0; i < texts.size(); ++i)
          if (tok.encode(texts[i]) != want[i]) ++bad;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace r1kit
