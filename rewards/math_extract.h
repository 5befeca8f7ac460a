// Internal to the math checker: finding answer candidates in free text. Candidates carry a
// priority (lower first) and an end position (later first within a priority), following the
// order Math-Verify uses: \boxed / "final answer is X. I hope" (0), <answer> (25), "final answer
// ... is X" (50), "answer: X" (100), "answer ... X" (200), then any math environment, bare
// \frac{a}{b}, number or plain expression (300).
#pragma once
#include <string>
#include <vector>

namespace r1kit::rewards::math {

struct Candidate {
  int priority = 300;
  size_t start = 0, end = 0;
  std::string text;    // the answer text to parse (LaTeX or plain)
  bool latex = true;   // from a LaTeX source (env, \boxed) rather than a plain number / expression
};

struct FindOptions {
  bool latex = true;        // math environments, \boxed, \frac
  bool expr = true;         // plain numbers and expressions
  bool boxed_first = true;  // \boxed at priority 0 (else 50)
  bool european_decimals = true;  // "2,74" is 2.74 in plain numbers
};

// All candidates, sorted best first.
std::vector<Candidate> find_candidates(const std::string& text, const FindOptions& options);

// Spans [start, end) of $...$, $$...$$, \(...\), \[...\] environments and their contents.
struct EnvSpan {
  size_t start, end, content_start, content_end;
};
std::vector<EnvSpan> find_math_envs(const std::string& text);

// Content of the last \boxed{...} / \fbox{...} group (joined with "," when several boxes are
// separated by "and" / "or" / "," or sit in one math environment). Empty when there is none.
std::string last_boxed(const std::string& text, size_t* end_pos = nullptr, size_t* start_pos = nullptr);

// True for text that can be parsed as an answer as a whole ("\frac{1}{2}", "x = 3", "1, 2"):
// no $ or \boxed markers and no English words.
bool looks_like_bare_answer(const std::string& text);

}  // namespace r1kit::rewards::math
