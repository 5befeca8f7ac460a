// Text normalisation of answers before tokenizing: unicode, LaTeX spacing and sizing commands,
// thousands separators, units, percent words, JSON-doubled backslashes.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include "rewards/math_ast.h"

namespace r1kit::rewards::math {

namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// The helpers take string_view: they run ~80 times per answer, and building a std::string from each
// literal cost more than the scans themselves.
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// Replaces a LaTeX command `cmd` (e.g. "\\quad") only where it is not the prefix of a longer command
// name, except when `prefix_ok` (\quadx is \quad followed by x in model output).
void replace_cmd(std::string& s, std::string_view cmd, std::string_view to, bool prefix_ok = false) {
  size_t pos = 0;
  while ((pos = s.find(cmd, pos)) != std::string::npos) {
    size_t end = pos + cmd.size();
    if (!prefix_ok && end < s.size() && is_alpha(s[end])) {
      pos = end;
      continue;
    }
    s.replace(pos, cmd.size(), to);
    pos += to.size();
  }
}

// Whole-word replacement (ASCII letters delimit words).
void replace_word(std::string& s, std::string_view word, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(word, pos)) != std::string::npos) {
    bool left_ok = pos == 0 || (!is_alpha(s[pos - 1]) && s[pos - 1] != '\\');
    size_t end = pos + word.size();
    bool right_ok = end >= s.size() || !is_alpha(s[end]);
    if (left_ok && right_ok) {
      s.replace(pos, word.size(), to);
      pos += to.size();
    } else {
      pos = end;
    }
  }
}

const char* kUnitWords[] = {"miles", "mile", "meters", "meter", "metres", "metre", "cm", "mm", "km", "inches", "inch",
                            "feet", "foot", "ft", "units", "unit", "degrees", "degree", "dollars", "dollar", "cents",
                            "hours", "hour", "hrs", "minutes", "minute", "mins", "seconds", "second", "secs", "days",
                            "day", "weeks", "week", "years", "year", "months", "month", "kg", "grams", "pounds", "lbs",
                            "yuan", "liters", "litres", "people", "students", "sq", "square", "cubic", "mph"};

// Drops trailing unit words after a number ("125 miles", "15 cm^2").
void strip_trailing_units(std::string& s) {
  for (int round = 0; round < 3; ++round) {
    while (!s.empty() && is_space(s.back())) s.pop_back();
    // optional ^2 / ^{2} after the unit
    std::string t = s;
    if (t.size() > 2 && t[t.size() - 2] == '^' && is_digit(t.back())) t.resize(t.size() - 2);
    else if (t.size() > 4 && t.compare(t.size() - 4, 2, "^{") == 0 && t.back() == '}') t.resize(t.size() - 4);
    if (t.empty() || !is_alpha(t.back())) return;  // every unit word ends in a letter
    bool stripped = false;
    for (const char* u : kUnitWords) {
      size_t n = std::strlen(u);
      if (t.size() <= n || t.compare(t.size() - n, n, u) != 0) continue;
      char before = t[t.size() - n - 1];
      if (is_alpha(before)) continue;
      std::string rest = t.substr(0, t.size() - n);
      while (!rest.empty() && is_space(rest.back())) rest.pop_back();
      if (rest.empty() || !(is_digit(rest.back()) || rest.back() == '}' || rest.back() == ')')) continue;
      s = rest;
      stripped = true;
      break;
    }
    if (!stripped) return;
  }
}

}  // namespace

std::string normalize_answer_text(const std::string& in) {
  std::string s = in;
  // Unicode math characters.
  static const std::pair<const char*, const char*> kUnicode[] = {
      {"\u2212", "-"},        {"\u2013", "-"},         {"\u03c0", "\\pi "},     {"\u221a", "\\sqrt"},
      {"\u221e", "\\infty "}, {"\u00d7", "\\times "},  {"\u00f7", "\\div "},    {"\u2264", "\\le "},
      {"\u2265", "\\ge "},    {"\u2260", "\\ne "},     {"\u00b0", ""},          {"\u00b7", "\\cdot "},
      {"\u22c5", "\\cdot "},  {"\u00b2", "^2"},        {"\u00b3", "^3"},        {"\u222a", "\\cup "},
      {"\u2208", "\\in "},    {"\u00b1", "\\pm "},     {"\u2205", "\\emptyset "}, {"\u00a0", " "},
      {"\u2009", " "},        {"\u202f", ""},          {"\u20ac", ""},          {"\u00a3", ""},
      {"\u00a5", ""},         {"\u2248", "\\approx "}, {"\u2217", "*"}};
  // Most answers are plain ASCII without LaTeX commands: skip the groups that cannot match.
  bool high = std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  if (high)
    for (auto& [from, to] : kUnicode) replace_all(s, from, to);
  bool backslash = s.find('\\') != std::string::npos;
  // Doubled backslashes before a command (JSON-escaped LaTeX) unless they separate matrix rows.
  if (backslash && s.find("matrix") == std::string::npos && s.find("array") == std::string::npos) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 2 < s.size() && s[i + 1] == '\\' && is_alpha(s[i + 2])) continue;
      out += s[i];
    }
    s.swap(out);
  }
  if (backslash) {
    replace_all(s, "\\left.", "");
    replace_all(s, "\\right.", "");
    for (const char* c : {"\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\biggl", "\\biggr", "\\bigg",
                          "\\Bigg", "\\big", "\\Big", "\\middle", "\\displaystyle", "\\textstyle", "\\limits"})
      replace_cmd(s, c, "");
    for (const char* c : {"\\dfrac", "\\tfrac", "\\cfrac"}) replace_cmd(s, c, "\\frac");
    replace_all(s, "\\mathrm{e}", "\\eulere ");
    replace_all(s, "\\mathrm{th}", "");
    for (const char* c : {"\\mathrm", "\\mathit", "\\mathbf", "\\mathsf", "\\textnormal", "\\textbf", "\\textit",
                          "\\textrm", "\\mbox", "\\operatorname", "\\textup", "\\hbox"})
      replace_cmd(s, c, "\\text");
  }
  // \! (with trailing space) is a thousands-separator artefact: 11,\! 111 -> 11,111.
  if (backslash) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '!') {
        i += 1;
        while (i + 1 < s.size() && is_space(s[i + 1])) ++i;
        continue;
      }
      out += s[i];
    }
    s.swap(out);
  }
  // {,} as thousands separator (14{,}916), with optional spaces.
  if (s.find('{') != std::string::npos) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '{') {
        size_t j = i + 1;
        while (j < s.size() && is_space(s[j])) ++j;
        if (j < s.size() && s[j] == ',') {
          size_t k = j + 1;
          while (k < s.size() && is_space(s[k])) ++k;
          if (k < s.size() && s[k] == '}') {
            while (!out.empty() && is_space(out.back())) out.pop_back();
            out += ',';
            i = k;
            continue;
          }
        }
      }
      out += s[i];
    }
    s.swap(out);
  }
  if (s.find('$') != std::string::npos) {
    replace_all(s, "\\$", "");
    replace_all(s, "$", "");
  }
  if (backslash) {
    replace_all(s, "\\%", "%");
    for (const char* c : {"\\qquad", "\\quad"}) replace_cmd(s, c, " ", /*prefix_ok=*/true);
    for (const char* c : {"\\,", "\\;", "\\:", "\\>"}) replace_all(s, c, " ");
    replace_all(s, "\\{,\\}", ",");
    for (const char* c : {"^\\circ", "^{\\circ}", "^ \\circ", "^{ \\circ}", "\\circ", "\\degree"}) replace_all(s, c, "");
    for (const char* c : {"\\ldots", "\\cdots", "\\dots"}) replace_cmd(s, c, " ");
  }
  replace_all(s, "~", " ");
  replace_word(s, "infinity", "\\infty");
  replace_word(s, "percentage", "%");
  replace_word(s, "percent", "%");
  replace_word(s, "pct", "%");
  if (backslash) {
    replace_all(s, "\\text{%}", "%");
    replace_all(s, "\\text{ %}", "%");
  }
  for (char& c : s)
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  strip_trailing_units(s);
  // Trim spaces and trailing sentence punctuation.
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && (is_space(s[e - 1]) || s[e - 1] == '.')) --e;
  return s.substr(b, e - b);
}


}  // namespace r1kit::rewards::math
