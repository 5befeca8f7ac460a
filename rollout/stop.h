// Stop strings over decoded text. Generation produces tokens; a stop string is text, and may
// begin in one token and end several tokens later ("\n\n" as "\n" + "\n", "</answer>" as
// "</" + "answer" + ">"). The engine decodes each completion incrementally and asks the matcher
// after every token whether a stop string has appeared anywhere in the text so far.
//
// Semantics (as vLLM): the completion's text is cut just before the earliest stop string (the
// stop string itself is not included); the completion's token ids keep every token up to and
// including the one that completed the stop string, so ids and log-probs stay aligned with what
// the policy actually emitted.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace r1kit {

// ids -> text (e.g. Tokenizer::decode with skip_special_tokens). May be empty: ids-only engines.
using DecodeFn = std::function<std::string(const std::vector<int64_t>&)>;

class StopStringMatcher {
 public:
  StopStringMatcher() = default;
  explicit StopStringMatcher(std::vector<std::string> stops);

  bool empty() const { return stops_.empty(); }

  // `text` is the whole decoded completion so far; it only grows, except that a trailing
  // U+FFFD (an incomplete UTF-8 character) may be replaced once the next token completes it.
  // Returns the byte offset where the earliest stop string starts, or npos. Only the part of
  // the text that can hold a new match is searched, so a call costs O(new text + longest stop).
  size_t find(const std::string& text);

  // Index into the stop list of the string found by the last successful find().
  const std::string& matched() const { return stops_[matched_]; }

  // Earliest stop string in the whole text, or npos (no incremental state).
  static size_t find_in(const std::string& text, const std::vector<std::string>& stops, size_t from = 0,
                        size_t* which = nullptr);

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
  size_t stable_ = 0;  // bytes of the previous text that cannot change any more
  size_t matched_ = 0;
};

// Turns a growing list of ids into a growing string, decoding only a short window per token.
// Keeps two offsets (as HF's TextStreamer / vLLM's detokenizer): the text of ids[prefix, read)
// is known, and new text is decode(ids[prefix, end)) minus it, emitted only when it does not end
// in an incomplete UTF-8 character. Decoding with a little left context keeps tokenizers whose
// decoders depend on the previous token (SentencePiece's leading space) correct.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(DecodeFn decode) : decode_(std::move(decode)) {}
  // Appends the text of the new ids (those after the last call) to text() and returns it.
  const std::string& update(const std::vector<int64_t>& ids);
  const std::string& text() const { return text_; }

 private:
  DecodeFn decode_;
  std::string text_;
  size_t prefix_ = 0, read_ = 0;
};

}  // namespace r1kit
