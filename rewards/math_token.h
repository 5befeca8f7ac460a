// Internal to the math checker: the tokenizer shared by the parser.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "rewards/math_ast.h"

namespace r1kit::rewards::math {

enum class Tok { kEnd, kNum, kIdent, kCmd, kSym, kText, kBegin, kEndEnv, kSep };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;  // number text, letter, command name (without \), symbol char(s), text content
  size_t pos = 0;
};

// Tokens of a normalised answer; throws ParseError on unbalanced braces or oversized input.
std::vector<Token> tokenize(const std::string& s);

// Lowercase, spaces collapsed and trimmed.
std::string lower_trim(const std::string& t);

bool is_function_name(const std::string& n);  // sin, cos, log, ...
bool is_greek(const std::string& n);          // alpha, beta, ...
std::optional<RelOp> rel_op(const Token& t);  // =, <, \le, \in, ...

// A number token ("1,000.5" already without commas, "1.5e3") as an exact rational node.
Node num_node(const std::string& text);

}  // namespace r1kit::rewards::math
