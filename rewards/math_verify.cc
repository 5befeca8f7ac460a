// math_verify / math_equal: extraction of both sides, parsing (gold answers cached), comparison.
#include "rewards/math_verify.h"

#include <cctype>
#include <mutex>
#include <unordered_map>

#include "rewards/math_ast.h"
#include "rewards/math_extract.h"

namespace r1kit::rewards {

namespace {

using math::NodeP;

struct Side {
  std::string text;    // extracted answer text ("" when nothing found)
  NodeP node;          // parsed answer, null when parsing failed
  bool plain = true;   // plain text, not the inside of $...$ or \boxed{} (where a comma separates items)
};

NodeP try_parse(const std::string& text) {
  try {
    return math::parse_answer(text);
  } catch (const math::ParseError&) {
    return nullptr;
  }
}

std::string squash(const std::string& s) {
  if (s.size() > math::Limits::kMaxAnswerBytes) return s;
  std::string n = math::normalize_answer_text(s), out;
  for (char c : n)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  return out;
}

// Candidates tried per input before giving up (Math-Verify tries all; real answers are found within
// the first few, and this bounds the cost of adversarial text).
constexpr int kMaxParseAttempts = 64;

Side resolve(const std::string& input, bool extract, const MathVerifyOptions& o) {
  std::string cut;
  const std::string* sp = &input;
  if (input.size() > o.max_input_bytes) {
    cut = input.substr(input.size() - o.max_input_bytes);
    sp = &cut;
  }
  const std::string& s = *sp;
  if (!extract) return {s, try_parse(s)};
  bool bare = o.match_latex && s.size() <= math::Limits::kMaxAnswerBytes && math::looks_like_bare_answer(s);
  if (bare) {
    if (NodeP n = try_parse(s)) return {s, n};
  }
  math::FindOptions fo;
  fo.latex = o.match_latex;
  fo.expr = o.match_expr;
  fo.boxed_first = o.boxed_first;
  fo.european_decimals = !o.match_latex;
  std::vector<math::Candidate> cands = math::find_candidates(s, fo);
  std::vector<std::pair<size_t, size_t>> failed_latex;
  std::string fallback;
  int attempts = 0;
  for (const auto& c : cands) {
    if (++attempts > kMaxParseAttempts) break;
    if (!c.latex) {
      bool overlaps = false;
      for (auto& [a, b] : failed_latex)
        if (c.start < b && c.end > a) overlaps = true;
      if (overlaps) continue;
    }
    if (fallback.empty()) fallback = c.text;
    if (NodeP n = try_parse(c.text)) return {c.text, n, !c.latex};
    if (c.latex) failed_latex.emplace_back(c.start, c.end);
  }
  // a short answer in words ("Evelyn", "odd") is its own answer
  if (o.match_latex && fallback.empty() && s.size() <= 200 && s.find('$') == std::string::npos &&
      s.find('\n') == std::string::npos && s.find("\\boxed") == std::string::npos) {
    if (NodeP n = try_parse(s)) return {s, n};
  }
  return {fallback, nullptr};
}

// "1,22", "0,111", "1000,99" in plain text: a comma between digits that cannot be a thousands
// separator. Parsed as the list 1, 22 (MATH writes answer lists that way: "1,2", "8,12"); its other
// reading, the decimal "1.22", is returned here. Empty when the text is not such a number.
std::string decimal_comma_reading(const Side& side) {
  if (!side.plain) return "";
  const std::string& t = side.text;
  size_t b = t.find_first_not_of(" "), e = t.find_last_not_of(" ");
  if (b == std::string::npos) return "";
  size_t i = b + (t[b] == '-' ? 1 : 0);
  size_t comma = t.find(',', i);
  if (comma == std::string::npos || comma == i || comma >= e) return "";
  auto digits = [&](size_t from, size_t to) {
    for (size_t k = from; k < to; ++k)
      if (!std::isdigit(static_cast<unsigned char>(t[k]))) return false;
    return true;
  };
  if (!digits(i, comma) || !digits(comma + 1, e + 1)) return "";
  bool thousands = comma - i <= 3 && t[i] != '0' && e - comma == 3;
  if (thousands) return "";
  return t.substr(b, comma - b) + "." + t.substr(comma + 1, e - comma);
}

// A number written with a decimal point ("1.22", "-0.5").
bool written_decimal(const math::Node& n) {
  if (n.kind == math::Kind::kNum) return n.decimal;
  return n.kind == math::Kind::kMul && n.kids.size() == 2 && n.kids[0]->kind == math::Kind::kNum &&
         n.kids[0]->q == -1 && n.kids[1]->kind == math::Kind::kNum && n.kids[1]->decimal;
}

// The decimal reading of `comma_side` ("1,22" as 1.22) equals `other`, a decimal written with a
// point. Only then: "1,22" against 61/50 or against "1, 22" keeps its list reading.
bool decimal_comma_match(const Side& comma_side, const Side& other, const math::CompareOptions& co, bool comma_is_gold) {
  std::string decimal = decimal_comma_reading(comma_side);
  if (decimal.empty() || !other.node || !written_decimal(*other.node)) return false;
  NodeP d = try_parse(decimal);
  if (!d) return false;
  return comma_is_gold ? math::compare(d, other.node, co).equal : math::compare(other.node, d, co).equal;
}

// Parsed gold answers, keyed by the raw gold text and the options that affect parsing.
class GoldCache {
 public:
  Side get(const std::string& gold, const MathVerifyOptions& o) {
    std::string key;
    key.reserve(gold.size() + 4);
    key += static_cast<char>('0' + o.extract_gold);
    key += static_cast<char>('0' + o.match_latex);
    key += static_cast<char>('0' + o.match_expr);
    key += static_cast<char>('0' + o.boxed_first);
    key += gold;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = map_.find(key);
      if (it != map_.end()) return it->second;
    }
    Side side = resolve(gold, o.extract_gold, o);
    std::lock_guard<std::mutex> lock(mu_);
    if (map_.size() >= kMaxEntries) map_.clear();
    if (gold.size() <= 4096) map_.emplace(std::move(key), side);
    return side;
  }

 private:
  static constexpr size_t kMaxEntries = 100000;
  std::mutex mu_;
  std::unordered_map<std::string, Side> map_;
};

GoldCache& gold_cache() {
  static GoldCache cache;
  return cache;
}

}  // namespace

MathVerifyResult math_verify(const std::string& gold, const std::string& pred, const MathVerifyOptions& o) {
  MathVerifyResult r;
  try {
    Side g = gold_cache().get(gold, o);
    Side p = resolve(pred, o.extract_pred, o);
    r.gold_extracted = g.text;
    r.pred_extracted = p.text;
    if (g.node) r.gold_parsed = math::to_string(*g.node);
    if (p.node) r.pred_parsed = math::to_string(*p.node);
    if (g.text.empty()) {
      r.reason = "no answer found in gold";
      return r;
    }
    if (p.text.empty()) {
      r.reason = "no answer found in pred";
      return r;
    }
    if (squash(g.text) == squash(p.text)) {
      r.correct = true;
      r.reason = "identical text";
      return r;
    }
    if (!g.node || !p.node) {
      r.reason = !g.node ? "gold could not be parsed" : "pred could not be parsed";
      return r;
    }
    math::CompareOptions co;
    co.float_rounding = o.float_rounding;
    co.strict = o.strict;
    co.allow_set_relation = o.allow_set_relation;
    math::CompareResult c = math::compare(g.node, p.node, co);
    r.correct = c.equal;
    r.exact = c.exact;
    r.reason = c.how;
    if (!r.correct && (decimal_comma_match(g, p, co, true) || decimal_comma_match(p, g, co, false))) {
      r.correct = true;
      r.exact = true;
      r.reason = "decimal comma (1,22 = 1.22)";
    }
  } catch (const std::exception& e) {
    r.correct = false;
    r.reason = std::string("checker error: ") + e.what();
  }
  return r;
}

bool math_equal(const std::string& gold, const std::string& pred, const MathVerifyOptions& options) {
  return math_verify(gold, pred, options).correct;
}

}  // namespace r1kit::rewards
