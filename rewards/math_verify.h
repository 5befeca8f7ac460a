// Math answer checking: extract the final answer from a completion, parse gold and prediction
// (LaTeX or plain text) into a small AST, and decide equivalence exactly where possible
// (GMP rationals, GiNaC), numerically only where exactness is impossible.
//
//   math_equal("\\frac{1}{2}", "0.5")                       -> true
//   math_equal("2\\sqrt{2}", "\\sqrt{8}")                   -> true
//   math_equal("\\frac{1}{3^{100}}", "\\frac{1}{3^{99}}")  -> false (exact)
//   extract_answer("... so \\boxed{42}.", {})               -> "42"
//
// Thread-safe: every function may be called from several threads at once.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit::rewards {

// How a gold answer is stored in a dataset field.
enum class GoldFormat {
  kAuto,   // "#### N" -> GSM8K, otherwise the text itself (LaTeX or plain)
  kLatex,  // MATH-style LaTeX answer (may contain \boxed{})
  kGsm8k,  // a worked solution ending in "#### N"
  kInt,    // an integer (AIME: "025" -> 25)
};

// Parses "auto" | "latex" | "gsm8k" | "int"; throws Error naming `where` otherwise.
GoldFormat parse_gold_format(const std::string& name, const std::string& where = "gold_format");

// Where to look for the final answer in a completion. The first strategy that yields an answer wins,
// in this order: \boxed{}/\fbox{} (last one, nested braces), <answer>...</answer>, "the (final) answer
// is X", the last $...$ / \(...\) / \[...\], the last number.
struct ExtractOptions {
  bool boxed = true;              // the last \boxed{...} / \fbox{...}
  bool answer_tag = true;         // the last <answer>...</answer>
  bool answer_phrase = true;      // fallback: "the final answer is X", "answer: X"
  bool last_math = true;          // fallback: the last $...$, $$...$$, \(...\), \[...\]
  bool last_number = true;        // fallback: the last number in the text
  // When the completion closes a "</think>" block, look after the last one first (a draft
  // \boxed{} in the thought is not the answer); the whole text is searched only if that fails.
  bool after_think = true;
  size_t max_input_bytes = 4 << 20;  // longer completions are cut to their last max_input_bytes
};

// Returns the extracted answer text (LaTeX or plain), or nullopt when no strategy matched.
std::optional<std::string> extract_answer(const std::string& completion, const ExtractOptions& options = {});

// Reads the gold answer from a dataset value: a string (LaTeX, "#### N", "025") or a number.
// Throws Error when the value has no usable answer (e.g. gsm8k format without "####").
std::string gold_from_field(const json& value, GoldFormat format = GoldFormat::kAuto);

struct MathVerifyOptions {
  // Run answer extraction on the inputs (both may be whole solutions). When false, each input is
  // taken as the answer itself.
  bool extract_gold = true;
  bool extract_pred = true;
  bool match_latex = true;        // extraction looks at LaTeX ($..$, \boxed{} ...)
  bool match_expr = true;         // extraction looks at plain numbers and expressions ("1,000.5", "3/4")
  bool boxed_first = true;        // \boxed{} outranks "final answer is" phrases
  // A decimal written with d places matches an exact value (1/3, \sqrt{2}) when it is that value
  // correctly rounded and it carries at least float_rounding places or significant digits. 4 is the
  // 1e-4 relative precision of the usual math graders (0.3333 = 1/3, 0.333 != 1/3); Math-Verify's
  // default is 6.
  int float_rounding = 4;
  // Free symbols must agree by name (f(x) != f(y)); false renames a single free symbol.
  bool strict = true;
  // Also accept a relation pred ("-2 \le x \le 7") for a set gold ("[-2,7]"). The other direction
  // (relation gold, set pred) is always allowed.
  bool allow_set_relation = false;
  // Inputs longer than this are cut (extraction keeps the end, where answers are).
  size_t max_input_bytes = 4 << 20;
};

struct MathVerifyResult {
  bool correct = false;
  bool exact = true;           // decided without numeric tolerance
  std::string gold_extracted;  // the answer text taken from gold
  std::string pred_extracted;  // the answer text taken from pred ("" when none)
  std::string gold_parsed;     // canonical form of the parsed gold (for --explain)
  std::string pred_parsed;
  std::string reason;          // why: "exact rational", "symbolic (GiNaC)", "no answer in pred", ...
};

MathVerifyResult math_verify(const std::string& gold, const std::string& pred, const MathVerifyOptions& options = {});

bool math_equal(const std::string& gold, const std::string& pred, const MathVerifyOptions& options = {});

}  // namespace r1kit::rewards
