// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json, producing the same ids as the
// Hugging Face `tokenizers` library (Rust, 0.22) for the Qwen2/2.5/3, Llama-3, DeepSeek-V3 and
// DeepSeek-R1-Distill files. Torch-free; encode/decode are const and safe to call from many threads.
//
// Pipeline of encode(text): added tokens are cut out first (longest match, leftmost first; tokens
// with "normalized": false on the raw text, the others after normalization), the pieces between
// them are normalized (NFC ...), split by the pre-tokenizers (Split regexes, ByteLevel), and each
// word is BPE-merged. add_special_tokens applies the post-processor (TemplateProcessing adds BOS).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace r1kit {

class Tokenizer {
 public:
  // Loads tokenizer.json, or DIR/tokenizer.json when given a directory. Unsupported components
  // (WordPiece, Unigram, unknown normalizers ...) and malformed files throw Error naming the file
  // and the field.
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  // Same from the file's text; `where` names it in errors.
  static Tokenizer from_json_text(const std::string& text, const std::string& where);

  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Ill-formed UTF-8 in `text` is first repaired (each bad subsequence becomes U+FFFD).
  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = false) const;
  // Ids without a token (e.g. padding rows of a larger embedding) are skipped, as HF does; bytes
  // that do not form UTF-8 become U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  int32_t token_to_id(const std::string& token) const;  // -1 when absent (added tokens first)
  std::string id_to_token(int32_t id) const;            // "" when absent
  bool is_special(int32_t id) const;                    // an added token with "special": true
  int64_t vocab_size() const;                           // largest id + 1, added tokens included

  // The file this tokenizer came from ("" when built from text).
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace r1kit
