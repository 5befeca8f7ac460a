// Finding the program in a completion, and judging a program's stdout against the expected output.
#pragma once
#include <string>
#include <vector>

namespace r1kit::rewards {

struct CodeBlock {
  bool found = false;
  std::string code;  // the block's text, without the fences
  std::string tag;   // the fence's language tag, lower-cased ("" when untagged)
};

// The last fenced block (``` or ~~~, three or more) whose language tag is one of `tags`
// (case-insensitive); when `accept_untagged`, untagged blocks qualify too. An unclosed final block
// runs to the end of the text (generations are often cut off). Fences may be indented.
CodeBlock extract_code_block(const std::string& text, const std::vector<std::string>& tags, bool accept_untagged);

// Competitive-programming comparison: whitespace-separated tokens must match one for one. With
// float_tolerance > 0, two tokens that both parse completely as numbers match when
// |a - b| <= tol * max(1, |b|) (absolute for small values, relative for large ones).
// `why` gets the first mismatch when non-null.
bool outputs_match(const std::string& actual, const std::string& expected, double float_tolerance,
                   std::string* why = nullptr);

}  // namespace r1kit::rewards
