// Unicode helpers for the tokenizer: UTF-8 decoding with the same lossy repair as Rust's
// String::from_utf8_lossy, Unicode normalization (ICU), White_Space / word classes, and the GPT-2
// byte <-> printable-character mapping used by byte-level BPE.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace r1kit::unicode {

// Decodes the code point starting at s[i]; sets *len to its byte length. Invalid or truncated
// sequences return -1 with *len = length of the maximal ill-formed subpart (>= 1).
int32_t decode_utf8(std::string_view s, size_t i, int* len);

// Appends the UTF-8 encoding of code point cp.
void append_utf8(std::string* out, int32_t cp);

// True when s is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

// Replaces each maximal ill-formed subpart with U+FFFD, exactly like Rust's from_utf8_lossy
// (what Hugging Face tokenizers does when decoded bytes are not UTF-8).
std::string utf8_lossy(std::string_view s);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Normalizes well-formed UTF-8 text. Cheap when the text is already normalized.
std::string normalize(std::string_view s, NormalForm form);

// normalize() as Hugging Face tokenizers 0.22 does it: its normalization tables are Unicode 9.0
// (crate unicode-normalization-alignments; probed against the library), so characters assigned
// after 9.0 act as unknown starters: no reordering, composition or decomposition across them.
std::string normalize_like_hf(std::string_view s, NormalForm form);

// Unicode White_Space property (what \s means in Oniguruma and char::is_whitespace in Rust).
bool is_white_space(int32_t cp);

// The code points of a general-category group ('L', 'M', 'N', 'P' or 'S') as RE2 character-class
// items ("\x{41}-\x{5A}\x{61}-\x{7A}..."), following the Unicode version of Hugging Face's
// Oniguruma (16.0): ICU's data up to Unicode 15.0 plus the 15.1/16.0 additions. Other letters
// return "". Used instead of RE2's own (older) \p{..} tables.
const std::string& category_class_items(char group);

// The same classification as a table indexed by code point (0 .. 0x10FFFF): 'L', 'M', 'N', 'P',
// 'S' or 0 for everything else.
const char* category_table();

// Rust regex \w: alphabetic, marks, decimal digits, connector punctuation, join controls.
bool is_word_char(int32_t cp);

// GPT-2 byte-level alphabet: every byte has a printable stand-in character ('Ġ' for space).
struct ByteLevelAlphabet {
  std::array<std::string, 256> byte_to_utf8;  // UTF-8 of the stand-in character of each byte
  std::array<int32_t, 256> byte_to_cp;        // its code point
  int16_t cp_to_byte(int32_t cp) const {      // -1 when cp is not a stand-in character
    return cp >= 0 && cp < 324 ? cp_to_byte_[cp] : -1;
  }
  ByteLevelAlphabet();

 private:
  std::array<int16_t, 324> cp_to_byte_;
};
const ByteLevelAlphabet& byte_level_alphabet();

// Maps raw bytes to their byte-level characters ("a b" -> "aĠb").
std::string bytes_to_byte_level(std::string_view bytes);

// Inverse mapping; returns false (and leaves *out partly filled) when a character is not part of
// the alphabet.
bool byte_level_to_bytes(std::string_view text, std::string* out);

}  // namespace r1kit::unicode
