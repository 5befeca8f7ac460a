#include "rewards/code_extract.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/check.h"

namespace r1kit::rewards {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// A fence line: optional indentation (< 4 spaces), then >= 3 backticks or tildes.
bool fence_line(const std::string& line, char& ch, std::size_t& len, std::string& info) {
  std::size_t i = 0;
  while (i < line.size() && i < 4 && line[i] == ' ') ++i;
  if (i >= line.size() || (line[i] != '`' && line[i] != '~')) return false;
  ch = line[i];
  std::size_t j = i;
  while (j < line.size() && line[j] == ch) ++j;
  len = j - i;
  if (len < 3) return false;
  info = trim(line.substr(j));
  return true;
}

bool parse_number(const std::string& tok, double& v) {
  if (tok.empty()) return false;
  const char* s = tok.c_str();
  char* end = nullptr;
  v = std::strtod(s, &end);
  return end == s + tok.size() && std::isfinite(v);
}

}  // namespace

CodeBlock extract_code_block(const std::string& text, const std::vector<std::string>& tags, bool accept_untagged) {
  CodeBlock best;
  std::vector<std::string> lines;
  {
    std::string line;
    std::istringstream ss(text);
    while (std::getline(ss, line)) lines.push_back(line);
  }
  std::vector<std::string> wanted;
  for (const auto& t : tags) wanted.push_back(lower(t));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    char ch;
    std::size_t len;
    std::string info;
    if (!fence_line(lines[i], ch, len, info)) continue;
    // The tag is the info string's first word ("python3 title=x" -> "python3").
    std::string tag = lower(info.substr(0, info.find_first_of(" \t{")));
    std::string code;
    std::size_t j = i + 1;
    for (; j < lines.size(); ++j) {
      char c2;
      std::size_t l2;
      std::string info2;
      if (fence_line(lines[j], c2, l2, info2) && c2 == ch && l2 >= len && info2.empty()) break;
      code += lines[j] + "\n";
    }
    bool match = tag.empty() ? accept_untagged : std::find(wanted.begin(), wanted.end(), tag) != wanted.end();
    if (match) best = {true, code, tag};
    i = j;  // skip past the closing fence (or the end)
  }
  return best;
}

bool outputs_match(const std::string& actual, const std::string& expected, double float_tolerance, std::string* why) {
  std::istringstream a(actual), e(expected);
  std::string ta, te;
  for (std::size_t k = 0;; ++k) {
    bool ha = static_cast<bool>(a >> ta), he = static_cast<bool>(e >> te);
    if (!ha && !he) return true;
    if (ha != he) {
      if (why) *why = str_cat("token ", k, ": ", ha ? "extra output '" + ta + "'" : "missing '" + te + "'");
      return false;
    }
    if (ta == te) continue;
    double va, ve;
    if (float_tolerance > 0 && parse_number(ta, va) && parse_number(te, ve) &&
        std::fabs(va - ve) <= float_tolerance * std::max(1.0, std::fabs(ve)))
      continue;
    if (why) *why = str_cat("token ", k, ": got '", ta.substr(0, 100), "', expected '", te.substr(0, 100), "'");
    return false;
  }
}

}  // namespace r1kit::rewards
