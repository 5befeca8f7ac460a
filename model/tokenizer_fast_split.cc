#include "model/tokenizer_fast_split.h"

#include "model/unicode.h"

namespace r1kit {
namespace {

constexpr const char* kQwenPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kDigits3Pattern = R"(\p{N}{1,3})";
constexpr const char* kCjkPattern = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+";
constexpr const char* kDeepSeekPattern =
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";

// A view of the text with per-character access: code point, length and class.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s), cat_(unicode::category_table()) {}
  size_t size() const { return s_.size(); }
  int32_t cp(size_t i, int* len) const {
    const auto b = static_cast<uint8_t>(s_[i]);
    if (b < 0x80) {
      *len = 1;
      return b;
    }
    return unicode::decode_utf8(s_, i, len);
  }
  int32_t cp(size_t i) const {
    int len;
    return cp(i, &len);
  }
  size_t next(size_t i) const {
    int len;
    cp(i, &len);
    return i + len;
  }
  char cat(int32_t c) const { return cat_[c]; }
  static bool ws(int32_t c) { return c < 0x80 ? (c == ' ' || (c >= 9 && c <= 13)) : unicode::is_white_space(c); }
  static bool crlf(int32_t c) { return c == '\r' || c == '\n'; }
  // Not White_Space, not a letter, not a number: [^\s\p{L}\p{N}].
  bool other(int32_t c) const { return !ws(c) && cat(c) != 'L' && cat(c) != 'N'; }
  bool letter(int32_t c) const { return cat(c) == 'L'; }
  bool number(int32_t c) const { return cat(c) == 'N'; }
  bool punct_symbol(int32_t c) const { return cat(c) == 'P' || cat(c) == 'S'; }
  bool letter_mark(int32_t c) const { return cat(c) == 'L' || cat(c) == 'M'; }

  // End of the run of characters satisfying pred starting at i (i itself when none).
  template <class Pred>
  size_t run(size_t i, Pred pred, size_t max_chars = SIZE_MAX) const {
    size_t n = 0;
    while (i < s_.size() && n < max_chars) {
      int len;
      const int32_t c = cp(i, &len);
      if (!pred(c)) break;
      i += len;
      ++n;
    }
    return i;
  }

  // 's 't 're 've 'm 'll 'd at i (optionally case-insensitive, where 's' also folds U+017F).
  size_t contraction(size_t i, bool ignore_case) const {
    if (s_[i] != '\'' || i + 1 >= s_.size()) return 0;
    int len;
    int32_t c = cp(i + 1, &len);
    auto is = [&](int32_t ch, char lower) {
      return ch == lower || (ignore_case && (ch == lower - 32 || (lower == 's' && ch == 0x17F)));
    };
    if (is(c, 's') || is(c, 't') || is(c, 'm') || is(c, 'd')) return i + 1 + len;
    if (i + 1 + len >= s_.size()) return 0;
    int len2;
    const int32_t c2 = cp(i + 1 + len, &len2);
    if ((is(c, 'r') && is(c2, 'e')) || (is(c, 'v') && is(c2, 'e')) || (is(c, 'l') && is(c2, 'l')))
      return i + 1 + len + len2;
    return 0;
  }

  // The whitespace alternatives shared by the Qwen/Llama-3/DeepSeek regexes, at a white-space
  // character i: \s*[\r\n]+ | \s+(?!\S) | \s+ (with_newline_rule false: GPT-2's last two only).
  size_t white_space(size_t i, bool with_newline_rule) const {
    size_t last_nl = SIZE_MAX, last_start = i, j = i;
    while (j < s_.size()) {
      int len;
      const int32_t c = cp(j, &len);
      if (!ws(c)) break;
      if (crlf(c)) last_nl = j;
      last_start = j;
      j += len;
    }
    if (with_newline_rule && last_nl != SIZE_MAX) return last_nl + 1;  // \s*[\r\n]+
    if (j == s_.size() || last_start == i) return j;  // \s+(?!\S) at the end, or one char: \s+
    return last_start;  // \s+(?!\S): the last white space goes to the next piece
  }

 private:
  std::string_view s_;
  const char* cat_;
};

size_t match_qwen(const Scanner& t, size_t i, size_t max_digits) {
  if (size_t e = t.contraction(i, true)) return e;
  int len;
  const int32_t c = t.cp(i, &len);
  const size_t nx = i + len;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!Scanner::crlf(c) && !t.letter(c) && !t.number(c) && nx < t.size() && t.letter(t.cp(nx)))
    return t.run(nx, [&](int32_t x) { return t.letter(x); });
  if (t.letter(c)) return t.run(i, [&](int32_t x) { return t.letter(x); });
  // \p{N} or \p{N}{1,3}
  if (t.number(c)) return t.run(i, [&](int32_t x) { return t.number(x); }, max_digits);
  // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
  size_t p = i;
  if (c == ' ' && nx < t.size() && t.other(t.cp(nx))) p = nx;
  if (p != i || t.other(c)) {
    const size_t e = t.run(p, [&](int32_t x) { return t.other(x); });
    return t.run(e, [](int32_t x) { return Scanner::crlf(x); });
  }
  return t.white_space(i, true);
}

size_t match_gpt2(const Scanner& t, size_t i) {
  if (size_t e = t.contraction(i, false)) return e;
  int len;
  const int32_t c = t.cp(i, &len);
  size_t p = i;
  int32_t pc = c;
  if (c == ' ' && i + len < t.size()) {
    p = i + len;
    pc = t.cp(p);
  }
  if (t.letter(pc)) return t.run(p, [&](int32_t x) { return t.letter(x); });
  if (t.number(pc)) return t.run(p, [&](int32_t x) { return t.number(x); });
  if (t.other(pc)) return t.run(p, [&](int32_t x) { return t.other(x); });
  return t.white_space(i, false);
}

size_t match_deepseek(const Scanner& t, size_t i) {
  int len;
  const int32_t c = t.cp(i, &len);
  const size_t nx = i + len;
  auto ascii_letter = [](int32_t x) { return (x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z'); };
  // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ : all ASCII punctuation
  const bool ascii_punct = (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                           (c >= 0x7B && c <= 0x7E);
  if (ascii_punct && nx < t.size() && ascii_letter(t.cp(nx))) return t.run(nx, ascii_letter);
  // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
  auto lm = [&](int32_t x) { return t.letter_mark(x); };
  if (!Scanner::crlf(c) && !t.letter(c) && !t.punct_symbol(c) && nx < t.size() && lm(t.cp(nx))) return t.run(nx, lm);
  if (lm(c)) return t.run(i, lm);
  // ` ?[\p{P}\p{S}]+[\r\n]*`
  size_t p = i;
  if (c == ' ' && nx < t.size() && t.punct_symbol(t.cp(nx))) p = nx;
  if (p != i || t.punct_symbol(c)) {
    const size_t e = t.run(p, [&](int32_t x) { return t.punct_symbol(x); });
    return t.run(e, [](int32_t x) { return Scanner::crlf(x); });
  }
  if (Scanner::ws(c)) return t.white_space(i, true);
  return i;  // no match here (digits, controls, format characters ... stay in the gap)
}

bool cjk(int32_t c) { return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF); }

}  // namespace

FastPattern recognize_fast_pattern(const std::string& p) {
  if (p == kQwenPattern) return FastPattern::kQwen;
  if (p == kLlama3Pattern) return FastPattern::kLlama3;
  if (p == kGpt2Pattern) return FastPattern::kGpt2;
  if (p == kDigits3Pattern) return FastPattern::kDigits3;
  if (p == kCjkPattern) return FastPattern::kCjk;
  if (p == kDeepSeekPattern) return FastPattern::kDeepSeek;
  return FastPattern::kNone;
}

void fast_find_all(FastPattern kind, std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) {
  const Scanner t(text);
  for (size_t i = 0; i < text.size();) {
    size_t e = i;
    switch (kind) {
      case FastPattern::kQwen: e = match_qwen(t, i, 1); break;
      case FastPattern::kLlama3: e = match_qwen(t, i, 3); break;
      case FastPattern::kGpt2: e = match_gpt2(t, i); break;
      case FastPattern::kDigits3: e = t.run(i, [&](int32_t x) { return t.number(x); }, 3); break;
      case FastPattern::kCjk: e = t.run(i, cjk); break;
      case FastPattern::kDeepSeek: e = match_deepseek(t, i); break;
      case FastPattern::kNone: return;
    }
    if (e > i) {
      matches->emplace_back(i, e);
      i = e;
    } else {
      i = t.next(i);
    }
  }
}

}  // namespace r1kit
