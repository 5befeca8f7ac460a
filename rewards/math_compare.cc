// Equivalence of parsed answers. Order of checks: identical canonical form; collections (tuples,
// sets, intervals, matrices) element by element; relations; scalars exactly as rationals, then
// symbolically with GiNaC, then numerically at pseudo-random points with a relative tolerance.
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "rewards/math_ast.h"
#include "rewards/math_canonical.h"
#include "rewards/math_eval.h"

namespace r1kit::rewards::math {

namespace {

// ---------------------------------------------------------------- comparison

struct Cmp {
  const CompareOptions& o;
  bool exact = true;
  std::string how;

  void note(const char* h, bool is_exact) {
    if (how.empty()) how = h;
    if (!is_exact) exact = false;
  }

  // -------- scalars

  static const Node* bare_decimal(const Node& n, bool* negated) {
    if (n.kind == Kind::kNum && n.decimal) return &n;
    if (n.kind == Kind::kMul && n.kids.size() == 2 && n.kids[0]->kind == Kind::kNum && n.kids[0]->q == -1 &&
        n.kids[1]->kind == Kind::kNum && n.kids[1]->decimal) {
      *negated = true;
      return n.kids[1].get();
    }
    return nullptr;
  }

  // A decimal D written with `places` digits after the point stands for `v` when it is v correctly
  // rounded and carries enough precision (float_rounding places or significant digits).
  bool decimal_stands_for(const Node& d, bool negated, double v, std::optional<mpq_class> exact_v) {
    if (d.places < o.float_rounding && d.sig_digits < o.float_rounding) return false;
    mpq_class dv = negated ? mpq_class(-d.q) : d.q;
    mpz_class ten;
    mpz_ui_pow_ui(ten.get_mpz_t(), 10, static_cast<unsigned long>(d.places));
    mpq_class half_ulp(1, 2 * ten);
    if (exact_v) return abs(*exact_v - dv) <= half_ulp;
    double diff = std::fabs(v - dv.get_d());
    return diff <= half_ulp.get_d() + std::fabs(v) * 4e-16;
  }

  static bool any_percent(const Node& n) {
    if (n.percent) return true;
    for (auto& k : n.kids)
      if (any_percent(*k)) return true;
    return false;
  }

  static NodeP div100(const NodeP& n) {
    Node h;
    h.q = mpq_class(1, 100);
    return make_kids(Kind::kMul, {n, make_node(h)});
  }

  bool scalar_eq(const NodeP& g, const NodeP& p) {
    if (scalar_eq_once(*g, *p)) return true;
    // 28% matches 0.28 as well as 28
    if (any_percent(*g) && scalar_eq_once(*div100(g), *p)) return true;
    if (any_percent(*p) && scalar_eq_once(*g, *div100(p))) return true;
    return false;
  }

  static int infinity_sign(const Node& n) {
    if (n.kind == Kind::kConst && n.name == "oo") return 1;
    if (n.kind == Kind::kMul && n.kids.size() == 2 && n.kids[0]->kind == Kind::kNum && n.kids[1]->kind == Kind::kConst &&
        n.kids[1]->name == "oo")
      return n.kids[0]->q > 0 ? 1 : -1;
    return 0;
  }

  bool scalar_eq_once(const Node& g, const Node& p) {
    int gi = infinity_sign(g), pi = infinity_sign(p);
    if (gi || pi) return gi == pi;
    if (g.kind == Kind::kText || p.kind == Kind::kText) return text_eq(g, p);
    auto gq = rational_value(g);
    auto pq = rational_value(p);
    bool gneg = false, pneg = false;
    const Node* gd = bare_decimal(g, &gneg);
    const Node* pd = bare_decimal(p, &pneg);
    if (gq && pq) {
      if (*gq == *pq) {
        note("exact rational", true);
        return true;
      }
      if (pd && !gd && decimal_stands_for(*pd, pneg, gq->get_d(), gq)) {
        note("decimal rounding", true);
        return true;
      }
      if (gd && !pd && decimal_stands_for(*gd, gneg, pq->get_d(), pq)) {
        note("decimal rounding", true);
        return true;
      }
      return false;
    }
    std::set<std::string> gs, ps;
    collect_symbols(g, gs);
    collect_symbols(p, ps);
    NodeP pp;  // pred with a free symbol renamed (non-strict mode)
    const Node* pr = &p;
    if (gs != ps && !o.strict) {
      std::vector<std::string> go, po;
      std::set_difference(gs.begin(), gs.end(), ps.begin(), ps.end(), std::back_inserter(go));
      std::set_difference(ps.begin(), ps.end(), gs.begin(), gs.end(), std::back_inserter(po));
      if (go.size() != 1 || po.size() != 1) return false;
      pp = rename(p, po[0], go[0]);
      pr = pp.get();
      ps = gs;
    }
    gs.insert(ps.begin(), ps.end());  // evaluate over all variables: sin^2 x + cos^2 x = 1
    // Numeric screen at pseudo-random points (same point for both sides).
    bool numeric_ok = true, numeric_equal = true;
    for (int trial = 0; trial < 3 && numeric_ok; ++trial) {
      Point pt;
      unsigned h = 2166136261u + static_cast<unsigned>(trial) * 7919u;
      for (auto& s : gs) {
        for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
        pt[s] = std::complex<double>(0.35 + (h % 10007) / 10007.0 * 1.3, 0);
      }
      auto gv = numeric_value(g, pt);
      auto pv = numeric_value(*pr, pt);
      if (!gv || !pv) {
        numeric_ok = false;
        break;
      }
      double scale = std::max({std::abs(*gv), std::abs(*pv), 1e-300});
      double diff = std::abs(*gv - *pv);
      if (gs.empty() && (gd || pd)) {
        // a decimal against an irrational constant: rounding rule, not tolerance
        if (pd && !gd) return decimal_stands_for(*pd, pneg, gv->real(), std::nullopt) && gv->imag() == 0 && note_true("decimal rounding");
        if (gd && !pd) return decimal_stands_for(*gd, gneg, pv->real(), std::nullopt) && pv->imag() == 0 && note_true("decimal rounding");
      }
      if (diff > 1e-9 * scale && diff > 1e-12) numeric_equal = false;
      if (!numeric_equal) break;
    }
    if (numeric_ok && !numeric_equal) return false;
    if (ginac_zero_difference(g, *pr)) {
      note("symbolic (GiNaC)", true);
      return true;
    }
    if (numeric_ok && numeric_equal) {
      note("numeric (relative 1e-9 at 3 points)", false);
      return true;
    }
    return false;
  }

  bool note_true(const char* h) {
    note(h, true);
    return true;
  }

  static NodeP rename(const Node& n, const std::string& from, const std::string& to) {
    Node c = n;
    if (c.kind == Kind::kSym && c.name == from) c.name = to;
    for (auto& k : c.kids) k = rename(*k, from, to);
    return make_node(std::move(c));
  }

  // Letters of a product of single-letter symbols: o*d*d -> "odd".
  static bool letters(const Node& n, std::string& out) {
    if (n.kind == Kind::kSym) {
      for (char c : n.name) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return true;
    }
    if (n.kind == Kind::kText) {
      for (char c : n.name)
        if (c != ' ') out += c;
      return true;
    }
    if (n.kind == Kind::kMul) {
      for (auto& k : n.kids)
        if (!letters(*k, out)) return false;
      return true;
    }
    return false;
  }

  bool text_eq(const Node& g, const Node& p) {
    std::string a, b;
    if (!letters(g, a) || !letters(p, b)) return false;
    if (a == b) note("text", true);
    return a == b;
  }

  // -------- collections

  static bool is_collection(const Node& n) {
    return n.kind == Kind::kTuple || n.kind == Kind::kList || n.kind == Kind::kSet;
  }

  // eq() whose notes (how, exactness) are dropped when it fails: a failed branch of a set match
  // must not mark the final verdict inexact.
  bool try_eq(const NodeP& a, const NodeP& b) {
    bool saved_exact = exact;
    std::string saved_how = how;
    if (eq(a, b)) return true;
    exact = saved_exact;
    how = saved_how;
    return false;
  }

  bool ordered_eq(const std::vector<NodeP>& a, const std::vector<NodeP>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!eq(a[i], b[i])) return false;
    return true;
  }

  // Set semantics: each element of one side equals some element of the other.
  bool unordered_eq(const std::vector<NodeP>& a, const std::vector<NodeP>& b) {
    if (a.size() * b.size() > 4096) return false;
    std::vector<char> b_hit(b.size(), 0);
    for (auto& x : a) {
      bool found = false;
      for (size_t j = 0; j < b.size(); ++j)
        if (try_eq(x, b[j])) {
          found = true;
          b_hit[j] = 1;
          break;
        }
      if (!found) return false;
    }
    for (size_t j = 0; j < b.size(); ++j) {
      if (b_hit[j]) continue;
      bool found = false;
      for (auto& x : a)
        if (try_eq(x, b[j])) {
          found = true;
          break;
        }
      if (!found) return false;
    }
    return true;
  }

  // Interval pieces of a set-like answer; false when `n` is not one.
  struct Piece {
    NodeP lo, hi;
    bool lo_closed, hi_closed;
  };
  static bool pieces(const Node& n, std::vector<Piece>& out) {
    if (n.kind == Kind::kInterval) {
      out.push_back({n.kids[0], n.kids[1], n.lo_closed, n.hi_closed});
      return true;
    }
    if (n.kind == Kind::kTuple && n.maybe_interval) {
      out.push_back({n.kids[0], n.kids[1], false, false});
      return true;
    }
    if (n.kind == Kind::kUnion) {
      for (auto& k : n.kids)
        if (!pieces(*k, out)) return false;
      return true;
    }
    return false;
  }

  bool pieces_eq(const std::vector<Piece>& a, const std::vector<Piece>& b) {
    if (a.size() != b.size()) return false;
    std::vector<char> used(b.size(), 0);
    for (auto& x : a) {
      bool found = false;
      for (size_t j = 0; j < b.size() && !found; ++j) {
        if (used[j] || x.lo_closed != b[j].lo_closed || x.hi_closed != b[j].hi_closed) continue;
        if (try_eq(x.lo, b[j].lo) && try_eq(x.hi, b[j].hi)) used[j] = found = true;
      }
      if (!found) return false;
    }
    return true;
  }

  // "x > 5" -> (5, oo); "a <= x < b" -> [a, b); "1 <= |z| <= 3/2" -> [-3/2, -1] U [1, 3/2].
  static bool relation_as_set(const Node& r, std::vector<Piece>& out) {
    if (r.kind != Kind::kRel) return false;
    auto inf = [](int sign) {
      Node c;
      c.kind = Kind::kConst;
      c.name = "oo";
      if (sign > 0) return make_node(c);
      Node m1;
      m1.q = -1;
      return make_kids(Kind::kMul, {make_node(m1), make_node(c)});
    };
    auto is_less = [](RelOp o) { return o == kLt || o == kLe; };
    auto is_greater = [](RelOp o) { return o == kGt || o == kGe; };
    auto closed = [](RelOp o) { return o == kLe || o == kGe; };
    if (r.kids.size() == 2) {
      const NodeP& a = r.kids[0];
      const NodeP& b = r.kids[1];
      RelOp op = r.ops[0];
      bool a_var = !is_constant(*a), b_var = !is_constant(*b);
      if (a_var == b_var) return false;
      if (!a_var) {  // c op x  ->  x op' c
        op = op == kLt ? kGt : op == kLe ? kGe : op == kGt ? kLt : op == kGe ? kLe : op;
      }
      const NodeP& c = a_var ? b : a;
      if (is_less(op)) out.push_back({inf(-1), c, false, closed(op)});
      else if (is_greater(op)) out.push_back({c, inf(1), closed(op), false});
      else if (op == kNe) {
        out.push_back({inf(-1), c, false, false});
        out.push_back({c, inf(1), false, false});
      } else {
        return false;
      }
      return true;
    }
    if (r.kids.size() == 3) {
      RelOp o1 = r.ops[0], o2 = r.ops[1];
      NodeP lo = r.kids[0], hi = r.kids[2];
      bool lc = closed(o1), hc = closed(o2);
      if (is_greater(o1) && is_greater(o2)) {
        std::swap(lo, hi);
        std::swap(lc, hc);
      } else if (!(is_less(o1) && is_less(o2))) {
        return false;
      }
      if (!is_constant(*lo) || !is_constant(*hi)) return false;
      const Node& mid = *r.kids[1];
      if (mid.kind == Kind::kFunc && mid.name == "abs") {
        auto lov = rational_value(*lo);
        if (!lov || *lov < 0) return false;
        Node m1;
        m1.q = -1;
        NodeP nlo = make_kids(Kind::kMul, {make_node(m1), hi});
        NodeP nhi = make_kids(Kind::kMul, {make_node(m1), lo});
        out.push_back({nlo, nhi, hc, lc});
      }
      out.push_back({lo, hi, lc, hc});
      return true;
    }
    return false;
  }

  bool relation_eq(const Node& g, const Node& p) {
    if (g.ops.size() != p.ops.size()) return false;
    if (g.kids.size() == 2) {
      RelOp a = g.ops[0], b = p.ops[0];
      auto diff = [](const Node& r, bool flip) {
        Node m1;
        m1.q = -1;
        const NodeP& x = flip ? r.kids[1] : r.kids[0];
        const NodeP& y = flip ? r.kids[0] : r.kids[1];
        return make_kids(Kind::kAdd, {x, make_kids(Kind::kMul, {make_node(m1), y})});
      };
      if (a == kEq || a == kNe) {
        if (b != a) return false;
        if (eq(g.kids[0], p.kids[0]) && eq(g.kids[1], p.kids[1])) return true;
        int sign = 0;
        if (same_symbols(g, p) && ginac_constant_ratio(*diff(g, false), *diff(p, false), &sign))
          return note_true("equation up to a constant factor");
        return false;
      }
      // inequalities: write both as  d > 0  or  d >= 0
      auto norm = [&](const Node& r, RelOp op, bool& strict_out) {
        strict_out = op == kLt || op == kGt;
        return diff(r, op == kLt || op == kLe);
      };
      if (a == kApprox || b == kApprox || a == kIn || b == kIn) return false;
      bool sa, sb;
      NodeP da = norm(g, a, sa), db = norm(p, b, sb);
      if (sa != sb) return false;
      int sign = 0;
      if (same_symbols(g, p) && ginac_constant_ratio(*da, *db, &sign) && sign > 0)
        return note_true("inequality up to a positive factor");
      return false;
    }
    // chains: same operators, parts equal
    for (size_t i = 0; i < g.ops.size(); ++i)
      if (g.ops[i] != p.ops[i]) return false;
    return ordered_eq(g.kids, p.kids);
  }

  // "f(x) = x^2" and "f(t) = t^2" define the same function: the argument of a definition is a bound
  // variable, so renaming it is no change of answer (strict or not). Same function letter, and no
  // capture: the new name must not already occur in the old right-hand side, nor the old in the new.
  bool same_definition(const Node& g, const Node& p) {
    const Node& gl = *g.kids[0];
    const Node& pl = *p.kids[0];
    if (!gl.call || !pl.call || gl.kids[0]->name != pl.kids[0]->name) return false;
    const std::string& gv = gl.kids[1]->name;
    const std::string& pv = pl.kids[1]->name;
    if (gv == pv) return false;
    std::set<std::string> gs, ps;
    collect_symbols(*g.kids[1], gs);
    collect_symbols(*p.kids[1], ps);
    if (gs.count(pv) || ps.count(gv)) return false;
    return eq(rename(*g.kids[1], gv, pv), p.kids[1]) && note_true("same definition, argument renamed");
  }

  bool same_symbols(const Node& a, const Node& b) {
    std::set<std::string> x, y;
    collect_symbols(a, x);
    collect_symbols(b, y);
    return x == y || !o.strict;
  }

  // -------- dispatcher

  bool eq(const NodeP& g, const NodeP& p) {
    if (to_string(*g) == to_string(*p)) return note_true("identical");
    const Node& G = *g;
    const Node& P = *p;
    // relations with a name on the left compare by their value: "k = 1" vs "1"
    bool g_label_eq = G.kind == Kind::kRel && G.ops.size() == 1 && G.ops[0] == kEq && label_like(*G.kids[0]);
    bool p_label_eq = P.kind == Kind::kRel && P.ops.size() == 1 && P.ops[0] == kEq && label_like(*P.kids[0]);
    if (g_label_eq && P.kind != Kind::kRel) return eq(G.kids[1], p);
    if (p_label_eq && G.kind != Kind::kRel) return eq(g, P.kids[1]);
    if (g_label_eq && p_label_eq) {
      if (eq(G.kids[0], P.kids[0]) && eq(G.kids[1], P.kids[1])) return true;
      if (same_definition(G, P)) return true;
    }
    if (G.kind == Kind::kRel && P.kind == Kind::kRel) return relation_eq(G, P);
    // relation vs set (gold relation always; gold set only when allowed)
    std::vector<Piece> gp, pp;
    bool g_set = pieces(G, gp), p_set = pieces(P, pp);
    if (G.kind == Kind::kRel && p_set) {
      std::vector<Piece> rs;
      return relation_as_set(G, rs) && pieces_eq(rs, pp);
    }
    if (P.kind == Kind::kRel && g_set) {
      std::vector<Piece> rs;
      return o.allow_set_relation && relation_as_set(P, rs) && pieces_eq(gp, rs);
    }
    if (G.kind == Kind::kRel || P.kind == Kind::kRel) return false;
    if (g_set && p_set) {
      if (G.kind == Kind::kTuple && P.kind == Kind::kTuple) return ordered_eq(G.kids, P.kids);
      return pieces_eq(gp, pp);
    }
    if (G.kind == Kind::kEmpty || P.kind == Kind::kEmpty) return G.kind == P.kind;
    if (G.kind == Kind::kMatrix || P.kind == Kind::kMatrix) {
      if (G.kind != P.kind) {
        // a matrix written as a product or sum of matrices is compared by value (GiNaC-free here)
        NodeP gv = matrix_value(g), pv = matrix_value(p);
        if (!gv || !pv) return false;
        return eq(gv, pv);
      }
      return G.rows == P.rows && G.cols == P.cols && ordered_eq(G.kids, P.kids);
    }
    if (G.kind == Kind::kRatio || P.kind == Kind::kRatio)
      return G.kind == P.kind && ordered_eq(G.kids, P.kids);
    if (is_collection(G) || is_collection(P)) {
      // a set of one distinct value equals that value: {4, 4} = 4
      if (!is_collection(G)) return P.kind != Kind::kTuple && unordered_eq({g}, P.kids);
      if (!is_collection(P)) return G.kind != Kind::kTuple && unordered_eq(G.kids, {p});
      if (G.kind == Kind::kTuple && P.kind == Kind::kTuple) return ordered_eq(G.kids, P.kids);
      if ((G.kind == Kind::kTuple && P.kind == Kind::kList) || (G.kind == Kind::kList && P.kind == Kind::kTuple))
        return ordered_eq(G.kids, P.kids);
      return unordered_eq(G.kids, P.kids);
    }
    if (g_set || p_set) return false;
    return scalar_eq(g, p);
  }

  // Evaluates sums / products of explicit matrices (A + B, A B, 2A) into one matrix node.
  static NodeP matrix_value(const NodeP& n, int depth = 0) {
    if (depth > 50) return nullptr;
    if (n->kind == Kind::kMatrix) return n;
    if (n->kind == Kind::kAdd) {
      NodeP acc;
      for (auto& k : n->kids) {
        NodeP m = matrix_value(k, depth + 1);
        if (!m) return nullptr;
        if (!acc) {
          acc = m;
          continue;
        }
        if (acc->rows != m->rows || acc->cols != m->cols) return nullptr;
        Node s = *acc;
        for (size_t i = 0; i < s.kids.size(); ++i) s.kids[i] = make_kids(Kind::kAdd, {acc->kids[i], m->kids[i]});
        acc = make_node(std::move(s));
      }
      return acc;
    }
    if (n->kind == Kind::kMul) {
      NodeP acc;
      std::vector<NodeP> scalars;
      for (auto& k : n->kids) {
        if (k->kind != Kind::kMatrix && k->kind != Kind::kAdd && k->kind != Kind::kMul) {
          scalars.push_back(k);
          continue;
        }
        NodeP m = matrix_value(k, depth + 1);
        if (!m) return nullptr;
        if (!acc) {
          acc = m;
          continue;
        }
        if (acc->cols != m->rows) return nullptr;
        Node prod;
        prod.kind = Kind::kMatrix;
        prod.rows = acc->rows;
        prod.cols = m->cols;
        for (int r = 0; r < prod.rows; ++r)
          for (int c = 0; c < prod.cols; ++c) {
            std::vector<NodeP> terms;
            for (int k2 = 0; k2 < acc->cols; ++k2)
              terms.push_back(make_kids(Kind::kMul, {acc->kids[r * acc->cols + k2], m->kids[k2 * m->cols + c]}));
            prod.kids.push_back(make_kids(Kind::kAdd, terms));
          }
        acc = make_node(std::move(prod));
      }
      if (!acc) return nullptr;
      if (scalars.empty()) return acc;
      Node s = *acc;
      for (auto& e : s.kids) {
        std::vector<NodeP> f = scalars;
        f.push_back(e);
        e = make_kids(Kind::kMul, f);
      }
      return make_node(std::move(s));
    }
    return nullptr;
  }
};

}  // namespace

CompareResult compare(const NodeP& gold, const NodeP& pred, const CompareOptions& options) {
  Cmp c{options, true, std::string()};
  NodeP g = canonical(gold);
  NodeP p = canonical(pred);
  CompareResult r;
  r.equal = c.eq(g, p);
  r.exact = c.exact;
  r.how = r.equal ? c.how : "not equivalent";
  return r;
}

}  // namespace r1kit::rewards::math
