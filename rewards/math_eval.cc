// Exact (GMP), numeric (complex double) and symbolic (GiNaC) evaluation of parsed answers.
#include <ginac/ginac.h>

#include <cmath>
#include <mutex>

#include "rewards/math_eval.h"

namespace r1kit::rewards::math {

namespace {

long bit_size(const mpz_class& z) { return static_cast<long>(mpz_sizeinbase(z.get_mpz_t(), 2)); }

std::optional<mpz_class> small_int(const mpq_class& q, long max_abs) {
  if (q.get_den() != 1) return std::nullopt;
  if (abs(q.get_num()) > max_abs) return std::nullopt;
  return q.get_num();
}

// Exact integer k-th root, when there is one.
std::optional<mpz_class> exact_root(const mpz_class& v, unsigned long k) {
  if (v < 0) return std::nullopt;
  mpz_class r;
  if (mpz_root(r.get_mpz_t(), v.get_mpz_t(), k) == 0) return std::nullopt;
  return r;
}

std::optional<mpq_class> rational_rec(const Node& n, int depth) {
  if (depth > Limits::kMaxDepth) return std::nullopt;
  switch (n.kind) {
    case Kind::kNum:
      return n.q;
    case Kind::kAdd: {
      mpq_class s = 0;
      for (auto& k : n.kids) {
        auto v = rational_rec(*k, depth + 1);
        if (!v) return std::nullopt;
        s += *v;
      }
      return s;
    }
    case Kind::kMul: {
      mpq_class s = 1;
      for (auto& k : n.kids) {
        auto v = rational_rec(*k, depth + 1);
        if (!v) return std::nullopt;
        s *= *v;
        if (bit_size(s.get_num()) + bit_size(s.get_den()) > Limits::kMaxExactBits) return std::nullopt;
      }
      return s;
    }
    case Kind::kPow: {
      auto b = rational_rec(*n.kids[0], depth + 1);
      if (!b) return std::nullopt;
      auto e = rational_rec(*n.kids[1], depth + 1);
      if (!e) return std::nullopt;
      if (e->get_den() != 1) {
        // b^(p/q): exact only for perfect q-th powers
        if (abs(e->get_den()) > 64 || abs(e->get_num()) > 4096) return std::nullopt;
        unsigned long q = e->get_den().get_ui();
        auto rn = exact_root(b->get_num(), q);
        auto rd = exact_root(b->get_den(), q);
        if (!rn || !rd) return std::nullopt;
        mpq_class root(*rn, *rd);
        mpq_class whole = mpq_class(e->get_num(), 1);
        Node base;
        base.q = root;
        Node ex;
        ex.q = whole;
        Node p;
        p.kind = Kind::kPow;
        p.kids = {make_node(base), make_node(ex)};
        return rational_rec(p, depth + 1);
      }
      const mpz_class& ez = e->get_num();
      if (*b == 0) {
        if (ez < 0) return std::nullopt;
        return mpq_class(ez == 0 ? 1 : 0);
      }
      if (*b == 1) return mpq_class(1);
      if (*b == -1) return mpq_class(mpz_odd_p(ez.get_mpz_t()) ? -1 : 1);
      long bits = bit_size(b->get_num()) + bit_size(b->get_den());
      mpz_class aez = abs(ez);
      if (aez > Limits::kMaxExactBits || bits * aez.get_si() > Limits::kMaxExactBits) return std::nullopt;
      unsigned long k = aez.get_ui();
      mpz_class num, den;
      mpz_pow_ui(num.get_mpz_t(), b->get_num().get_mpz_t(), k);
      mpz_pow_ui(den.get_mpz_t(), b->get_den().get_mpz_t(), k);
      mpq_class r(num, den);
      r.canonicalize();
      if (ez < 0) r = 1 / r;
      return r;
    }
    case Kind::kFunc: {
      if (n.name == "root" && n.kids.size() == 2) {
        auto x = rational_rec(*n.kids[0], depth + 1);
        auto k = rational_rec(*n.kids[1], depth + 1);
        if (!x || !k) return std::nullopt;
        auto ki = small_int(*k, 64);
        if (!ki || *ki < 1) return std::nullopt;
        unsigned long kk = ki->get_ui();
        bool neg = *x < 0;
        if (neg && kk % 2 == 0) return std::nullopt;
        mpq_class ax = neg ? mpq_class(-*x) : *x;
        auto rn = exact_root(ax.get_num(), kk);
        auto rd = exact_root(ax.get_den(), kk);
        if (!rn || !rd) return std::nullopt;
        mpq_class r(*rn, *rd);
        return neg ? mpq_class(-r) : r;
      }
      if (n.name == "abs" && n.kids.size() == 1) {
        auto x = rational_rec(*n.kids[0], depth + 1);
        if (!x) return std::nullopt;
        return abs(*x);
      }
      if (n.name == "factorial" && n.kids.size() == 1) {
        auto x = rational_rec(*n.kids[0], depth + 1);
        if (!x) return std::nullopt;
        auto xi = small_int(*x, 2000);
        if (!xi || *xi < 0) return std::nullopt;
        mpz_class f;
        mpz_fac_ui(f.get_mpz_t(), xi->get_ui());
        return mpq_class(f);
      }
      if (n.name == "binomial" && n.kids.size() == 2) {
        auto a = rational_rec(*n.kids[0], depth + 1);
        auto b = rational_rec(*n.kids[1], depth + 1);
        if (!a || !b) return std::nullopt;
        auto ai = small_int(*a, 100000), bi = small_int(*b, 100000);
        if (!ai || !bi || *ai < 0 || *bi < 0) return std::nullopt;
        mpz_class r;
        mpz_bin_uiui(r.get_mpz_t(), ai->get_ui(), bi->get_ui());
        return mpq_class(r);
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

using C = std::complex<double>;

std::optional<C> num_rec(const Node& n, const Point& pt, int depth) {
  if (depth > Limits::kMaxDepth) return std::nullopt;
  switch (n.kind) {
    case Kind::kNum:
      return C(n.q.get_d(), 0);
    case Kind::kSym: {
      auto it = pt.find(n.name);
      if (it == pt.end()) return std::nullopt;
      return it->second;
    }
    case Kind::kConst:
      if (n.name == "pi") return C(M_PI, 0);
      if (n.name == "E") return C(std::exp(1.0), 0);
      if (n.name == "I") return C(0, 1);
      return std::nullopt;
    case Kind::kAdd: {
      C s = 0;
      for (auto& k : n.kids) {
        auto v = num_rec(*k, pt, depth + 1);
        if (!v) return std::nullopt;
        s += *v;
      }
      return s;
    }
    case Kind::kMul: {
      C s = 1;
      for (auto& k : n.kids) {
        auto v = num_rec(*k, pt, depth + 1);
        if (!v) return std::nullopt;
        s *= *v;
      }
      return s;
    }
    case Kind::kPow: {
      auto b = num_rec(*n.kids[0], pt, depth + 1);
      auto e = num_rec(*n.kids[1], pt, depth + 1);
      if (!b || !e) return std::nullopt;
      if (e->imag() == 0 && b->imag() == 0) {
        double ev = e->real(), bv = b->real();
        if (ev == std::round(ev) && std::fabs(ev) < 1e6) return C(std::pow(bv, ev), 0);
        if (bv > 0) return C(std::pow(bv, ev), 0);
        // real odd roots of negatives: (-8)^(1/3) = -2, as in LaTeX answers
        double inv = 1.0 / ev;
        if (std::fabs(inv - std::round(inv)) < 1e-9 && static_cast<long long>(std::round(inv)) % 2 != 0)
          return C(-std::pow(-bv, ev), 0);
      }
      return std::pow(*b, *e);
    }
    case Kind::kFunc: {
      std::vector<C> a;
      for (auto& k : n.kids) {
        auto v = num_rec(*k, pt, depth + 1);
        if (!v) return std::nullopt;
        a.push_back(*v);
      }
      const std::string& f = n.name;
      auto one = [&](int need) { return static_cast<int>(a.size()) == need; };
      if (f == "root" && one(2)) {
        if (a[0].imag() == 0 && a[1].imag() == 0) {
          double x = a[0].real(), k = a[1].real();
          if (x >= 0) return C(std::pow(x, 1.0 / k), 0);
          if (std::fmod(std::round(k), 2.0) != 0) return C(-std::pow(-x, 1.0 / k), 0);
        }
        return std::pow(a[0], 1.0 / a[1]);
      }
      if (f == "sin" && one(1)) return std::sin(a[0]);
      if (f == "cos" && one(1)) return std::cos(a[0]);
      if (f == "tan" && one(1)) return std::tan(a[0]);
      if (f == "sec" && one(1)) return 1.0 / std::cos(a[0]);
      if (f == "csc" && one(1)) return 1.0 / std::sin(a[0]);
      if (f == "cot" && one(1)) return std::cos(a[0]) / std::sin(a[0]);
      if (f == "arcsin" && one(1)) return std::asin(a[0]);
      if (f == "arccos" && one(1)) return std::acos(a[0]);
      if (f == "arctan" && one(1)) return std::atan(a[0]);
      if (f == "sinh" && one(1)) return std::sinh(a[0]);
      if (f == "cosh" && one(1)) return std::cosh(a[0]);
      if (f == "tanh" && one(1)) return std::tanh(a[0]);
      if (f == "exp" && one(1)) return std::exp(a[0]);
      if ((f == "ln") && one(1)) return std::log(a[0]);
      if (f == "log" && one(1)) return std::log(a[0]);  // natural log, as sympy reads \log
      if (f == "log" && one(2)) return std::log(a[0]) / std::log(a[1]);
      if (f == "lg" && one(1)) return std::log10(a[0]);
      if (f == "abs" && one(1)) return C(std::abs(a[0]), 0);
      if (f == "factorial" && one(1) && a[0].imag() == 0 && a[0].real() >= 0 && a[0].real() < 170)
        return C(std::tgamma(a[0].real() + 1), 0);
      if (f == "binomial" && one(2) && a[0].imag() == 0 && a[1].imag() == 0) {
        double x = a[0].real(), y = a[1].real();
        if (x < 170 && y >= 0 && x - y >= 0) return C(std::tgamma(x + 1) / (std::tgamma(y + 1) * std::tgamma(x - y + 1)), 0);
      }
      if (f == "floor" && one(1) && a[0].imag() == 0) return C(std::floor(a[0].real()), 0);
      if (f == "ceil" && one(1) && a[0].imag() == 0) return C(std::ceil(a[0].real()), 0);
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// ---- GiNaC ----

std::mutex& ginac_mutex() {
  static std::mutex mu;
  return mu;
}

struct GinacBuilder {
  std::map<std::string, GiNaC::symbol> syms;
  int depth = 0;

  GiNaC::ex num(const mpq_class& q) {
    std::string s = q.get_str();
    // GiNaC numerics from strings of integers / fractions are exact.
    return GiNaC::numeric(s.c_str());
  }

  GiNaC::ex build(const Node& n) {
    if (++depth > Limits::kMaxDepth) throw std::runtime_error("too deep");
    GiNaC::ex r = build_inner(n);
    --depth;
    return r;
  }

  GiNaC::ex build_inner(const Node& n) {
    switch (n.kind) {
      case Kind::kNum:
        return num(n.q);
      case Kind::kSym: {
        auto it = syms.find(n.name);
        if (it == syms.end()) it = syms.emplace(n.name, GiNaC::symbol(n.name)).first;
        return it->second;
      }
      case Kind::kConst:
        if (n.name == "pi") return GiNaC::Pi;
        if (n.name == "E") return GiNaC::exp(GiNaC::ex(1));
        if (n.name == "I") return GiNaC::I;
        throw std::runtime_error("infinity");
      case Kind::kAdd: {
        GiNaC::ex s = 0;
        for (auto& k : n.kids) s += build(*k);
        return s;
      }
      case Kind::kMul: {
        GiNaC::ex s = 1;
        for (auto& k : n.kids) s *= build(*k);
        return s;
      }
      case Kind::kPow: {
        GiNaC::ex b = build(*n.kids[0]);
        GiNaC::ex e = build(*n.kids[1]);
        guard_pow(b, e);
        return power(b, e);
      }
      case Kind::kFunc: {
        std::vector<GiNaC::ex> a;
        for (auto& k : n.kids) a.push_back(build(*k));
        const std::string& f = n.name;
        if (f == "root" && a.size() == 2) {
          guard_pow(a[0], 1 / a[1]);
          return power(a[0], 1 / a[1]);
        }
        if (a.size() == 1) {
          if (f == "sin") return GiNaC::sin(a[0]);
          if (f == "cos") return GiNaC::cos(a[0]);
          if (f == "tan") return GiNaC::tan(a[0]);
          if (f == "sec") return 1 / GiNaC::cos(a[0]);
          if (f == "csc") return 1 / GiNaC::sin(a[0]);
          if (f == "cot") return GiNaC::cos(a[0]) / GiNaC::sin(a[0]);
          if (f == "arcsin") return GiNaC::asin(a[0]);
          if (f == "arccos") return GiNaC::acos(a[0]);
          if (f == "arctan") return GiNaC::atan(a[0]);
          if (f == "sinh") return GiNaC::sinh(a[0]);
          if (f == "cosh") return GiNaC::cosh(a[0]);
          if (f == "tanh") return GiNaC::tanh(a[0]);
          if (f == "exp") return GiNaC::exp(a[0]);
          if (f == "ln" || f == "log") return GiNaC::log(a[0]);
          if (f == "abs") return GiNaC::abs(a[0]);
          if (f == "factorial" && GiNaC::is_a<GiNaC::numeric>(a[0]) &&
              GiNaC::ex_to<GiNaC::numeric>(a[0]).is_nonneg_integer() &&
              GiNaC::ex_to<GiNaC::numeric>(a[0]).to_long() <= 2000)
            return GiNaC::factorial(a[0]);
        }
        if (f == "log" && a.size() == 2) return GiNaC::log(a[0]) / GiNaC::log(a[1]);
        if (f == "binomial" && a.size() == 2) return GiNaC::binomial(a[0], a[1]);
        throw std::runtime_error("function without a GiNaC form");
      }
      default:
        throw std::runtime_error("not a scalar");
    }
  }

  // b^e in a canonical form when b is a rational number and e = p/q a small fraction:
  // (n/d)^(p/q) = (n/d)^m * a^s * c^(s/q) / d^s with 0 <= s < q and c free of q-th powers, so
  // that \sqrt{8} and 2\sqrt{2}, or \sqrt{21/2} and \sqrt{42}/2, become the same GiNaC expression.
  static GiNaC::ex power(const GiNaC::ex& b, const GiNaC::ex& e) {
    // GiNaC throws from inside pow() on 0^-1 and 0^0 and leaks the half-built object: refuse first
    if (b.is_zero() && GiNaC::is_a<GiNaC::numeric>(e) && !GiNaC::ex_to<GiNaC::numeric>(e).is_positive())
      throw std::runtime_error("division by zero");
    if (!GiNaC::is_a<GiNaC::numeric>(b) || !GiNaC::is_a<GiNaC::numeric>(e)) return GiNaC::pow(b, e);
    const GiNaC::numeric& bn = GiNaC::ex_to<GiNaC::numeric>(b);
    const GiNaC::numeric& en = GiNaC::ex_to<GiNaC::numeric>(e);
    if (!bn.is_rational() || !en.is_rational() || en.is_integer() || bn.is_zero()) return GiNaC::pow(b, e);
    GiNaC::numeric q = en.denom(), p = en.numer();
    if (q > 12 || GiNaC::abs(p) > 1000) return GiNaC::pow(b, e);
    long qi = q.to_long();
    GiNaC::numeric n = bn.numer(), d = bn.denom();
    int sign = 1;
    if (n.is_negative()) {
      if (qi % 2 == 0) return GiNaC::pow(b, e);
      sign = -1;  // real odd root: (-8)^(1/3) = -2
      n = -n;
    }
    GiNaC::numeric big = GiNaC::pow(d, q - 1) * n;  // (n/d)^(1/q) = (n d^(q-1))^(1/q) / d
    if (big > GiNaC::numeric("1000000000000000000")) return GiNaC::pow(b, e);
    unsigned long long N = static_cast<unsigned long long>(big.to_long());
    unsigned long long outside = 1;
    for (unsigned long long f = 2; f <= 100000; ++f) {
      unsigned long long fq = 1;
      bool overflow = false;
      for (long k = 0; k < qi; ++k) {
        if (fq > N / f) {
          overflow = true;
          break;
        }
        fq *= f;
      }
      if (overflow || fq > N) break;
      while (N % fq == 0) {
        N /= fq;
        outside *= f;
      }
    }
    // (n/d)^(1/q) = outside * N^(1/q) / d ; raise to p = m q + s
    GiNaC::numeric m = GiNaC::iquo(p, q);
    GiNaC::numeric srem = p - m * q;
    if (srem.is_negative()) {
      srem += q;
      m -= 1;
    }
    GiNaC::ex root_part = GiNaC::numeric(static_cast<long>(outside)) / d;
    GiNaC::ex result = GiNaC::pow(bn, m) * GiNaC::pow(root_part, srem);
    if (N != 1) result *= GiNaC::pow(GiNaC::numeric(static_cast<long>(N)), srem / q);
    if (sign < 0 && p.is_odd()) result = -result;
    return result;
  }

  // Refuses powers GiNaC would evaluate into huge numbers or expand into huge polynomials.
  static void guard_pow(const GiNaC::ex& b, const GiNaC::ex& e) {
    if (!GiNaC::is_a<GiNaC::numeric>(e)) return;
    const GiNaC::numeric& en = GiNaC::ex_to<GiNaC::numeric>(e);
    if (!en.is_rational()) return;
    GiNaC::numeric num = en.numer();
    if (GiNaC::abs(num) > 4096) throw std::runtime_error("exponent too large");
    if (GiNaC::is_a<GiNaC::numeric>(b)) {
      const GiNaC::numeric& bn = GiNaC::ex_to<GiNaC::numeric>(b);
      if (bn.is_rational()) {
        double bits = std::log2(std::fabs(bn.numer().to_double()) + 2) + std::log2(std::fabs(bn.denom().to_double()) + 2);
        if (bits * std::fabs(num.to_double()) > Limits::kMaxExactBits) throw std::runtime_error("power too large");
      }
    } else if (GiNaC::abs(num) > 64) {
      throw std::runtime_error("symbolic power too large to expand");
    }
  }
};

// Rough upper bound on the number of terms GiNaC's expand() would produce; products of sums and
// powers of sums grow combinatorially ((a+b+c+d+e+f)^64 has ~10^7 terms).
double expanded_terms(const Node& n, int depth = 0) {
  if (depth > Limits::kMaxDepth) return 1e18;
  switch (n.kind) {
    case Kind::kAdd: {
      double t = 0;
      for (auto& k : n.kids) t += expanded_terms(*k, depth + 1);
      return t;
    }
    case Kind::kMul: {
      double t = 1;
      for (auto& k : n.kids) t *= expanded_terms(*k, depth + 1);
      return t;
    }
    case Kind::kPow: {
      double base = expanded_terms(*n.kids[0], depth + 1);
      auto e = rational_rec(*n.kids[1], depth + 1);
      if (!e || e->get_den() != 1 || base <= 1) return base;
      double k = std::fabs(e->get_d());
      // C(k + base - 1, base - 1) <= base^k
      double c = 1;
      for (double i = 1; i < base && c < 1e18; ++i) c *= (k + i) / i;
      return std::min(c, std::pow(base, k));
    }
    default:
      return 1;
  }
}

constexpr double kMaxExpandedTerms = 20000;

bool is_zero_ex(const GiNaC::ex& d) {
  if (d.is_zero()) return true;
  GiNaC::ex e = d.expand();
  if (e.is_zero()) return true;
  return GiNaC::normal(e).is_zero();
}

}  // namespace

std::optional<mpq_class> rational_value(const Node& n) { return rational_rec(n, 0); }

void collect_symbols(const Node& n, std::set<std::string>& out) {
  if (n.kind == Kind::kSym) out.insert(n.name);
  for (auto& k : n.kids) collect_symbols(*k, out);
}

std::optional<std::complex<double>> numeric_value(const Node& n, const Point& point) {
  auto v = num_rec(n, point, 0);
  if (!v || !std::isfinite(v->real()) || !std::isfinite(v->imag())) return std::nullopt;
  return v;
}

bool ginac_zero_difference(const Node& gold, const Node& pred) {
  if (expanded_terms(gold) + expanded_terms(pred) > kMaxExpandedTerms) return false;
  std::lock_guard<std::mutex> lock(ginac_mutex());
  try {
    GinacBuilder b;
    GiNaC::ex g = b.build(gold);
    GiNaC::ex p = b.build(pred);
    return is_zero_ex(g - p);
  } catch (const std::exception&) {
    return false;
  }
}

bool ginac_constant_ratio(const Node& a, const Node& b, int* sign) {
  if (expanded_terms(a) + expanded_terms(b) > kMaxExpandedTerms) return false;
  std::lock_guard<std::mutex> lock(ginac_mutex());
  try {
    GinacBuilder bl;
    GiNaC::ex x = bl.build(a);
    GiNaC::ex y = bl.build(b);
    if (is_zero_ex(y)) return false;
    GiNaC::ex r = GiNaC::normal((x / y).expand());
    if (!GiNaC::is_a<GiNaC::numeric>(r)) return false;
    const GiNaC::numeric& rn = GiNaC::ex_to<GiNaC::numeric>(r);
    if (rn.is_zero() || !rn.is_real()) return false;
    if (sign) *sign = rn.is_positive() ? 1 : -1;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace r1kit::rewards::math
