// Internal to the math checker: evaluation of a parsed answer as an exact rational (GMP), as a
// complex double at a point (numeric checks), or as a GiNaC expression (symbolic proof).
#pragma once
#include <complex>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "rewards/math_ast.h"

namespace r1kit::rewards::math {

// The exact value when `n` is a rational constant built from + - * / integer powers, perfect roots,
// small factorials and binomials. nullopt otherwise, or when an exact power would exceed
// Limits::kMaxExactBits.
std::optional<mpq_class> rational_value(const Node& n);

// Free symbol names (variables) of an expression.
void collect_symbols(const Node& n, std::set<std::string>& out);

using Point = std::map<std::string, std::complex<double>>;

// Numeric value at `point` (symbols must be present). nullopt when the expression has no numeric
// value (text, sets, unknown functions, infinities, non-finite results).
std::optional<std::complex<double>> numeric_value(const Node& n, const Point& point);

// Tries to prove gold - pred == 0 with GiNaC (expand + normal). Serialised by a process-wide mutex
// because GiNaC's reference counting of shared constants is not thread-safe. Expressions GiNaC could
// blow up on (huge exponents, unknown functions) return false without calling GiNaC.
// `ratio_const` asks instead whether gold / pred is a nonzero constant; its sign goes to *sign.
bool ginac_zero_difference(const Node& gold, const Node& pred);
bool ginac_constant_ratio(const Node& a, const Node& b, int* sign);

}  // namespace r1kit::rewards::math
