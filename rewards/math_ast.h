// Internal to the math checker: the small AST that LaTeX / plain-text answers are parsed into, the
// parser, and the equivalence test on parsed answers. Public entry points are in math_verify.h.
#pragma once
#include <gmpxx.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace r1kit::rewards::math {

enum class Kind {
  kNum,       // exact rational `q`; `decimal` when written with a decimal point
  kSym,       // variable `name` (x, a_1, \alpha -> alpha)
  kConst,     // pi, E (Euler), I (imaginary unit), oo (infinity)
  kAdd,       // sum of children
  kMul,       // product of children
  kPow,       // children[0] ^ children[1]
  kFunc,      // name(children...): sin, cos, ln, log, sqrt (2 args: radicand, index), abs, fact, sum
  kPlusMinus, // children[0] ± children[1] (two values)
  kTuple,     // (a, b, ...) ordered; `maybe_interval` when two items in round brackets
  kList,      // a, b, c written without brackets: compared as a set, or in order against a tuple
  kSet,       // \{a, b\}
  kInterval,  // children[0], children[1]; lo_closed / hi_closed
  kUnion,     // set union of children
  kMatrix,    // rows x cols, children row-major
  kRel,       // chain children[0] ops[0] children[1] ops[1] ...
  kRatio,     // a : b
  kText,      // plain words (`name`, lowercased, spaces collapsed)
  kEmpty,     // the empty set
};

enum RelOp { kEq, kLt, kLe, kGt, kGe, kNe, kApprox, kIn };

struct Node;
using NodeP = std::shared_ptr<const Node>;

struct Node {
  Kind kind = Kind::kNum;
  mpq_class q;          // kNum
  bool decimal = false;   // kNum written as a decimal (rounding rules may apply)
  int places = 0;         // kNum: digits after the decimal point as written
  int sig_digits = 0;     // kNum: significant digits as written
  bool percent = false;   // the value carried a % sign (kept as written; value not divided)
  std::string name;       // kSym, kConst, kFunc, kText
  std::vector<NodeP> kids;
  std::vector<RelOp> ops;       // kRel
  bool lo_closed = false, hi_closed = false;  // kInterval
  bool maybe_interval = false;  // kTuple of 2 in round brackets
  bool call = false;            // kMul written F(v): a one-letter name applied to one bracketed symbol
  int rows = 0, cols = 0;       // kMatrix
};

// Limits that keep parsing and comparison bounded on hostile input.
struct Limits {
  static constexpr size_t kMaxAnswerBytes = 8192;   // longer extracted answers are not parsed
  static constexpr int kMaxDepth = 200;             // nesting depth of the parser
  static constexpr int kMaxNodes = 20000;           // nodes per parsed answer
  static constexpr long kMaxExactBits = 1 << 16;    // exact powers whose result exceeds this many bits stay symbolic
};

// Parses an answer (LaTeX or plain math, no surrounding $). Throws ParseError on failure.
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
NodeP parse_answer(const std::string& text);

// Normalises LaTeX noise (\left, \!, \text{and}, unicode, doubled backslashes ...) before parsing.
std::string normalize_answer_text(const std::string& text);

// A canonical printed form (for diagnostics and structural comparison).
std::string to_string(const Node& n);

struct CompareOptions {
  int float_rounding = 4;
  bool strict = true;
  bool allow_set_relation = false;
};

struct CompareResult {
  bool equal = false;
  bool exact = true;       // false when numeric tolerance decided it
  std::string how;         // "exact rational", "symbolic", "numeric", "structural", ...
};

// Is `pred` an acceptable answer for `gold`? Asymmetric where Math-Verify is (relations vs sets).
CompareResult compare(const NodeP& gold, const NodeP& pred, const CompareOptions& options);

NodeP make_node(Node n);

}  // namespace r1kit::rewards::math
