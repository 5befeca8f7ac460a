// Internal to the math checker: printing and canonical forms of parsed answers (relations reduced
// to their stated value, ± expanded, nested lists flattened), shared by the comparison.
#pragma once
#include <vector>

#include "rewards/math_ast.h"

namespace r1kit::rewards::math {

// A "name" on the left of "=": x, a_1, f(x), |AB|, A:B, NO/BO, (p,q). Not 2x+z or 7.
bool label_like(const Node& n);
// No free variables (and not text).
bool is_constant(const Node& n);
NodeP make_kids(Kind k, std::vector<NodeP> kids);
// x = 5+5+1 = 11 -> x = 11; 1/2 = 10/9 -> 10/9; x \in S -> S; ± expanded into lists; lists flattened.
NodeP canonical(const NodeP& n, int depth = 0);

}  // namespace r1kit::rewards::math
