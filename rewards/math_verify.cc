// math_verify / math_equal: extraction of both sides, parsing (gold answers cached), comparison.
#include "rewards/math_verify.h"

#include <mutex>
#include <unordered_map>

#include "rewards/math_ast.h"
#include "rewards/math_extract.h"

namespace r1kit::rewards {

namespace {

using math::NodeP;

struct Side {
  std::string text;  // extracted answer text ("" when nothing found)
  NodeP node;        // parsed answer, null when parsing failed
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
    if (NodeP n = try_parse(c.text)) return {c.text, n};
    if (c.latex) failed_latex.emplace_back(c.start, c.end);
  }
  // a short answer in words ("Evelyn", "odd") is its own answer
  if (o.match_latex && fallback.empty() && s.size() <= 200 && s.find('$') == std::string::npos &&
      s.find('\n') == std::string::npos && s.find("\\boxed") == std::string::npos) {
    if (NodeP n = try_parse(s)) return {s, n};
  }
  return {fallback, nullptr};
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
