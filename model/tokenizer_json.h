// Fast reading of tokenizer.json: the large model.vocab (150k entries) and model.merges arrays
// are streamed into flat vectors by a SAX handler instead of a JSON DOM (which costs ~1 s per
// file); everything else becomes an ordinary json value.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"

namespace r1kit {

struct TokenizerJson {
  json doc;                      // the file without model.vocab / model.merges (those are null)
  bool has_vocab = false;        // model.vocab was an object
  std::vector<std::pair<std::string, int64_t>> vocab;  // in file order
  bool has_merges = false;       // model.merges was an array
  // Each merge as its two tokens; string merges "a b" are split here. merge_errors holds the first
  // malformed entry ("model.merges[i] ...") or is empty.
  std::vector<std::pair<std::string, std::string>> merges;
  std::string merge_error;
};

// Throws Error "<where>: invalid JSON ..." on malformed input and "<where>: model.vocab[...] ..."
// for non-integer vocab ids.
TokenizerJson parse_tokenizer_json(const std::string& text, const std::string& where);

}  // namespace r1kit
