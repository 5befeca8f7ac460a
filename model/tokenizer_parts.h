// The stages of Tokenizer::encode other than BPE: added-token matching, normalizers and
// pre-tokenizers, each built from its tokenizer.json section with Hugging Face semantics.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "model/tokenizer_regex.h"
#include "model/unicode.h"

namespace r1kit {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// Finds added tokens in text: leftmost match, longest on ties (Aho-Corasick LeftmostLongest in
// HF), then HF's single_word / lstrip / rstrip rules.
class AddedTokenMatcher {
 public:
  // patterns[i] is what to look for (the content, normalized for normalized tokens).
  void build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return tokens_.empty(); }
  // Calls fn(piece, token) for consecutive pieces covering text; token is nullptr between tokens.
  void split(std::string_view text, const std::function<void(std::string_view, const AddedToken*)>& fn) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;
    int32_t token = -1;  // index into tokens_ when a pattern ends here
  };
  // Length of the longest pattern starting at text[i], -1 if none; *token gets its index.
  int longest_at(std::string_view text, size_t i, int32_t* token) const;
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  bool first_byte_[256] = {};
};

// "normalizer": null, NFC/NFD/NFKC/NFKD, or a Sequence of them.
class Normalizer {
 public:
  Normalizer() = default;
  Normalizer(const json& j, const std::string& where);
  bool identity() const { return forms_.empty(); }
  std::string apply(std::string_view s) const;

 private:
  std::vector<unicode::NormalForm> forms_;
};

// "pre_tokenizer": Split (regex or string pattern, any behavior, invert), ByteLevel, Sequence.
class PreTokenizer {
 public:
  PreTokenizer() = default;
  PreTokenizer(const json& j, const std::string& where);
  // Splits text into words (byte ranges of text or of strings kept in *storage).
  void split(std::string_view text, std::deque<std::string>* storage, std::vector<std::string_view>* words) const;

 private:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    bool byte_level = false;
    bool add_prefix_space = false;  // ByteLevel
    const SplitRegex* regex = nullptr;  // Split, or ByteLevel with use_regex (GPT-2 pattern)
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
  };
  void add(const json& j, const std::string& where, const std::string& field);
  void apply_split(const Step& step, std::string_view piece, std::vector<std::string_view>* out) const;
  std::vector<Step> steps_;
  std::deque<SplitRegex> regexes_;
};

}  // namespace r1kit
