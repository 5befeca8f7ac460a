// Printing (canonical text: commutative operands sorted) and canonical forms of parsed answers.
#include "rewards/math_canonical.h"

#include <algorithm>
#include <functional>
#include <set>

#include "rewards/math_eval.h"

namespace r1kit::rewards::math {

// ---------------------------------------------------------------- printing

namespace {

const char* op_str(RelOp op) {
  switch (op) {
    case kEq: return "=";
    case kLt: return "<";
    case kLe: return "<=";
    case kGt: return ">";
    case kGe: return ">=";
    case kNe: return "!=";
    case kApprox: return "~=";
    case kIn: return " in ";
  }
  return "?";
}

std::string join(const std::vector<NodeP>& kids, const char* sep, bool sorted) {
  std::vector<std::string> parts;
  for (auto& k : kids) parts.push_back(to_string(*k));
  if (sorted) std::sort(parts.begin(), parts.end());
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

}  // namespace

// Canonical text: commutative operands sorted, so a*b and b*a print alike.
std::string to_string(const Node& n) {
  std::string s;
  switch (n.kind) {
    case Kind::kNum: s = n.q.get_str(); break;
    case Kind::kSym: s = n.name; break;
    case Kind::kConst: s = n.name; break;
    case Kind::kAdd: {
      s = join(n.kids, " + ", true);
      for (size_t p = s.find(" + -"); p != std::string::npos; p = s.find(" + -", p)) s.replace(p, 4, " - ");
      s = "(" + s + ")";
      break;
    }
    case Kind::kMul: {
      // -1 factors become a sign, x^-1 factors a denominator: (-1*a*b^-1) prints as -a/b
      std::vector<NodeP> num, den;
      bool neg = false;
      for (auto& k : n.kids) {
        if (k->kind == Kind::kNum && k->q == -1 && !k->percent) neg = !neg;
        else if (k->kind == Kind::kPow && k->kids[1]->kind == Kind::kNum && k->kids[1]->q == -1) den.push_back(k->kids[0]);
        else num.push_back(k);
      }
      s = num.empty() ? "1" : join(num, "*", true);
      if (!den.empty()) s += "/" + (den.size() == 1 && den[0]->kind != Kind::kMul ? to_string(*den[0]) : "(" + join(den, "*", true) + ")");
      if (neg) s = "-" + s;
      if (num.size() + den.size() > 1) s = "(" + s + ")";
      break;
    }
    case Kind::kPow: s = to_string(*n.kids[0]) + "^" + to_string(*n.kids[1]); break;
    case Kind::kFunc: s = n.name + "(" + join(n.kids, ", ", false) + ")"; break;
    case Kind::kPlusMinus: s = "(" + to_string(*n.kids[0]) + " +- " + to_string(*n.kids[1]) + ")"; break;
    case Kind::kTuple: s = "(" + join(n.kids, ", ", false) + ")"; break;
    case Kind::kList: s = join(n.kids, ", ", false); break;
    case Kind::kSet: s = "{" + join(n.kids, ", ", true) + "}"; break;
    case Kind::kInterval:
      s = std::string(n.lo_closed ? "[" : "(") + to_string(*n.kids[0]) + ", " + to_string(*n.kids[1]) +
          (n.hi_closed ? "]" : ")");
      break;
    case Kind::kUnion: s = join(n.kids, " U ", true); break;
    case Kind::kMatrix: {
      s = "Matrix[";
      for (int r = 0; r < n.rows; ++r) {
        s += r ? "; " : "";
        for (int c = 0; c < n.cols; ++c) s += (c ? ", " : "") + to_string(*n.kids[r * n.cols + c]);
      }
      s += "]";
      break;
    }
    case Kind::kRel:
      for (size_t i = 0; i < n.kids.size(); ++i) {
        if (i) s += std::string(" ") + op_str(n.ops[i - 1]) + " ";
        s += to_string(*n.kids[i]);
      }
      break;
    case Kind::kRatio: s = join(n.kids, ":", false); break;
    case Kind::kText: s = "\"" + n.name + "\""; break;
    case Kind::kEmpty: s = "EmptySet"; break;
  }
  if (n.percent) s += "%";
  return s;
}

namespace {

bool has_number(const Node& n) {
  if (n.kind == Kind::kNum) return !(n.q == -1);  // the -1 of a division or negation does not count
  for (auto& k : n.kids)
    if (has_number(*k)) return true;
  return false;
}

NodeP make_rel(NodeP a, RelOp op, NodeP b) {
  Node n;
  n.kind = Kind::kRel;
  n.kids = {std::move(a), std::move(b)};
  n.ops = {op};
  return make_node(std::move(n));
}

}  // namespace

// A "name" on the left of "=": x, a_1, f(x), |AB|, A:B, NO/BO, (p,q). Not 2x+z or 7.
bool label_like(const Node& n) {
  switch (n.kind) {
    case Kind::kSym: return true;
    case Kind::kMul:
    case Kind::kRatio:
    case Kind::kTuple:
      for (auto& k : n.kids)
        if (!(label_like(*k) || (k->kind == Kind::kNum && k->q == -1))) return false;
      return true;
    case Kind::kPow:
      return label_like(*n.kids[0]) && n.kids[1]->kind == Kind::kNum;
    case Kind::kFunc:
      for (auto& k : n.kids)
        if (has_number(*k) && !label_like(*k)) return false;
      return true;
    default:
      return false;
  }
}

bool is_constant(const Node& n) {
  std::set<std::string> s;
  collect_symbols(n, s);
  return s.empty() && n.kind != Kind::kText;
}

NodeP make_kids(Kind k, std::vector<NodeP> kids) {
  Node n;
  n.kind = k;
  n.kids = std::move(kids);
  return make_node(std::move(n));
}

namespace {

// x = 5+5+1 = 7 = 11 -> x = 11 (the last stated value); 1/2 = 10/9 -> 10/9; x \in S -> S.
NodeP simplify_relation(const NodeP& r) {
  const auto& parts = r->kids;
  const auto& ops = r->ops;
  bool only_eq = std::all_of(ops.begin(), ops.end(), [](RelOp o) { return o == kEq || o == kApprox; });
  if (ops.size() == 1 && ops[0] == kIn) return label_like(*parts[0]) ? parts[1] : r;
  if (!only_eq) return r;
  // the value: the last part after "=", or the last part when only "≈" was used
  NodeP value;
  for (size_t i = ops.size(); i-- > 0;)
    if (ops[i] == kEq) {
      value = parts[i + 1];
      break;
    }
  bool first_is_label = label_like(*parts[0]);
  if (!value) return first_is_label ? parts.back() : parts[0];
  if (first_is_label) {
    if (parts.size() == 2) return r;
    return make_rel(parts[0], kEq, value);
  }
  if (parts.size() > 2) return value;
  if (is_constant(*parts[0]) && is_constant(*value)) return value;  // "1/2 = 10/9": the stated result
  return r;                                   // a genuine equation: 34x + 45y = 20
}

// Expands ± into the two values (at most 3 signs per expression).
void expand_pm(const NodeP& n, std::vector<NodeP>& out, int budget = 3) {
  std::function<std::vector<NodeP>(const NodeP&)> rec = [&](const NodeP& x) -> std::vector<NodeP> {
    if (x->kind == Kind::kPlusMinus && budget-- > 0) {
      std::vector<NodeP> res;
      for (auto& a : rec(x->kids[0]))
        for (auto& b : rec(x->kids[1])) {
          Node m1;
          m1.q = -1;
          res.push_back(make_kids(Kind::kAdd, {a, b}));
          res.push_back(make_kids(Kind::kAdd, {a, make_kids(Kind::kMul, {make_node(m1), b})}));
        }
      return res;
    }
    if (x->kind == Kind::kList || x->kind == Kind::kSet || x->kind == Kind::kTuple || x->kind == Kind::kInterval ||
        x->kind == Kind::kMatrix)
      return {x};
    std::vector<std::vector<NodeP>> kid_vars;
    bool any = false;
    for (auto& k : x->kids) {
      kid_vars.push_back(rec(k));
      if (kid_vars.back().size() > 1) any = true;
    }
    if (!any) return {x};
    std::vector<NodeP> res{x};
    for (size_t i = 0; i < kid_vars.size(); ++i) {
      if (kid_vars[i].size() == 1) continue;
      std::vector<NodeP> next;
      for (auto& base : res)
        for (auto& v : kid_vars[i]) {
          Node copy = *base;
          copy.kids[i] = v;
          next.push_back(make_node(std::move(copy)));
        }
      res.swap(next);
    }
    return res;
  };
  auto v = rec(n);
  out.insert(out.end(), v.begin(), v.end());
}

}  // namespace

// Normalises a parsed answer for comparison: relations simplified, ± expanded into lists,
// nested lists flattened, one-element lists unwrapped.
NodeP canonical(const NodeP& n, int depth) {
  if (depth > Limits::kMaxDepth) return n;
  if (n->kind == Kind::kRel) {
    NodeP s = simplify_relation(n);
    if (s != n) return canonical(s, depth + 1);
    Node copy = *n;
    for (auto& k : copy.kids) k = canonical(k, depth + 1);
    return make_node(std::move(copy));
  }
  if (n->kind == Kind::kList || n->kind == Kind::kSet) {
    std::vector<NodeP> items;
    for (auto& k : n->kids) {
      NodeP c = canonical(k, depth + 1);
      if (c->kind == Kind::kList && n->kind == Kind::kList) {
        // "p=5,q=2; p=7,q=2": an inner list is one answer (a tuple)
        Node t = *c;
        t.kind = Kind::kTuple;
        items.push_back(make_node(std::move(t)));
      } else if (c->kind == Kind::kList) {
        items.insert(items.end(), c->kids.begin(), c->kids.end());
      } else {
        items.push_back(c);
      }
    }
    if (n->kind == Kind::kList && items.size() == 1) return items[0];
    Node copy = *n;
    copy.kids = items;
    return make_node(std::move(copy));
  }
  if (n->kind == Kind::kTuple || n->kind == Kind::kInterval || n->kind == Kind::kMatrix || n->kind == Kind::kUnion ||
      n->kind == Kind::kRatio) {
    Node copy = *n;
    for (auto& k : copy.kids) k = canonical(k, depth + 1);
    return make_node(std::move(copy));
  }
  std::vector<NodeP> vars;
  expand_pm(n, vars);
  if (vars.size() > 1) return make_kids(Kind::kList, vars);
  return n;
}

}  // namespace r1kit::rewards::math
