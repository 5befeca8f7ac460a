// A hand-made Hugging Face tokenizer.json for tests that need a tiny model with a real tokenizer:
// byte-level BPE without merges (every vocabulary entry is one token) plus one special token.
// Loaded by the normal Tokenizer class, like any checkpoint's tokenizer.
#pragma once
#include <string>

#include "core/json.h"

namespace r1kit::test {

// `vocab` maps byte-level strings (GPT-2's bytes_to_unicode form) to ids; `special` gets `special_id`.
inline json byte_level_bpe_tokenizer_json(const json& vocab, const std::string& special, int special_id,
                                          bool use_regex) {
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                           {"use_regex", use_regex}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array({{{"id", special_id}, {"content", special}, {"single_word", false},
                                         {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                                         {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", nullptr},
          {"decoder", byte_level},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
                     {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab},
                     {"merges", json::array()}}}};
}

}  // namespace r1kit::test
