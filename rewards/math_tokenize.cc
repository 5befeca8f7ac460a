// The tokenizer of answers: numbers (thousands groups, decimals, scientific notation), letters,
// LaTeX commands, \text{...} groups, \begin/\end environments, separators ("and", "or").
#include <algorithm>
#include <cctype>
#include <cstring>

#include "rewards/math_token.h"

namespace r1kit::rewards::math {

namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Reads a {...} group starting at s[i] == '{' and returns its raw content; i is left after '}'.
std::string read_braced(const std::string& s, size_t& i) {
  int depth = 0;
  size_t start = i + 1;
  for (; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) {
      std::string out = s.substr(start, i - start);
      ++i;
      return out;
    }
  }
  throw ParseError("unbalanced braces");
}

}  // namespace

std::string lower_trim(const std::string& t) {
  std::string out;
  for (char c : t) {
    if (is_space(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0;
  // The left-hand side of a leading "W(x)=": a glued "or"/"and" followed by it again separates
  // answers ("W(x)=1orW(x)=-1", spaces lost), where "1orW" would otherwise read as a product.
  std::string lhs;
  size_t eq = s.find('=');
  if (eq != std::string::npos && eq <= 24) {
    lhs = s.substr(0, eq);
    while (!lhs.empty() && is_space(lhs.back())) lhs.pop_back();
    if (lhs.find_first_of(" ,;<>") != std::string::npos || !std::any_of(lhs.begin(), lhs.end(), is_alpha)) lhs.clear();
  }
  auto push = [&](Tok t, std::string text, size_t pos) { out.push_back({t, std::move(text), pos}); };
  while (i < s.size()) {
    if (out.size() > static_cast<size_t>(Limits::kMaxNodes)) throw ParseError("answer too long");
    char c = s[i];
    size_t pos = i;
    if (is_space(c)) {
      ++i;
      continue;
    }
    bool prev_is_value = !out.empty() && (out.back().type == Tok::kNum || out.back().type == Tok::kIdent);
    if (is_digit(c) || (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]) && !prev_is_value)) {
      std::string num;
      size_t j = i;
      while (j < s.size() && is_digit(s[j])) num += s[j++];
      // thousands groups: 1,234,567 (first group 1-3 digits, not starting with 0, exactly 3 after each comma)
      if (!num.empty() && num.size() <= 3 && num[0] != '0') {
        size_t k = j;
        std::string grouped = num;
        while (k + 3 < s.size() && s[k] == ',' && is_digit(s[k + 1]) && is_digit(s[k + 2]) && is_digit(s[k + 3]) &&
               (k + 4 >= s.size() || !is_digit(s[k + 4]))) {
          grouped += s.substr(k + 1, 3);
          k += 4;
        }
        if (k != j) {
          num = grouped;
          j = k;
        }
      }
      if (j < s.size() && s[j] == '.' && j + 1 < s.size() && is_digit(s[j + 1])) {
        num += s[j++];
        while (j < s.size() && is_digit(s[j])) num += s[j++];
      }
      // scientific notation: 1.5e3, 2E-4 (not 2e, which is 2 times e)
      if (j + 1 < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '-' || s[k] == '+')) ++k;
        if (k < s.size() && is_digit(s[k])) {
          size_t d = k;
          while (d < s.size() && is_digit(s[d]) && d - k < 4) ++d;
          if (d >= s.size() || !is_alpha(s[d])) {
            num += "e" + s.substr(j + 1, d - j - 1);
            j = d;
          }
        }
      }
      push(Tok::kNum, num, pos);
      i = j;
      continue;
    }
    if (is_alpha(c)) {
      // whole words "and" / "or" separate answers
      size_t j = i;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string word = s.substr(i, j - i);
      if (word == "and" || word == "or") {
        push(Tok::kSep, word, pos);
        i = j;
        continue;
      }
      if (!lhs.empty() && !out.empty() && (out.back().type == Tok::kNum || out.back().type == Tok::kIdent ||
                                           (out.back().type == Tok::kSym && out.back().text == ")"))) {
        bool glued = false;
        for (const char* sep : {"or", "and"}) {
          size_t n = std::strlen(sep);
          size_t after = i + n + lhs.size();
          if (s.compare(i, n, sep) == 0 && s.compare(i + n, lhs.size(), lhs) == 0) {
            while (after < s.size() && is_space(s[after])) ++after;
            if (after < s.size() && s[after] == '=') {
              push(Tok::kSep, sep, pos);
              i += n;
              glued = true;
              break;
            }
          }
        }
        if (glued) continue;
      }
      push(Tok::kIdent, std::string(1, c), pos);
      ++i;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= s.size()) {
        ++i;
        continue;
      }
      char d = s[i + 1];
      if (d == '\\') {  // row separator
        push(Tok::kSym, "\\\\", pos);
        i += 2;
        continue;
      }
      if (is_space(d)) {  // "\ " is a space
        i += 2;
        continue;
      }
      if (!is_alpha(d)) {  // \{ \} \| \% etc.
        push(Tok::kSym, std::string("\\") + d, pos);
        i += 2;
        continue;
      }
      size_t j = i + 1;
      while (j < s.size() && is_alpha(s[j])) ++j;
      std::string name = s.substr(i + 1, j - i - 1);
      i = j;
      if (name == "text") {
        while (i < s.size() && is_space(s[i])) ++i;
        if (i < s.size() && s[i] == '{') {
          std::string content = read_braced(s, i);
          std::string t = lower_trim(content);
          if (t == "and" || t == "or" || t == ", and" || t == ",and" || t == "and/or") push(Tok::kSep, t, pos);
          else if (t == "%") push(Tok::kSym, "%", pos);
          else if (!t.empty()) push(Tok::kText, content, pos);
        }
        continue;
      }
      if (name == "begin" || name == "end") {
        while (i < s.size() && is_space(s[i])) ++i;
        if (i < s.size() && s[i] == '{') {
          std::string env = read_braced(s, i);
          if (name == "begin" && env == "array") {  // skip the column spec {cc}
            while (i < s.size() && is_space(s[i])) ++i;
            if (i < s.size() && s[i] == '{') read_braced(s, i);
          }
          push(name == "begin" ? Tok::kBegin : Tok::kEndEnv, env, pos);
        }
        continue;
      }
      push(Tok::kCmd, name, pos);
      continue;
    }
    // multi-char operators
    if ((c == '<' || c == '>' || c == '!') && i + 1 < s.size() && s[i + 1] == '=') {
      push(Tok::kSym, s.substr(i, 2), pos);
      i += 2;
      continue;
    }
    push(Tok::kSym, std::string(1, c), pos);
    ++i;
  }
  push(Tok::kEnd, "", s.size());
  return out;
}

bool is_function_name(const std::string& n) {
  static const char* kFns[] = {"sin",  "cos",  "tan",    "sec",    "csc",    "cot",  "arcsin", "arccos",
                               "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp", "lg", "det", "gcd", "lcm",
                               "max", "min", "deg"};
  for (const char* f : kFns)
    if (n == f) return true;
  return false;
}

bool is_greek(const std::string& n) {
  static const char* kGreek[] = {"alpha", "beta",  "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta",
                                 "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma",
                                 "tau",   "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta",
                                 "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega", "ell"};
  for (const char* g : kGreek)
    if (n == g) return true;
  return false;
}

std::optional<RelOp> rel_op(const Token& t) {
  if (t.type == Tok::kSym) {
    if (t.text == "=") return kEq;
    if (t.text == "<") return kLt;
    if (t.text == ">") return kGt;
    if (t.text == "<=") return kLe;
    if (t.text == ">=") return kGe;
    if (t.text == "!=") return kNe;
  } else if (t.type == Tok::kCmd) {
    const std::string& n = t.text;
    if (n == "le" || n == "leq" || n == "leqslant") return kLe;
    if (n == "ge" || n == "geq" || n == "geqslant") return kGe;
    if (n == "lt") return kLt;
    if (n == "gt") return kGt;
    if (n == "ne" || n == "neq") return kNe;
    if (n == "approx" || n == "simeq" || n == "sim") return kApprox;
    if (n == "in") return kIn;
    if (n == "equiv") return kEq;
  }
  return std::nullopt;
}

Node num_node(const std::string& full) {
  Node n;
  n.kind = Kind::kNum;
  long exp10 = 0;
  std::string text = full;
  size_t epos = full.find('e');
  if (epos != std::string::npos) {
    exp10 = std::stol(full.substr(epos + 1));
    text = full.substr(0, epos);
  }
  size_t dot = text.find('.');
  std::string digits = text;
  if (dot != std::string::npos) {
    n.decimal = true;
    n.places = static_cast<int>(text.size() - dot - 1);
    digits = text.substr(0, dot) + text.substr(dot + 1);
  }
  size_t nz = digits.find_first_not_of('0');
  n.sig_digits = nz == std::string::npos ? 1 : static_cast<int>(digits.size() - nz);
  if (nz == std::string::npos) digits = "0";
  else digits = digits.substr(nz);
  mpz_class num(digits, 10);
  mpz_class den = 1;
  if (n.places > 0) mpz_ui_pow_ui(den.get_mpz_t(), 10, static_cast<unsigned long>(n.places));
  if (exp10 > 0) {
    mpz_class scale;
    mpz_ui_pow_ui(scale.get_mpz_t(), 10, static_cast<unsigned long>(exp10));
    num *= scale;
    n.places = std::max(0L, n.places - exp10);
  } else if (exp10 < 0) {
    mpz_class scale;
    mpz_ui_pow_ui(scale.get_mpz_t(), 10, static_cast<unsigned long>(-exp10));
    den *= scale;
    n.places += static_cast<int>(-exp10);
  }
  n.q = mpq_class(num, den);
  n.q.canonicalize();
  return n;
}

}  // namespace r1kit::rewards::math
