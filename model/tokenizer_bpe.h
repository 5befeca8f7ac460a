// The BPE model of a tokenizer.json ("model": {"type": "BPE", ...}): vocab, ranked merges and a
// thread-safe cache of word -> ids. Words arrive as raw bytes; each byte is one initial symbol
// (its byte-level character), as in Hugging Face's byte-level BPE.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "model/tokenizer_json.h"

namespace r1kit {

class BpeModel {
 public:
  // `model` is the model section (options), vocab and merges come from it or, when streamed,
  // from `data` (see tokenizer_json.h); `where` (the file) is named in errors. Bad merges, a
  // missing vocab and unsupported options (dropout, unk_token absent from vocab) throw Error.
  BpeModel(const json& model, TokenizerJson* data, const std::string& where);
  ~BpeModel();

  // Appends the ids of one pre-tokenized word (raw bytes, before the byte-level mapping).
  void tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  // Vocab lookups on byte-level token strings ("Ġthe").
  int32_t token_to_id(const std::string& token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when absent
  int64_t size() const { return static_cast<int64_t>(vocab_.size()); }
  int32_t max_id() const { return static_cast<int32_t>(id_to_index_.size()) - 1; }

 private:
  struct Cache;
  void merge_word(std::string_view word, std::vector<int32_t>* ids) const;
  int32_t symbol_id(std::string_view byte_level_char, bool first, bool last) const;
  int32_t find(std::string_view token) const;

  std::vector<std::string> tokens_;                      // vocab strings, file order
  std::unordered_map<std::string_view, int32_t> vocab_;  // views into tokens_
  std::vector<int32_t> id_to_index_;                     // id -> index into tokens_, -1 if none
  // (left id, right id) -> (rank, merged id), open addressing keyed by left << 32 | right.
  struct MergeTable {
    std::vector<uint64_t> keys;
    std::vector<uint64_t> values;  // rank << 32 | merged id
    uint64_t mask = 0;
    bool find(uint64_t key, uint32_t* rank, int32_t* id) const;
    void insert(uint64_t key, uint64_t value);
  } merges_;
  std::array<int32_t, 256> byte_id_{};  // id of each byte's symbol (-1: not in vocab -> dropped)
  std::string continuing_subword_prefix_, end_of_word_suffix_;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  std::unique_ptr<Cache> cache_;
};

}  // namespace r1kit
