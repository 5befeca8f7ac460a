// The Split pre-tokenizer's regex, run with RE2 but with Oniguruma's meaning (what Hugging Face
// tokenizers uses): \s and \S are Unicode White_Space, and the one lookahead these files use,
// `\s+(?!\S)`, is emulated: a whitespace run followed by a non-space gives its last character back
// to the next piece.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/tokenizer_fast_split.h"

namespace re2 {
class RE2;
}

namespace r1kit {

class SplitRegex {
 public:
  // Throws Error (naming `where`) when the pattern uses a construct RE2 cannot run and we do not
  // emulate (other lookarounds, backreferences, \S inside a class ...).
  // use_fast: patterns of the known families run on hand-written matchers (tokenizer_fast_split.h);
  // false forces the regex engine (tests compare the two).
  SplitRegex(const std::string& pattern, const std::string& where, bool use_fast = true);
  ~SplitRegex();
  SplitRegex(SplitRegex&&) noexcept;

  // Appends the non-empty, non-overlapping matches in `text` as (begin, end) byte offsets,
  // leftmost-first like a backtracking engine. `text` must be valid UTF-8.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const;

  // A regex pattern matching the literal string s (for Split patterns given as {"String": ...}).
  static std::string quote(const std::string& s);

 private:
  std::unique_ptr<re2::RE2> re_;       // whole pattern; the lookahead alternative is a capture group
  std::unique_ptr<re2::RE2> tail_;     // the alternatives after it, tried when the lookahead fails
  bool has_lookahead_ = false;
  FastPattern fast_ = FastPattern::kNone;
};

// Translates Oniguruma syntax to RE2 syntax (\s, \S, \h, \x{..}) and splits top-level
// alternatives; exposed for tests.
std::string translate_regex(const std::string& pattern, const std::string& where);

}  // namespace r1kit
