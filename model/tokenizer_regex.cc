#include "model/tokenizer_regex.h"

#include <re2/re2.h>

#include "core/check.h"
#include "model/unicode.h"

namespace r1kit {
namespace {

// Unicode White_Space, the meaning of \s in Oniguruma (RE2's \s is ASCII only).
constexpr const char* kWhiteSpaceItems =
    "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
// Oniguruma's Unicode \w and \d.
constexpr const char* kWordItems = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
constexpr const char* kLookaheadName = "r1kit_ws_lookahead";

// Splits `pattern` at its top-level '|' (outside groups and character classes).
std::vector<std::string> split_alternatives(const std::string& p) {
  std::vector<std::string> alts(1);
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      alts.back() += p.substr(i, 2);
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member.
      alts.back() += c;
      if (i + 1 < p.size() && p[i + 1] == '^') alts.back() += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') alts.back() += p[++i];
      continue;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      alts.emplace_back();
      continue;
    }
    alts.back() += c;
  }
  return alts;
}

std::string join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (i > from) out += '|';
    out += parts[i];
  }
  return out;
}

std::unique_ptr<re2::RE2> compile(const std::string& pattern, const std::string& where) {
  re2::RE2::Options opt;
  opt.set_encoding(re2::RE2::Options::EncodingUTF8);
  opt.set_log_errors(false);
  opt.set_max_mem(int64_t{64} << 20);
  auto re = std::make_unique<re2::RE2>(pattern, opt);
  R1_CHECK(re->ok(), where, ": regex not supported (", re->error(), "): ", pattern);
  return re;
}

size_t utf8_char_len(std::string_view s, size_t i) {
  int len;
  unicode::decode_utf8(s, i, &len);
  return static_cast<size_t>(len);
}

bool all_white_space(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    int len;
    const int32_t cp = unicode::decode_utf8(s, i, &len);
    if (!unicode::is_white_space(cp)) return false;
    i += len;
  }
  return true;
}

}  // namespace

std::string translate_regex(const std::string& p, const std::string& where) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      // \p{L} \p{M} \p{N} \p{P} \p{S}: our Unicode 16 tables instead of RE2's older ones.
      if ((e == 'p' || e == 'P') && i + 3 < p.size() && p[i + 1] == '{' && p[i + 3] == '}' &&
          !unicode::category_class_items(p[i + 2]).empty() && !(in_class && e == 'P')) {
        const std::string& cls = unicode::category_class_items(p[i + 2]);
        i += 3;
        if (in_class) out += cls;
        else out += str_cat(e == 'P' ? "[^" : "[", cls, "]");
        continue;
      }
      const char* items = nullptr;
      bool negated = false;
      switch (e) {
        case 's': items = kWhiteSpaceItems; break;
        case 'S': items = kWhiteSpaceItems; negated = true; break;
        case 'w': items = kWordItems; break;
        case 'W': items = kWordItems; negated = true; break;
        case 'd': items = "\\p{Nd}"; break;
        case 'D': items = "\\p{Nd}"; negated = true; break;
        case 'h': items = "0-9a-fA-F"; break;
        case 'H': items = "0-9a-fA-F"; negated = true; break;
        default: break;
      }
      if (!items) {
        out += '\\';
        out += e;
      } else if (!in_class) {
        out += negated ? "[^" : "[";
        out += items;
        out += ']';
      } else {
        R1_CHECK(!negated, where, ": regex not supported: negated class \\", e, " inside [...]: ", p);
        out += items;
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == '(' && i + 2 < p.size() && p[i + 1] == '?' &&
        (p[i + 2] == '=' || p[i + 2] == '!' || (p[i + 2] == '<' && i + 3 < p.size() &&
                                                  (p[i + 3] == '=' || p[i + 3] == '!')))) {
      R1_FAIL(where, ": regex not supported: lookaround other than \\s+(?!\\S) in ", p);
    }
    out += c;
  }
  return out;
}

SplitRegex::SplitRegex(const std::string& pattern, const std::string& where, bool use_fast) {
  if (use_fast) fast_ = recognize_fast_pattern(pattern);
  std::vector<std::string> alts = split_alternatives(pattern);
  size_t k = alts.size();
  for (size_t i = 0; i < alts.size(); ++i) {
    if (alts[i] == "\\s+(?!\\S)") {
      k = i;
      break;
    }
  }
  if (k == alts.size()) {
    re_ = compile(translate_regex(pattern, where), where);
    return;
  }
  has_lookahead_ = true;
  std::vector<std::string> translated;
  for (size_t i = 0; i < alts.size(); ++i) {
    translated.push_back(i == k ? str_cat("(?P<", kLookaheadName, ">", translate_regex("\\s+", where), ")")
                                : translate_regex(alts[i], where));
  }
  re_ = compile(join(translated, 0, translated.size()), where);
  if (k + 1 < translated.size()) tail_ = compile(join(translated, k + 1, translated.size()), where);
}

SplitRegex::~SplitRegex() = default;
SplitRegex::SplitRegex(SplitRegex&&) noexcept = default;

std::string SplitRegex::quote(const std::string& s) { return re2::RE2::QuoteMeta(s); }

void SplitRegex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* matches) const {
  if (fast_ != FastPattern::kNone) {
    fast_find_all(fast_, text, matches);
    return;
  }
  const re2::StringPiece sp(text.data(), text.size());
  const size_t n = text.size();
  const int group = has_lookahead_ ? re_->NamedCapturingGroups().at(kLookaheadName) : 0;
  std::vector<re2::StringPiece> groups(group + 1);
  size_t pos = 0;
  size_t last_end = std::string_view::npos;
  while (pos <= n) {
    re2::StringPiece m;
    if (!re_->Match(sp, pos, n, re2::RE2::UNANCHORED, &m, 1)) break;
    const size_t s = static_cast<size_t>(m.data() - text.data());
    size_t e = s + m.size();
    if (has_lookahead_ && e < n && e > s && all_white_space(text.substr(s, e - s))) {
      // Which alternative matched? Only the emulated one needs the lookahead applied.
      re_->Match(sp, s, n, re2::RE2::ANCHOR_START, groups.data(), group + 1);
      if (groups[group].data() != nullptr) {
        // The greedy run ends before a non-space, so (?!\S) fails there; backtracking gives the
        // last whitespace character back, or falls through to the later alternatives.
        size_t last = e - 1;
        while (last > s && (static_cast<uint8_t>(text[last]) & 0xC0) == 0x80) --last;
        if (last > s) {
          e = last;
        } else {
          re2::StringPiece t;
          if (tail_ && tail_->Match(sp, s, n, re2::RE2::ANCHOR_START, &t, 1)) {
            e = s + t.size();
          } else {
            pos = s + utf8_char_len(text, s);
            continue;
          }
        }
      }
    }
    if (e == s) {
      // Empty match: kept (it splits the surrounding gap) unless it touches the previous match.
      if (s != last_end) matches->emplace_back(s, e);
      if (s >= n) break;
      pos = s + utf8_char_len(text, s);
      continue;
    }
    matches->emplace_back(s, e);
    last_end = e;
    pos = e;
  }
}

}  // namespace r1kit
