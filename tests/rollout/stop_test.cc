// Stop strings over incrementally decoded text, including strings split across tokens and
// multi-byte characters split across tokens.
#include <gtest/gtest.h>

#include <map>

#include "rollout/stop.h"

using namespace r1kit;

namespace {

// A toy byte-level "tokenizer": each id decodes to a fixed byte string (possibly half a UTF-8
// character), and a sequence decodes to the concatenation with invalid UTF-8 shown as U+FFFD,
// as byte-level BPE decoders do.
std::string toy_decode(const std::vector<int64_t>& ids, const std::map<int64_t, std::string>& pieces) {
  std::string bytes;
  for (int64_t id : ids) bytes += pieces.at(id);
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    if (i + n > bytes.size()) {
      out += "\xEF\xBF\xBD";
      break;
    }
    out += bytes.substr(i, n);
    i += n;
  }
  return out;
}

}  // namespace

TEST(StopStrings, FindsAStringSpanningTokens) {
  StopStringMatcher m({"</answer>", "\n\n"});
  std::string text;
  const std::vector<std::string> pieces = {"The answer <answer>4", "</", "ans", "wer>", " trailing"};
  size_t found = std::string::npos, step = 0;
  for (; step < pieces.size(); ++step) {
    text += pieces[step];
    found = m.find(text);
    if (found != std::string::npos) break;
  }
  ASSERT_NE(found, std::string::npos);
  EXPECT_EQ(step, 3u) << "stops on the token that completes the string";
  EXPECT_EQ(text.substr(0, found), "The answer <answer>4");
  EXPECT_EQ(m.matched(), "</answer>");
}

TEST(StopStrings, EarliestOfSeveralAndNoFalsePositives) {
  StopStringMatcher m({"xyz", "\n\n"});
  EXPECT_EQ(m.find("a\n"), std::string::npos);
  EXPECT_EQ(m.find("a\nb\n"), std::string::npos);
  EXPECT_EQ(m.find("a\nb\nxy"), std::string::npos);
  // Both complete in the same step: the earliest in the text wins.
  EXPECT_EQ(m.find("a\nb\nxy\n\nxyz"), 6u);
  EXPECT_EQ(m.matched(), "\n\n");
  size_t which = 9;
  EXPECT_EQ(StopStringMatcher::find_in("..xyz..\n\n", {"\n\n", "xyz"}, 0, &which), 2u);
  EXPECT_EQ(which, 1u);
}

TEST(StopStrings, MatchAcrossSingleByteTokens) {
  StopStringMatcher m({"abc"});
  std::string text;
  for (char c : std::string("xxabab")) {
    text += c;
    EXPECT_EQ(m.find(text), std::string::npos);
  }
  text += 'c';
  EXPECT_EQ(m.find(text), 4u);
}

TEST(IncrementalDecoder, HoldsBackHalfCharactersAndMatchesFullDecode) {
  // "é" is C3 A9, "€" is E2 82 AC: both split across tokens.
  const std::map<int64_t, std::string> pieces = {{1, "caf"}, {2, "\xC3"}, {3, "\xA9 "}, {4, "\xE2\x82"}, {5, "\xAC!"},
                                                 {6, ""}, {7, "ok"}};
  DecodeFn decode = [&](const std::vector<int64_t>& ids) { return toy_decode(ids, pieces); };
  IncrementalDecoder dec(decode);
  std::vector<int64_t> ids;
  for (int64_t id : {1, 2, 3, 4, 6, 5, 7}) {
    ids.push_back(id);
    const std::string& t = dec.update(ids);
    EXPECT_EQ(t.find("\xEF\xBF\xBD"), std::string::npos) << "after id " << id;
    EXPECT_EQ(decode(ids).compare(0, t.size(), t), 0) << "text is a prefix of the full decode";
  }
  EXPECT_EQ(dec.text(), "caf\xC3\xA9 \xE2\x82\xAC!ok");
  EXPECT_EQ(dec.text(), decode(ids));

  StopStringMatcher m({"\xC3\xA9 \xE2\x82\xAC"});  // "é €" spans four tokens and two split characters
  IncrementalDecoder d2(decode);
  ids.clear();
  size_t stopped_after = 0;
  for (int64_t id : {1, 2, 3, 4, 6, 5, 7}) {
    ids.push_back(id);
    if (m.find(d2.update(ids)) != std::string::npos) {
      stopped_after = ids.size();
      break;
    }
  }
  EXPECT_EQ(stopped_after, 6u) << "the stop string completes with id 5";
}
