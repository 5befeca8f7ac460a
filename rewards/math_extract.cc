// Finding the final answer in a completion: \boxed{} groups, <answer> tags, "final answer is"
// phrases, math environments and plain numbers. Linear scans only (no backtracking regexes), so a
// 1 MB completion or 10,000 unbalanced braces cost a few milliseconds at most.
#include "rewards/math_extract.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "core/check.h"
#include "rewards/math_verify.h"

namespace r1kit::rewards::math {

namespace {

constexpr size_t kTailBytes = 16384;

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

bool iequals_at(const std::string& s, size_t i, const char* w) {
  size_t n = std::strlen(w);
  if (i + n > s.size()) return false;
  for (size_t k = 0; k < n; ++k)
    if (std::tolower(static_cast<unsigned char>(s[i + k])) != w[k]) return false;
  return true;
}

// Finds the closing brace matching s[open] == '{'; npos when unbalanced.
size_t match_brace(const std::string& s, size_t open, size_t max_len = std::string::npos) {
  int depth = 0;
  size_t stop = max_len == std::string::npos ? s.size() : std::min(s.size(), open + max_len);
  for (size_t i = open; i < stop; ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) return i;
  }
  return std::string::npos;
}

struct Boxed {
  size_t start, end;  // \boxed ... closing brace (exclusive end)
  std::string content;
};

std::vector<Boxed> all_boxed(const std::string& s) {
  std::vector<Boxed> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t b = s.find("\\boxed", pos), f = s.find("\\fbox", pos);
    size_t i = std::min(b, f);
    if (i == std::string::npos) break;
    size_t j = i + (i == b ? 6 : 5);
    while (j < s.size() && is_space(s[j])) ++j;
    if (j >= s.size() || s[j] != '{') {
      pos = i + 1;
      continue;
    }
    size_t close = match_brace(s, j);
    if (close == std::string::npos) {
      // unclosed: the rest of the text is the box (only useful as the last one)
      out.push_back({i, s.size(), s.substr(j + 1)});
      break;
    }
    out.push_back({i, close + 1, s.substr(j + 1, close - j - 1)});
    pos = close + 1;
  }
  return out;
}

bool has_separator(const std::string& between) {
  if (between.size() >= 70) return false;
  return between.find("and") != std::string::npos || between.find("or") != std::string::npos ||
         between.find(',') != std::string::npos || between.find(';') != std::string::npos;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// Percent words right after position i ("$28$ %", "$28$ percent").
size_t percent_after(const std::string& s, size_t i, bool* found) {
  size_t j = i;
  while (j < s.size() && is_space(s[j])) ++j;
  *found = false;
  for (const char* w : {"\\%", "%", "percentage", "percent", "pct"}) {
    if (iequals_at(s, j, w)) {
      *found = true;
      return j + std::strlen(w);
    }
  }
  return i;
}

// ---- plain numbers and expressions (Math-Verify's expression regexes, hand-written)

const char* kCurrency[] = {"$", "\u20ac", "\u00a3", "\u00a5", "\u20b9", "\u20bd", "\u20a9"};

bool prefix_ok(const std::string& s, size_t i) { return i == 0 || is_space(s[i - 1]) || s[i - 1] == '='; }

struct NumMatch {
  size_t start, end;  // of the number itself
  std::string value;  // normalised: digits, '.', leading '-', optional '%'
};

// Matches a number at s[i] (after the optional currency sign).
bool match_number(const std::string& s, size_t i, bool european, NumMatch& m) {
  if (i > 0 && is_digit(s[i - 1])) return false;
  size_t j = i;
  bool neg = false;
  if (j < s.size() && s[j] == '-') {
    neg = true;
    ++j;
  }
  std::string intpart, dec, comma;
  size_t k = j;
  // format 1: thousands groups with ',' or ' '
  if (k < s.size() && s[k] >= '1' && s[k] <= '9') {
    size_t g = k;
    while (g < s.size() && is_digit(s[g]) && g - k < 3) ++g;
    size_t h = g;
    std::string grouped = s.substr(k, g - k);
    int groups = 0;
    while (h + 3 < s.size() && (s[h] == ',' || s[h] == ' ') && is_digit(s[h + 1]) && is_digit(s[h + 2]) &&
           is_digit(s[h + 3]) && !(h + 4 < s.size() && is_digit(s[h + 4]))) {
      grouped += s.substr(h + 1, 3);
      h += 4;
      ++groups;
    }
    if (groups > 0 && !(g < s.size() && is_digit(s[g]))) {
      intpart = grouped;
      k = h;
      if (k + 1 < s.size() && s[k] == '.' && is_digit(s[k + 1])) {
        size_t d = k + 1;
        while (d < s.size() && is_digit(s[d])) ++d;
        dec = s.substr(k + 1, d - k - 1);
        k = d;
      }
    }
  }
  if (intpart.empty()) {
    k = j;
    if (k < s.size() && is_digit(s[k])) {
      while (k < s.size() && is_digit(s[k])) ++k;
      intpart = s.substr(j, k - j);
      if (k + 1 < s.size() && (s[k] == '.' || (european && s[k] == ',')) && is_digit(s[k + 1])) {
        size_t d = k + 1;
        while (d < s.size() && is_digit(s[d])) ++d;
        dec = s.substr(k + 1, d - k - 1);
        k = d;
      } else if (k + 1 < s.size() && s[k] == ',' && is_digit(s[k + 1])) {
        // "2,74" (not a thousands group): kept as written, "2,74"; math_verify reads it as the list
        // 2, 74 or, against a decimal written with a point, as 2.74. "1,5,7" stays a list (only "1").
        size_t d = k + 1;
        while (d < s.size() && is_digit(s[d])) ++d;
        if (!(d + 1 < s.size() && s[d] == ',' && is_digit(s[d + 1]))) {
          comma = s.substr(k + 1, d - k - 1);
          k = d;
        }
      }
    } else if (k + 1 < s.size() && s[k] == '.' && is_digit(s[k + 1]) && !neg) {
      size_t d = k + 1;
      while (d < s.size() && is_digit(s[d])) ++d;
      intpart = "0";
      dec = s.substr(k + 1, d - k - 1);
      k = d;
    } else {
      return false;
    }
  }
  size_t nz = intpart.find_first_not_of('0');
  intpart = nz == std::string::npos ? "0" : intpart.substr(nz);
  m.start = i;
  m.value = (neg ? "-" : "") + intpart + (dec.empty() ? "" : "." + dec) + (comma.empty() ? "" : "," + comma);
  bool pct = false;
  size_t after = percent_after(s, k, &pct);
  if (pct) {
    m.value += "%";
    k = after;
  }
  m.end = k;
  return true;
}

bool is_expr_char(char c) {
  return is_digit(c) || c == '.' || c == ' ' || c == '+' || c == '-' || c == '*' || c == '/' || c == '^' || c == '(' ||
         c == ')';
}
bool is_op(char c) { return c == '+' || c == '-' || c == '*' || c == '/' || c == '^' || c == '(' || c == ')'; }
bool suffix_ok(const std::string& s, size_t e) {
  return e >= s.size() || s[e] == '.' || s[e] == ',' || s[e] == ':' || is_space(s[e]) || s[e] == ')' || s[e] == '$';
}

// A plain expression "2/3", "(1/2)*(4/3)" starting at i (which passed prefix_ok).
bool match_expr(const std::string& s, size_t i, size_t* end) {
  size_t j = i;
  if (j < s.size() && s[j] == '-') ++j;
  if (j < s.size() && s[j] == '(') ++j;
  if (j < s.size() && s[j] == '-') ++j;
  if (j >= s.size() || !is_digit(s[j])) return false;
  size_t first_digit = j;
  size_t k = j + 1;
  while (k < s.size() && k - i < 200 && is_expr_char(s[k])) ++k;
  // longest prefix with an operator followed by at least one char, ending at a valid suffix
  size_t first_op = first_digit + 1;
  while (first_op < k && !is_op(s[first_op])) ++first_op;
  for (size_t e = k; e > first_op + 1; --e) {
    if (suffix_ok(s, e)) {
      size_t ee = e;
      // ends in a digit or ')': "1 + 1 +" is not an expression
      while (ee > i && (s[ee - 1] == ' ' || (is_op(s[ee - 1]) && s[ee - 1] != ')'))) --ee;
      if (ee <= first_op + 1) return false;
      *end = ee;
      return true;
    }
  }
  return false;
}

// ---- candidates

void add_env_candidates(const std::string& s, const std::vector<EnvSpan>& envs, int priority_override,
                        size_t from, size_t to, std::vector<Candidate>& out) {
  // chains of environments joined by "and" / "or" / "," become one candidate (a list)
  size_t first = static_cast<size_t>(
      std::lower_bound(envs.begin(), envs.end(), from, [](const EnvSpan& e, size_t p) { return e.start < p; }) -
      envs.begin());
  for (size_t a = first; a < envs.size(); ++a) {
    if (envs[a].start >= to) break;
    std::string text = s.substr(envs[a].content_start, envs[a].content_end - envs[a].content_start);
    bool pct = false;
    size_t end = percent_after(s, envs[a].end, &pct);
    if (pct) text += "%";
    else end = envs[a].end;
    size_t b = a;
    while (b + 1 < envs.size() && b - a < 5) {
      std::string between = trim(s.substr(end, envs[b + 1].start - end));
      bool sep = between == "," || between == "and" || between == "or" || between == ",and" || between == ", and" ||
                 between == ",or" || between == ", or";
      if (!sep) break;
      ++b;
      std::string more = s.substr(envs[b].content_start, envs[b].content_end - envs[b].content_start);
      bool p2 = false;
      size_t e2 = percent_after(s, envs[b].end, &p2);
      text += " , " + more + (p2 ? "%" : "");
      end = p2 ? e2 : envs[b].end;
    }
    out.push_back({priority_override, envs[a].start, end, text, true});
    a = b;
  }
}

}  // namespace

std::vector<EnvSpan> find_math_envs(const std::string& s) {
  std::vector<EnvSpan> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == '[' || s[i + 1] == '(')) {
      bool display = s[i + 1] == '[';
      const char* close = display ? "\\]" : "\\)";
      size_t j = s.find(close, i + 2);
      if (j != std::string::npos && (display || s.find('\n', i + 2) > j || s.find('\n', i + 2) == std::string::npos)) {
        out.push_back({i, j + 2, i + 2, j});
        i = j + 2;
        continue;
      }
      i += 2;
      continue;
    }
    if (c == '\\' && i + 1 < s.size()) {
      i += 2;  // escaped char (\$)
      continue;
    }
    if (c == '$') {
      if (i + 1 < s.size() && s[i + 1] == '$') {
        size_t j = i + 2;
        while (j + 1 < s.size() && !(s[j] == '$' && s[j + 1] == '$' && s[j - 1] != '\\')) ++j;
        if (j + 1 < s.size() && j > i + 2) {
          out.push_back({i, j + 2, i + 2, j});
          i = j + 2;
          continue;
        }
        i += 2;
        continue;
      }
      if (i > 0 && is_digit(s[i - 1])) {
        ++i;
        continue;
      }
      size_t j = i + 1;
      bool ok = false;
      while (j < s.size()) {
        if (s[j] == '\n') break;
        if (s[j] == '\\' && j + 1 < s.size() && s[j + 1] == '$') {
          j += 2;
          continue;
        }
        if (s[j] == '$') {
          ok = j > i + 1;
          break;
        }
        ++j;
      }
      if (ok) {
        out.push_back({i, j + 1, i + 1, j});
        i = j + 1;
      } else {
        i = j > i + 1 && j < s.size() && s[j] == '$' ? j : i + 1;
      }
      continue;
    }
    ++i;
  }
  return out;
}

std::string last_boxed(const std::string& s, size_t* end_pos, size_t* start_pos) {
  std::vector<Boxed> boxes = all_boxed(s);
  if (boxes.empty()) return "";
  size_t last = boxes.size() - 1;
  size_t first = last;
  // all boxes of the math environment holding the last one, else the run joined by separators
  std::vector<EnvSpan> envs = find_math_envs(s);
  const EnvSpan* env = nullptr;
  for (auto& e : envs)
    if (e.start <= boxes[last].start && boxes[last].start < e.end) env = &e;
  if (env) {
    while (first > 0 && boxes[first - 1].start >= env->start) --first;
  }
  while (first > 0 && has_separator(s.substr(boxes[first - 1].end, boxes[first].start - boxes[first - 1].end))) --first;
  std::string out;
  for (size_t k = first; k <= last; ++k) out += (k > first ? ", " : "") + trim(boxes[k].content);
  if (end_pos) *end_pos = boxes[last].end;
  if (start_pos) *start_pos = boxes[first].start;
  return out;
}

bool looks_like_bare_answer(const std::string& text) {
  bool dollar = false;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '$' && (i == 0 || text[i - 1] != '\\')) dollar = true;
  if (dollar || text.find("\\boxed") != std::string::npos ||
      text.find("\\(") != std::string::npos || text.find("\\[") != std::string::npos ||
      text.find("<answer>") != std::string::npos)
    return false;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '\\') {  // skip a command name and a \text{...} argument
      size_t j = i + 1;
      while (j < text.size() && is_alpha(text[j])) ++j;
      std::string cmd = text.substr(i + 1, j - i - 1);
      if ((cmd == "text" || cmd == "mathrm" || cmd == "textbf" || cmd == "mbox" || cmd == "textnormal" ||
           cmd == "mathbf" || cmd == "operatorname" || cmd == "begin" || cmd == "end") &&
          j < text.size() && text[j] == '{') {
        size_t close = match_brace(text, j);
        if (close == std::string::npos) return false;
        j = close + 1;
      }
      i = std::max(j, i + 1);
      continue;
    }
    if (is_alpha(text[i])) {
      size_t j = i;
      while (j < text.size() && is_alpha(text[j])) ++j;
      std::string w = text.substr(i, j - i);
      // prose: a run of 4+ letters ("answer", "Natalia") or a short English word; runs like "ABC"
      // or "xyz" are products of variables and stay math
      static const char* kShortWords[] = {"the", "are", "for", "not", "but", "has", "was", "its", "our", "can",
                                          "all", "any", "yes", "one", "two", "six", "ten", "get", "see", "let", "is"};
      bool word = w.size() >= 4 && w != "percent" && w != "percentage" && w != "infinity" && w != "sqrt";
      for (const char* sw : kShortWords)
        if (w == sw) word = true;
      if (word) return false;
      i = j;
      continue;
    }
    ++i;
  }
  return true;
}

std::vector<Candidate> find_candidates(const std::string& s, const FindOptions& o) {
  std::vector<Candidate> out;
  std::vector<EnvSpan> envs = o.latex ? find_math_envs(s) : std::vector<EnvSpan>{};
  if (o.latex) {
    size_t bend = 0, bstart = 0;
    std::string boxed = last_boxed(s, &bend, &bstart);
    if (!boxed.empty()) out.push_back({o.boxed_first ? 0 : 50, bstart, bend, boxed, true});
    // <answer>...</answer>
    size_t a = s.rfind("<answer>");
    if (a != std::string::npos) {
      size_t e = s.find("</answer>", a);
      size_t stop = e == std::string::npos ? s.size() : e;
      std::string inner = s.substr(a + 8, stop - a - 8);
      std::vector<EnvSpan> inner_envs = find_math_envs(inner);
      if (!inner_envs.empty())
        inner = inner.substr(inner_envs.back().content_start, inner_envs.back().content_end - inner_envs.back().content_start);
      out.push_back({25, a, stop, trim(inner), true});
    }
  }
  // "final answer ... is X" and "answer ... X"
  for (size_t i = 0; i + 6 <= s.size(); ++i) {
    if (!iequals_at(s, i, "answer")) continue;
    bool final_phrase = i >= 6 && iequals_at(s, i - 6, "final ");
    size_t after = i + 6;
    auto env_at = [&](size_t pos, size_t max_dist) -> const EnvSpan* {
      auto it = std::lower_bound(envs.begin(), envs.end(), pos,
                                 [](const EnvSpan& e, size_t p) { return e.start < p; });
      if (it != envs.end() && it->start <= pos + max_dist) return &*it;
      return nullptr;
    };
    auto num_at = [&](size_t pos, size_t max_dist, Candidate& c) -> bool {
      if (!o.expr) return false;
      for (size_t k = pos; k < s.size() && k <= pos + max_dist; ++k) {
        if (!prefix_ok(s, k)) continue;
        size_t start = k;
        for (const char* cur : kCurrency)
          if (s.compare(start, std::strlen(cur), cur) == 0) start += std::strlen(cur);
        size_t e = 0;
        if (match_expr(s, start, &e)) {
          c = {0, start, e, s.substr(start, e - start), false};
          return true;
        }
        NumMatch m;
        if (match_number(s, start, o.european_decimals, m)) {
          c = {0, m.start, m.end, m.value, false};
          return true;
        }
      }
      return false;
    };
    if (final_phrase) {
      // the first " is" within 100 characters that is followed by an answer
      for (size_t k = after; k < s.size() && k <= after + 100; ++k) {
        if (!(is_space(s[k]) && k + 2 < s.size() && s[k + 1] == 'i' && s[k + 2] == 's')) continue;
        size_t v = k + 3;
        if (v < s.size() && s[v] == ':') ++v;
        size_t w = v;
        while (w < s.size() && is_space(s[w])) ++w;
        Candidate c;
        bool found = false;
        if (const EnvSpan* e = env_at(w, 0)) {
          std::vector<Candidate> tmp;
          add_env_candidates(s, envs, 0, e->start, e->start + 1, tmp);
          if (!tmp.empty()) {
            c = tmp[0];
            found = true;
          }
        } else if (num_at(v, 1, c)) {
          found = true;
        }
        if (!found) continue;
        size_t t = c.end;
        if (t < s.size() && s[t] == '.') ++t;
        if (t < s.size() && is_space(s[t])) ++t;
        c.priority = iequals_at(s, t, "i hope") ? 0 : 50;
        out.push_back(c);
        break;
      }
    }
    size_t v = after;
    bool colon = v < s.size() && s[v] == ':';
    int pr = colon ? 100 : 200;
    if (o.latex) {
      if (const EnvSpan* e = env_at(after, 50)) {
        std::vector<Candidate> tmp;
        add_env_candidates(s, envs, pr, e->start, e->start + 1, tmp);
        if (!tmp.empty()) out.push_back(tmp[0]);
      }
    }
    Candidate c;
    if (num_at(after, 50, c)) {
      c.priority = pr;
      out.push_back(c);
    }
  }
  // plain environments, bare \frac{a}{b}, numbers, expressions: only the tail of the text matters
  // (candidates are tried from the right), which bounds the work on megabyte completions
  size_t tail = s.size() > kTailBytes ? s.size() - kTailBytes : 0;
  if (o.latex) {
    add_env_candidates(s, envs, 300, tail, s.size(), out);
    for (size_t i = s.find("\\frac{", tail); i != std::string::npos; i = s.find("\\frac{", i + 1)) {
      size_t c1 = match_brace(s, i + 5, 64);
      if (c1 == std::string::npos || c1 + 1 >= s.size() || s[c1 + 1] != '{') continue;
      size_t c2 = match_brace(s, c1 + 1, 64);
      if (c2 == std::string::npos) continue;
      size_t start = (i > 0 && s[i - 1] == '-') ? i - 1 : i;
      out.push_back({300, start, c2 + 1, s.substr(start, c2 + 1 - start), true});
    }
  }
  if (o.expr) {
    for (size_t i = tail; i < s.size(); ++i) {
      if (!prefix_ok(s, i)) continue;
      size_t start = i;
      for (const char* cur : kCurrency)
        if (s.compare(start, std::strlen(cur), cur) == 0) start += std::strlen(cur);
      if (start >= s.size() || !(is_digit(s[start]) || s[start] == '-' || s[start] == '.' || s[start] == '(')) continue;
      size_t e = 0;
      if (match_expr(s, start, &e)) out.push_back({300, start, e, s.substr(start, e - start), false});
      NumMatch m;
      if (match_number(s, start, o.european_decimals, m)) out.push_back({300, m.start, m.end, m.value, false});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    if (a.priority != b.priority) return a.priority < b.priority;
    if (a.end != b.end) return a.end > b.end;
    return a.start < b.start;
  });
  return out;
}

}  // namespace r1kit::rewards::math

namespace r1kit::rewards {

GoldFormat parse_gold_format(const std::string& name, const std::string& where) {
  if (name == "auto") return GoldFormat::kAuto;
  if (name == "latex") return GoldFormat::kLatex;
  if (name == "gsm8k") return GoldFormat::kGsm8k;
  if (name == "int") return GoldFormat::kInt;
  R1_FAIL(where, ": unknown gold format '", name, "' (expected auto|latex|gsm8k|int)");
}

std::optional<std::string> extract_answer(const std::string& completion_in, const ExtractOptions& o) {
  if (o.after_think) {
    size_t t = completion_in.rfind("</think>");
    if (t != std::string::npos) {
      ExtractOptions inner = o;
      inner.after_think = false;
      if (auto a = extract_answer(completion_in.substr(t + 8), inner)) return a;
      return extract_answer(completion_in.substr(0, t), inner);
    }
  }
  std::string cut;
  const std::string* sp = &completion_in;
  if (completion_in.size() > o.max_input_bytes) {
    cut = completion_in.substr(completion_in.size() - o.max_input_bytes);
    sp = &cut;
  }
  const std::string& s = *sp;
  if (o.boxed) {
    std::string b = math::last_boxed(s);
    if (!b.empty()) return b;
  }
  if (o.answer_tag) {
    size_t a = s.rfind("<answer>");
    if (a != std::string::npos) {
      size_t e = s.find("</answer>", a);
      std::string inner = math::trim(s.substr(a + 8, (e == std::string::npos ? s.size() : e) - a - 8));
      std::string b = math::last_boxed(inner);
      if (!b.empty()) return b;
      if (!inner.empty()) return inner;
    }
  }
  math::FindOptions fo;
  fo.european_decimals = false;
  if (o.answer_phrase || o.last_math || o.last_number) {
    for (const auto& c : math::find_candidates(s, fo)) {
      bool phrase = c.priority < 300;
      if (phrase && !o.answer_phrase) continue;
      if (!phrase && c.latex && !o.last_math) continue;
      if (!phrase && !c.latex && !o.last_number) continue;
      if (phrase && c.priority == 0) continue;  // \boxed, handled above
      if (c.priority == 25) continue;           // <answer>, handled above
      if (!math::trim(c.text).empty()) return math::trim(c.text);
    }
  }
  return std::nullopt;
}

std::string gold_from_field(const json& v, GoldFormat format) {
  std::string s;
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<long long>(d))) return std::to_string(static_cast<long long>(d));
    return v.dump();
  }
  R1_CHECK(v.is_string(), "gold answer: expected a string or a number, got ", v.dump());
  s = v.get<std::string>();
  if (format == GoldFormat::kAuto) format = s.find("####") != std::string::npos ? GoldFormat::kGsm8k : GoldFormat::kLatex;
  switch (format) {
    case GoldFormat::kGsm8k: {
      size_t p = s.rfind("####");
      R1_CHECK(p != std::string::npos, "gold answer: gsm8k format needs '#### N', got '", s.substr(0, 80), "'");
      std::string t = math::trim(s.substr(p + 4));
      std::string out;
      for (char c : t)
        if (c != ',') out += c;
      R1_CHECK(!out.empty(), "gold answer: nothing after '####'");
      return out;
    }
    case GoldFormat::kInt: {
      std::string t = math::trim(s);
      bool neg = !t.empty() && t[0] == '-';
      std::string digits = neg ? t.substr(1) : t;
      R1_CHECK(!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }),
               "gold answer: int format needs an integer, got '", t, "'");
      size_t nz = digits.find_first_not_of('0');
      digits = nz == std::string::npos ? "0" : digits.substr(nz);
      return (neg && digits != "0" ? "-" : "") + digits;
    }
    default:
      return math::trim(s);
  }
}

}  // namespace r1kit::rewards
