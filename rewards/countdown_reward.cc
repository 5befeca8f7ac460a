#include "rewards/countdown_reward.h"

#include <gmpxx.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "core/check.h"

namespace r1kit::rewards {

namespace {

// A recursive-descent parser over the equation's tokens, evaluating exactly:
//   expr := term (('+'|'-') term)*     term := unary (('*'|'/') unary)*
//   unary := ('+'|'-') unary | atom    atom := integer | '(' expr ')'
class Parser {
 public:
  Parser(const std::string& text, bool allow_unary) : text_(text), allow_unary_(allow_unary) {}

  // Returns false with reason_ set on syntax errors and division by zero.
  bool parse(mpq_class& value) {
    if (!expr(value, 0)) return false;
    skip_space();
    if (pos_ != text_.size()) return fail("unexpected text at offset " + std::to_string(pos_));
    return true;
  }
  const std::vector<long long>& numbers() const { return numbers_; }
  const std::string& reason() const { return reason_; }

 private:
  static constexpr int kMaxDepth = 256;  // bounds recursion on inputs like "((((((..."

  bool fail(std::string why) {
    if (reason_.empty()) reason_ = std::move(why);
    return false;
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r'))
      ++pos_;
  }
  // The next operator character, normalising − × ÷ (and x is not accepted); 0 if none.
  char peek_op() {
    skip_space();
    if (pos_ >= text_.size()) return 0;
    const char c = text_[pos_];
    if (c == '+' || c == '-' || c == '*' || c == '/' || c == '(' || c == ')') return c;
    auto at = [&](const char* utf8) { return text_.compare(pos_, std::char_traits<char>::length(utf8), utf8) == 0; };
    if (at("\xE2\x88\x92")) return 'm';  // − U+2212
    if (at("\xC3\x97")) return 'x';      // × U+00D7
    if (at("\xC3\xB7")) return 'd';      // ÷ U+00F7
    return 0;
  }
  char take_op() {
    const char c = peek_op();
    if (c == 'm') {
      pos_ += 3;
      return '-';
    }
    if (c == 'x' || c == 'd') {
      pos_ += 2;
      return c == 'x' ? '*' : '/';
    }
    ++pos_;
    return c;
  }
  static char normal(char c) { return c == 'm' ? '-' : c == 'x' ? '*' : c == 'd' ? '/' : c; }

  bool expr(mpq_class& v, int depth) {
    if (depth > kMaxDepth) return fail("nested too deeply");
    if (!term(v, depth)) return false;
    for (char c = normal(peek_op()); c == '+' || c == '-'; c = normal(peek_op())) {
      take_op();
      mpq_class rhs;
      if (!term(rhs, depth)) return false;
      if (c == '+') v += rhs;
      else v -= rhs;
    }
    return true;
  }
  bool term(mpq_class& v, int depth) {
    if (!unary(v, depth)) return false;
    for (char c = normal(peek_op()); c == '*' || c == '/'; c = normal(peek_op())) {
      take_op();
      mpq_class rhs;
      if (!unary(rhs, depth)) return false;
      if (c == '*') {
        v *= rhs;
      } else {
        if (rhs == 0) return fail("division by zero");
        v /= rhs;
      }
    }
    return true;
  }
  bool unary(mpq_class& v, int depth) {
    const char c = normal(peek_op());
    if (c == '+' || c == '-') {
      if (!allow_unary_) return fail("unary operator");
      if (depth > kMaxDepth) return fail("nested too deeply");
      take_op();
      if (!unary(v, depth + 1)) return false;
      if (c == '-') v = -v;
      return true;
    }
    return atom(v, depth);
  }
  bool atom(mpq_class& v, int depth) {
    skip_space();
    if (pos_ >= text_.size()) return fail("unexpected end");
    if (text_[pos_] == '(') {
      ++pos_;
      if (!expr(v, depth + 1)) return false;
      if (peek_op() != ')') return fail("missing ')'");
      ++pos_;
      return true;
    }
    if (text_[pos_] >= '0' && text_[pos_] <= '9') {
      const std::size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
      if (pos_ < text_.size() && text_[pos_] == '.') return fail("decimal numbers are not allowed");
      const std::string digits = text_.substr(start, pos_ - start);
      v = mpq_class(mpz_class(digits, 10));
      // Numbers beyond 18 digits cannot match a given number; record a sentinel.
      numbers_.push_back(digits.size() > 18 ? LLONG_MIN : std::stoll(digits));
      return true;
    }
    return fail("unexpected character at offset " + std::to_string(pos_));
  }

  const std::string& text_;
  bool allow_unary_;
  std::size_t pos_ = 0;
  std::vector<long long> numbers_;
  std::string reason_;
};

// The target as an exact rational: integers exactly; other numbers through their shortest
// decimal form (so 0.1 means 1/10, not the binary double).
bool target_value(const json& target, mpq_class& out) {
  if (target.is_number_integer()) {
    out = mpq_class(mpz_class(target.dump(), 10));
    return true;
  }
  if (target.is_number_float()) {
    const double d = target.get<double>();
    if (!std::isfinite(d)) return false;
    if (d == std::floor(d) && std::fabs(d) < 1e18) {
      out = mpq_class(mpz_class(std::to_string(static_cast<long long>(d)), 10));
      return true;
    }
    out = mpq_class(d);  // non-integer targets: the double's exact value
    return true;
  }
  return false;
}

}  // namespace

CountdownCheck check_countdown_equation(const std::string& equation, const std::vector<long long>& numbers,
                                        const json& target, bool allow_unary) {
  CountdownCheck check;
  Parser parser(equation, allow_unary);
  mpq_class value;
  if (!parser.parse(value)) {
    check.reason = parser.reason();
    return check;
  }
  check.parsed = true;
  value.canonicalize();
  check.value = value.get_str();
  std::vector<long long> used = parser.numbers(), given = numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  check.numbers_ok = used == given;
  if (!check.numbers_ok) {
    check.reason = "does not use each given number exactly once";
    return check;
  }
  mpq_class goal;
  R1_CHECK(target_value(target, goal), "countdown: field 'target' must be a finite number, got ", target.dump());
  check.equals_target = value == goal;
  if (!check.equals_target) check.reason = "equals " + check.value + ", not the target";
  return check;
}

std::optional<std::string> last_answer_tag(const std::string& completion) {
  // Same matches as Python's re.finditer(r"<answer>(.*?)</answer>", text, re.DOTALL): scan left
  // to right for non-overlapping pairs and keep the last.
  std::optional<std::string> last;
  std::size_t from = 0;
  while (true) {
    const std::size_t open = completion.find("<answer>", from);
    if (open == std::string::npos) break;
    const std::size_t close = completion.find("</answer>", open + 8);
    if (close == std::string::npos) break;
    last = completion.substr(open + 8, close - open - 8);
    from = close + 9;
  }
  if (last) {
    const auto b = last->find_first_not_of(" \t\r\n");
    const auto e = last->find_last_not_of(" \t\r\n");
    *last = b == std::string::npos ? std::string() : last->substr(b, e - b + 1);
  }
  return last;
}

RewardOutput CountdownReward::score_one(const RewardInput& input) const {
  const json& f = input.fields;
  R1_CHECK(f.is_object(), "countdown: sample fields must be an object");
  const json* nums = nullptr;
  if (f.contains("nums")) nums = &f["nums"];
  else if (f.contains("numbers")) nums = &f["numbers"];
  R1_CHECK(nums != nullptr, "countdown: sample has neither 'nums' nor 'numbers'");
  R1_CHECK(nums->is_array(), "countdown: field 'nums'/'numbers' must be an array of integers");
  std::vector<long long> numbers;
  for (const auto& n : *nums) {
    R1_CHECK(n.is_number_integer() || (n.is_number_float() && n.get<double>() == std::floor(n.get<double>())),
             "countdown: numbers must be integers, got ", n.dump());
    numbers.push_back(n.is_number_integer() ? n.get<long long>() : static_cast<long long>(n.get<double>()));
  }
  R1_CHECK(f.contains("target"), "countdown: sample has no 'target'");

  RewardOutput out;
  const std::optional<std::string> equation = last_answer_tag(input.completion);
  out.components = {{"format", 0.0}, {"numbers", 0.0}, {"correct", 0.0}};
  if (!equation) {
    out.diagnostics["reason"] = "no <answer>...</answer>";
    return out;
  }
  out.components["format"] = 1.0;
  out.diagnostics["equation"] = equation->size() > 256 ? equation->substr(0, 256) + "..." : *equation;
  if (equation->size() > options_.max_equation_chars) {
    out.score = options_.format_score;
    out.diagnostics["reason"] = "equation longer than max_equation_chars";
    return out;
  }
  const CountdownCheck check = check_countdown_equation(*equation, numbers, f["target"], options_.allow_unary);
  out.components["numbers"] = check.numbers_ok ? 1.0 : 0.0;
  out.components["correct"] = check.equals_target ? 1.0 : 0.0;
  if (check.parsed) out.diagnostics["value"] = check.value;
  out.diagnostics["reason"] = check.equals_target ? "ok" : check.reason;
  out.score = check.equals_target ? options_.score : options_.format_score;
  return out;
}

std::unique_ptr<Reward> make_countdown_reward(ConfigNode& node) {
  CountdownOptions o;
  node.read("format_score", o.format_score);
  node.read("score", o.score);
  node.read("allow_unary", o.allow_unary);
  node.read("max_equation_chars", o.max_equation_chars);
  return std::make_unique<CountdownReward>(o);
}

}  // namespace r1kit::rewards
