// LaTeX / plain-text answer -> AST: normalise (math_normalize.cc), tokenize (math_tokenize.cc), then
// this recursive-descent parser (depth- and size-limited) builds the AST.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>

#include "rewards/math_ast.h"
#include "rewards/math_token.h"

namespace r1kit::rewards::math {

NodeP make_node(Node n) { return std::make_shared<const Node>(std::move(n)); }

namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  NodeP parse_all() {
    NodeP n = parse_semis();
    if (peek().type != Tok::kEnd) throw ParseError("unexpected '" + peek().text + "'");
    return n;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(int& d) : d_(d) {
      if (++d_ > Limits::kMaxDepth) throw ParseError("nesting too deep");
    }
    ~DepthGuard() { --d_; }
    int& d_;
  };

  const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  Token next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool is_sym(const char* s, size_t k = 0) const { return peek(k).type == Tok::kSym && peek(k).text == s; }
  bool is_cmd(const char* s) const { return peek().type == Tok::kCmd && peek().text == s; }
  void expect_sym(const char* s) {
    if (!is_sym(s)) throw ParseError(std::string("expected '") + s + "'");
    ++i_;
  }
  NodeP mk(Node n) {
    if (++nodes_ > Limits::kMaxNodes) throw ParseError("answer too large");
    return make_node(std::move(n));
  }
  NodeP mk_kids(Kind k, std::vector<NodeP> kids) {
    Node n;
    n.kind = k;
    n.kids = std::move(kids);
    return mk(std::move(n));
  }

  bool at_closer() const {
    const Token& p = peek();
    if (p.type == Tok::kEnd || p.type == Tok::kEndEnv) return true;
    if (p.type == Tok::kSym)
      return p.text == ")" || p.text == "]" || p.text == "}" || p.text == "\\}" || p.text == "&" || p.text == "\\\\" ||
             (p.text == "|" && abs_depth_ > 0);
    if (p.type == Tok::kCmd) return p.text == "rangle" || p.text == "rfloor" || p.text == "rceil";
    return false;
  }

  // a; b; c  (each item itself may be a comma list)
  NodeP parse_semis() {
    DepthGuard g(depth_);
    std::vector<NodeP> items;
    items.push_back(parse_commas());
    while (is_sym(";")) {
      ++i_;
      if (at_closer()) break;
      items.push_back(parse_commas());
    }
    if (items.size() == 1) return items[0];
    return mk_kids(Kind::kList, std::move(items));
  }

  NodeP parse_commas() {
    std::vector<NodeP> items;
    while (peek().type == Tok::kSep) ++i_;
    items.push_back(parse_rel());
    while (is_sym(",") || peek().type == Tok::kSep) {
      while (is_sym(",") || peek().type == Tok::kSep) ++i_;
      if (at_closer() || is_sym(";")) break;
      items.push_back(parse_rel());
    }
    if (items.size() == 1) return items[0];
    return mk_kids(Kind::kList, std::move(items));
  }

  NodeP parse_rel() {
    std::vector<NodeP> parts{parse_ratio()};
    std::vector<RelOp> ops;
    while (auto op = rel_op(peek())) {
      ++i_;
      ops.push_back(*op);
      parts.push_back(parse_ratio());
    }
    if (ops.empty()) return parts[0];
    Node n;
    n.kind = Kind::kRel;
    n.kids = std::move(parts);
    n.ops = std::move(ops);
    return mk(std::move(n));
  }

  NodeP parse_ratio() {
    std::vector<NodeP> parts{parse_union()};
    while (is_sym(":")) {  // a : b, and times 4:51:06
      ++i_;
      parts.push_back(parse_union());
    }
    if (parts.size() == 1) return parts[0];
    return mk_kids(Kind::kRatio, std::move(parts));
  }

  NodeP parse_union() {
    std::vector<NodeP> items{parse_additive()};
    while (is_cmd("cup")) {
      ++i_;
      items.push_back(parse_additive());
    }
    if (items.size() == 1) return items[0];
    return mk_kids(Kind::kUnion, std::move(items));
  }

  static NodeP negate(Parser& p, const NodeP& x) {
    Node m;
    m.kind = Kind::kNum;
    m.q = -1;
    return p.mk_kids(Kind::kMul, {p.mk(std::move(m)), x});
  }

  NodeP parse_additive() {
    DepthGuard g(depth_);
    NodeP acc;
    // leading sign
    if (is_sym("-")) {
      ++i_;
      acc = negate(*this, parse_mul());
    } else if (is_sym("+")) {
      ++i_;
      acc = parse_mul();
    } else if (is_cmd("pm") || is_cmd("mp")) {
      ++i_;
      Node z;
      z.kind = Kind::kNum;
      acc = mk_kids(Kind::kPlusMinus, {mk(std::move(z)), parse_mul()});
    } else {
      acc = parse_mul();
    }
    std::vector<NodeP> terms{acc};
    for (;;) {
      if (is_sym("+")) {
        ++i_;
        terms.push_back(parse_mul());
      } else if (is_sym("-")) {
        ++i_;
        terms.push_back(negate(*this, parse_mul()));
      } else if (is_cmd("pm") || is_cmd("mp")) {
        ++i_;
        NodeP left = terms.size() == 1 ? terms[0] : mk_kids(Kind::kAdd, terms);
        terms = {mk_kids(Kind::kPlusMinus, {left, parse_mul()})};
      } else {
        break;
      }
    }
    if (terms.size() == 1) return terms[0];
    return mk_kids(Kind::kAdd, std::move(terms));
  }

  bool starts_primary() const {
    const Token& p = peek();
    switch (p.type) {
      case Tok::kNum:
      case Tok::kIdent:
      case Tok::kBegin:
        return true;
      case Tok::kCmd:
        return !rel_op(p) && p.text != "cup" && p.text != "pm" && p.text != "mp" && p.text != "cdot" &&
               p.text != "times" && p.text != "div" && p.text != "rangle" && p.text != "rfloor" &&
               p.text != "rceil" && p.text != "cap" && p.text != "setminus" && p.text != "mid";
      case Tok::kSym:
        return p.text == "(" || p.text == "\\{" || p.text == "{" || (p.text == "|" && abs_depth_ == 0) ||
               p.text == "[";
      default:
        return false;
    }
  }

  NodeP parse_mul() {
    DepthGuard g(depth_);
    std::vector<NodeP> factors{parse_unary()};
    // f(x), W(n) as written (a product for evaluation), remembered for "f(x) = x^2" vs "f(t) = t^2"
    bool call = factors[0]->kind == Kind::kSym && factors[0]->name.size() == 1 && is_sym("(") &&
                peek(1).type == Tok::kIdent && is_sym(")", 2);
    for (;;) {
      if (is_sym("*") || is_cmd("cdot") || is_cmd("times")) {
        ++i_;
        factors.push_back(parse_unary());
      } else if (is_sym("/") || is_cmd("div")) {
        ++i_;
        NodeP d = parse_unary();
        Node m1;
        m1.kind = Kind::kNum;
        m1.q = -1;
        factors.push_back(mk_kids(Kind::kPow, {d, mk(std::move(m1))}));
      } else if (peek().type == Tok::kText) {
        // a word after a value is a unit: 15 \text{cm}^2, 0.06 \text{ yuan}
        ++i_;
        if (is_sym("^")) {
          ++i_;
          parse_exponent();
        }
      } else if (is_sym("%")) {
        ++i_;
        mark_percent(factors);
      } else if (starts_primary() && !(is_sym("[") )) {
        bool mixed_candidate = factors.size() == 1 && is_cmd("frac") && integer_value(*factors[0]);
        NodeP f = parse_postfix();
        if (mixed_candidate && proper_fraction(*f)) {
          // mixed number: 2\frac{1}{2} is 5/2 (how competition answers write it)
          bool neg = factors[0]->kind == Kind::kMul;
          NodeP whole = neg ? factors[0]->kids[1] : factors[0];
          NodeP sum = mk_kids(Kind::kAdd, {whole, f});
          factors[0] = neg ? negate(*this, sum) : sum;
        } else {
          factors.push_back(f);
        }
      } else {
        break;
      }
    }
    if (factors.size() == 1) return factors[0];
    if (call && factors.size() == 2 && factors[1]->kind == Kind::kSym) {
      Node n;
      n.kind = Kind::kMul;
      n.kids = std::move(factors);
      n.call = true;
      return mk(std::move(n));
    }
    return mk_kids(Kind::kMul, std::move(factors));
  }

  // A written non-negative integer, or its negation.
  static bool integer_value(const Node& n) {
    auto plain_int = [](const Node& x) { return x.kind == Kind::kNum && !x.decimal && x.q >= 0 && x.q.get_den() == 1; };
    if (plain_int(n)) return true;
    return n.kind == Kind::kMul && n.kids.size() == 2 && n.kids[0]->kind == Kind::kNum && n.kids[0]->q == -1 &&
           plain_int(*n.kids[1]);
  }
  // \frac{a}{b} with integer literals 0 < a < b.
  static bool proper_fraction(const Node& n) {
    if (n.kind != Kind::kMul || n.kids.size() != 2) return false;
    const Node& a = *n.kids[0];
    const Node& p = *n.kids[1];
    if (a.kind != Kind::kNum || a.decimal || a.q.get_den() != 1 || a.q <= 0) return false;
    if (p.kind != Kind::kPow || p.kids[1]->kind != Kind::kNum || p.kids[1]->q != -1) return false;
    const Node& b = *p.kids[0];
    return b.kind == Kind::kNum && !b.decimal && b.q.get_den() == 1 && a.q < b.q;
  }

  void mark_percent(std::vector<NodeP>& factors) {
    Node n = *factors.back();
    n.percent = true;
    factors.back() = mk(std::move(n));
  }

  NodeP parse_unary() {
    DepthGuard g(depth_);
    if (is_sym("-")) {
      ++i_;
      return negate(*this, parse_unary());
    }
    if (is_sym("+")) {
      ++i_;
      return parse_unary();
    }
    return parse_postfix();
  }

  // A {group} in braces: the caller has seen the '{' (and holds the depth guard).
  NodeP parse_braced() {
    ++i_;
    NodeP e = parse_semis();
    expect_sym("}");
    return e;
  }

  NodeP parse_exponent() {
    DepthGuard g(depth_);
    if (is_sym("{")) return parse_braced();
    if (is_sym("-")) {
      ++i_;
      return negate(*this, parse_exponent());
    }
    if (is_sym("(")) return parse_primary();
    if (peek().type == Tok::kNum || peek().type == Tok::kIdent || peek().type == Tok::kCmd) return parse_primary();
    throw ParseError("bad exponent");
  }

  NodeP parse_postfix() {
    DepthGuard g(depth_);
    NodeP base = parse_primary();
    for (;;) {
      if (is_sym("^")) {
        ++i_;
        NodeP e = parse_exponent();
        base = mk_kids(Kind::kPow, {base, e});
      } else if (is_sym("!")) {
        ++i_;
        Node f;
        f.kind = Kind::kFunc;
        f.name = "factorial";
        f.kids = {base};
        base = mk(std::move(f));
      } else if (is_sym("'") || is_cmd("prime")) {
        ++i_;
        Node n = *base;
        if (n.kind == Kind::kSym) n.name += "'";
        base = mk(std::move(n));
      } else if (is_sym("%")) {
        ++i_;
        Node n = *base;
        n.percent = true;
        base = mk(std::move(n));
      } else {
        return base;
      }
    }
  }

  // An argument of \frac / \sqrt: a {group}, or a single token (\frac12, \sqrt3, \frac\pi2).
  NodeP parse_arg() {
    DepthGuard g(depth_);
    if (is_sym("{")) return parse_braced();
    const Token& p = peek();
    if (p.type == Tok::kNum) {
      // a single digit: \frac12 is 1/2
      Token t = next();
      if (t.text.size() > 1 && t.text.find('.') == std::string::npos && t.text.find(',') == std::string::npos) {
        // give the remaining digits back as a new token
        t_.insert(t_.begin() + static_cast<long>(i_), Token{Tok::kNum, t.text.substr(1), t.pos + 1});
        return mk(num_node(t.text.substr(0, 1)));
      }
      return mk(num_node(t.text));
    }
    return parse_primary();
  }

  std::string read_subscript_text() {
    // raw text of a subscript: _1, _{12}, _{n-k-1}
    if (is_sym("{")) {
      ++i_;
      std::string out;
      int depth = 1;
      while (peek().type != Tok::kEnd) {
        if (is_sym("{")) ++depth;
        if (is_sym("}") && --depth == 0) {
          ++i_;
          return out;
        }
        out += next().text;
      }
      throw ParseError("unbalanced subscript");
    }
    Token t = next();
    if (t.type == Tok::kEnd) throw ParseError("empty subscript");
    if (t.type == Tok::kNum && t.text.size() > 1) {  // x_12 -> x_1 * 2 in LaTeX; models mean x_12
      return t.text;
    }
    return t.text;
  }

  NodeP symbol(std::string name) {
    Node n;
    n.kind = Kind::kSym;
    n.name = std::move(name);
    if (is_sym("_")) {
      ++i_;
      n.name += "_" + read_subscript_text();
    }
    return mk(std::move(n));
  }

  NodeP constant(const char* name) {
    Node n;
    n.kind = Kind::kConst;
    n.name = name;
    return mk(std::move(n));
  }

  NodeP func(const std::string& name, std::vector<NodeP> args) {
    Node n;
    n.kind = Kind::kFunc;
    n.name = name;
    n.kids = std::move(args);
    return mk(std::move(n));
  }

  // ( ... ) [ ... ] with interval detection. `open` is "(" or "[".
  NodeP parse_bracketed(const std::string& open) {
    std::vector<NodeP> items;
    if (!(is_sym(")") || is_sym("]"))) {
      NodeP inner = parse_semis();
      if (inner->kind == Kind::kList) items = inner->kids;
      else items.push_back(inner);
    }
    std::string close = peek().text;
    if (!(is_sym(")") || is_sym("]"))) throw ParseError("unclosed " + open);
    ++i_;
    if (items.empty()) throw ParseError("empty brackets");
    bool round = open == "(" && close == ")";
    if (items.size() == 1) {
      if (round || (open == "[" && close == "]")) return items[0];
      throw ParseError("half-open bracket around one item");
    }
    if (items.size() == 2 && !round) {
      Node n;
      n.kind = Kind::kInterval;
      n.kids = items;
      n.lo_closed = open == "[";
      n.hi_closed = close == "]";
      return mk(std::move(n));
    }
    Node n;
    n.kind = Kind::kTuple;
    n.kids = std::move(items);
    n.maybe_interval = round && n.kids.size() == 2;
    return mk(std::move(n));
  }

  NodeP parse_matrix(const std::string& env) {
    std::vector<std::vector<NodeP>> rows(1);
    for (;;) {
      if (peek().type == Tok::kEnd) throw ParseError("unterminated \\begin{" + env + "}");
      if (peek().type == Tok::kEndEnv) {
        ++i_;
        break;
      }
      if (is_sym("&")) {
        ++i_;
        continue;
      }
      if (is_sym("\\\\")) {
        ++i_;
        rows.emplace_back();
        continue;
      }
      rows.back().push_back(parse_rel());
    }
    while (!rows.empty() && rows.back().empty()) rows.pop_back();
    if (rows.empty()) throw ParseError("empty matrix");
    size_t cols = rows[0].size();
    Node n;
    n.kind = Kind::kMatrix;
    for (auto& r : rows) {
      if (r.size() != cols) throw ParseError("ragged matrix");
      for (auto& c : r) n.kids.push_back(c);
    }
    n.rows = static_cast<int>(rows.size());
    n.cols = static_cast<int>(cols);
    if (env.find("vmatrix") != std::string::npos) return func("det", {mk(std::move(n))});
    return mk(std::move(n));
  }

  NodeP parse_primary() {
    DepthGuard g(depth_);
    Token t = next();
    switch (t.type) {
      case Tok::kNum: {
        NodeP n = mk(num_node(t.text));
        if (is_sym("_") && (peek(1).type == Tok::kNum || (peek(1).type == Tok::kSym && peek(1).text == "{"))) {
          // base subscript: 204_5, 1112_{3}
          size_t save = i_;
          ++i_;
          std::string base_text = read_subscript_text();
          int base = 0;
          try {
            base = std::stoi(base_text);
          } catch (...) {
            base = 0;
          }
          mpz_class v;
          if (base >= 2 && base <= 36 && t.text.find('.') == std::string::npos &&
              mpz_set_str(v.get_mpz_t(), t.text.c_str(), base) == 0) {
            Node b;
            b.kind = Kind::kNum;
            b.q = mpq_class(v);
            return mk(std::move(b));
          }
          i_ = save;
        }
        return n;
      }
      case Tok::kIdent:
        return symbol(t.text);
      case Tok::kText: {
        Node n;
        n.kind = Kind::kText;
        std::string s = lower_trim(t.text);
        // (C) -> c: answer choices in parentheses
        if (s.size() >= 3 && s.front() == '(' && s.back() == ')') s = s.substr(1, s.size() - 2);
        if (is_sym("_")) {  // \text{A5}_{11}: a numeral in base 11
          ++i_;
          s += "_" + read_subscript_text();
        }
        n.name = s;
        return mk(std::move(n));
      }
      case Tok::kBegin:
        return parse_matrix(t.text);
      case Tok::kSym: {
        if (t.text == "(" || t.text == "[") return parse_bracketed(t.text);
        if (t.text == "{") {
          NodeP inner = is_sym("}") ? nullptr : parse_semis();
          expect_sym("}");
          if (!inner) throw ParseError("empty group");
          return inner;
        }
        if (t.text == "\\{") {
          std::vector<NodeP> items;
          if (!is_sym("\\}")) {
            NodeP inner = parse_semis();
            if (inner->kind == Kind::kList) items = inner->kids;
            else items.push_back(inner);
          }
          expect_sym("\\}");
          if (items.empty()) return mk_kids(Kind::kEmpty, {});
          return mk_kids(Kind::kSet, std::move(items));
        }
        if (t.text == "|") {
          ++abs_depth_;
          NodeP inner = parse_additive();
          --abs_depth_;
          expect_sym("|");
          return func("abs", {inner});
        }
        throw ParseError("unexpected '" + t.text + "'");
      }
      case Tok::kCmd:
        return parse_command(t.text);
      default:
        throw ParseError("unexpected end of answer");
    }
  }

  NodeP parse_command(const std::string& name) {
    if (name == "frac" || name == "over") {
      NodeP a = parse_arg();
      NodeP b = parse_arg();
      Node m1;
      m1.kind = Kind::kNum;
      m1.q = -1;
      return mk_kids(Kind::kMul, {a, mk_kids(Kind::kPow, {b, mk(std::move(m1))})});
    }
    if (name == "binom" || name == "dbinom" || name == "tbinom") {
      NodeP a = parse_arg();
      NodeP b = parse_arg();
      return func("binomial", {a, b});
    }
    if (name == "sqrt") {
      NodeP index;
      if (is_sym("[")) {
        ++i_;
        index = parse_additive();
        expect_sym("]");
      }
      NodeP rad = parse_arg();
      if (!index) {
        Node two;
        two.kind = Kind::kNum;
        two.q = 2;
        index = mk(std::move(two));
      }
      return func("root", {rad, index});
    }
    if (name == "boxed" || name == "fbox" || name == "overline" || name == "mathbb" || name == "vec" ||
        name == "hat" || name == "bar" || name == "underline") {
      return parse_arg();
    }
    if (name == "pi") return constant("pi");
    if (name == "infty" || name == "infin") return constant("oo");
    if (name == "eulere") return constant("E");
    if (name == "emptyset" || name == "varnothing") return mk_kids(Kind::kEmpty, {});
    if (name == "langle") {
      NodeP inner = parse_semis();
      if (!is_cmd("rangle")) throw ParseError("unclosed \\langle");
      ++i_;
      Node n;
      n.kind = Kind::kTuple;
      n.kids = inner->kind == Kind::kList ? inner->kids : std::vector<NodeP>{inner};
      return mk(std::move(n));
    }
    if (name == "lfloor" || name == "lceil") {
      NodeP inner = parse_additive();
      if (!(is_cmd("rfloor") || is_cmd("rceil"))) throw ParseError("unclosed floor/ceil");
      ++i_;
      return func(name == "lfloor" ? "floor" : "ceil", {inner});
    }
    if (name == "sum" || name == "prod") {
      // \sum_{k=a}^{b} body
      NodeP var, lo, hi;
      if (is_sym("_")) {
        ++i_;
        NodeP sub = parse_arg();
        if (sub->kind == Kind::kRel && sub->kids.size() == 2 && sub->ops[0] == kEq) {
          var = sub->kids[0];
          lo = sub->kids[1];
        } else {
          var = sub;
        }
      }
      if (is_sym("^")) {
        ++i_;
        hi = parse_exponent();
      }
      NodeP body = parse_mul();
      std::vector<NodeP> args{body};
      for (auto& x : {var, lo, hi})
        if (x) args.push_back(x);
      return func(name, std::move(args));
    }
    if (is_function_name(name)) {
      NodeP power, base;
      if (name == "log" && is_sym("_")) {
        ++i_;
        base = parse_arg();
      }
      if (is_sym("^")) {
        ++i_;
        power = parse_exponent();
      }
      NodeP arg;
      if (is_sym("(")) {
        ++i_;
        arg = parse_bracketed("(");
      } else {
        // \sin 2x is sin(2x); the argument is a product up to the next function or operator
        std::vector<NodeP> f{parse_postfix()};
        while (starts_primary() && !is_sym("[") && !is_sym("(") &&
               !(peek().type == Tok::kCmd && (is_function_name(peek().text) || peek().text == "sum")))
          f.push_back(parse_postfix());
        arg = f.size() == 1 ? f[0] : mk_kids(Kind::kMul, std::move(f));
      }
      std::vector<NodeP> args{arg};
      if (arg->kind == Kind::kTuple) args = arg->kids;
      if (base) args.push_back(base);
      NodeP f = func(name, std::move(args));
      if (power) {
        // \sin^{-1} is arcsin
        if (power->kind == Kind::kMul && power->kids.size() == 2 && power->kids[0]->kind == Kind::kNum &&
            power->kids[0]->q == -1 && power->kids[1]->kind == Kind::kNum && power->kids[1]->q == 1 &&
            (name == "sin" || name == "cos" || name == "tan"))
          return func("arc" + name, f->kids);
        return mk_kids(Kind::kPow, {f, power});
      }
      return f;
    }
    if (is_greek(name)) return symbol(name);
    // Unknown commands become symbols named after them (\zzz, \triangle): they compare by name.
    return symbol("\\" + name);
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  int nodes_ = 0;
  int abs_depth_ = 0;
};

}  // namespace

NodeP parse_answer(const std::string& text) {
  if (text.size() > Limits::kMaxAnswerBytes) throw ParseError("answer longer than the parse limit");
  std::string norm = normalize_answer_text(text);
  if (norm.empty()) throw ParseError("empty answer");
  Parser p(tokenize(norm));
  return p.parse_all();
}

}  // namespace r1kit::rewards::math
