#include "model/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <cstdio>
#include <vector>

#include "core/check.h"

namespace r1kit::unicode {

int32_t decode_utf8(std::string_view s, size_t i, int* len) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  // Expected length and the allowed range of the second byte (Unicode Table 3-7), which is what
  // makes overlongs, surrogates and > U+10FFFF ill-formed after one byte.
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  int32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *len = 1;
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      *len = k;
      return -1;
    }
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      *len = k;
      return -1;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = need + 1;
  return cp;
}

void append_utf8(std::string* out, int32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    int len;
    if (decode_utf8(s, i, &len) < 0) return false;
    i += len;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    int len;
    if (decode_utf8(s, i, &len) < 0) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(s.data() + i, len);
    }
    i += len;
  }
  return out;
}

std::string normalize(std::string_view s, NormalForm form) {
  // Text below U+0300 (Latin-1 and friends) is unchanged by NFC/NFD: no decompositions, no marks.
  // NFKC/NFKD also fold some Latin-1 characters (U+00A0, U+00B2 ...), so only ASCII is safe there.
  const bool compat = form == NormalForm::kNFKC || form == NormalForm::kNFKD;
  bool trivial = true;
  for (size_t i = 0; i < s.size() && trivial; ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b >= 0x80 && (compat || b > 0xCB)) trivial = false;  // 0xCC.. starts U+0300 and above
  }
  if (trivial) return std::string(s);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNFC: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::kNFD: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::kNFKC: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::kNFKD: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  R1_CHECK(U_SUCCESS(status) && n, "unicode normalizer unavailable: ", u_errorName(status));
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), s.size()));
  if (n->isNormalized(in, status) && U_SUCCESS(status)) return std::string(s);
  status = U_ZERO_ERROR;
  const icu::UnicodeString norm = n->normalize(in, status);
  R1_CHECK(U_SUCCESS(status), "unicode normalization failed: ", u_errorName(status));
  std::string out;
  norm.toUTF8String(out);
  return out;
}

std::string normalize_like_hf(std::string_view s, NormalForm form) {
  std::string out;
  size_t seg = 0;  // start of the run not yet normalized
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0xCC) {  // below U+0300: Unicode 1.1 material
      ++i;
      continue;
    }
    int len;
    const int32_t cp = decode_utf8(s, i, &len);
    UVersionInfo age;
    u_charAge(cp, age);
    if (age[0] > 9) {
      out += normalize(s.substr(seg, i - seg), form);
      out.append(s.data() + i, len);
      seg = i + len;
    }
    i += len;
  }
  if (seg == 0) return normalize(s, form);
  out += normalize(s.substr(seg), form);
  return out;
}

bool is_white_space(int32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

namespace {

// Characters of Unicode 15.1 and 16.0 (newer than the ICU 72 data this was built with) that
// Hugging Face's Oniguruma classifies, probed one by one against tokenizers 0.22.2 (letters,
// marks, punctuation and symbols glue to a preceding space in DeepSeek-V3's regex; digits stay
// apart in Llama-3's). Characters of Unicode 17.0 are unassigned there and stay so here.
struct ExtraRange {
  int32_t lo, hi;
  char group;
};
constexpr ExtraRange kUnicode16Additions[] = {
    {0x0897, 0x0897, 'M'}, {0x1B4E, 0x1B4F, 'P'}, {0x1B7F, 0x1B7F, 'P'}, {0x1C89, 0x1C8A, 'L'},
    {0x2427, 0x2429, 'S'}, {0x2FFC, 0x2FFF, 'S'}, {0x31E4, 0x31E5, 'S'}, {0x31EF, 0x31EF, 'S'},
    {0xA7CB, 0xA7CD, 'L'}, {0xA7DA, 0xA7DC, 'L'}, {0x105C0, 0x105F3, 'L'}, {0x10D40, 0x10D49, 'N'},
    {0x10D4A, 0x10D65, 'L'}, {0x10D69, 0x10D6D, 'M'}, {0x10D6E, 0x10D6E, 'P'}, {0x10D6F, 0x10D85, 'L'},
    {0x10D8E, 0x10D8F, 'S'}, {0x10EC2, 0x10EC4, 'L'}, {0x10EFC, 0x10EFC, 'M'}, {0x11380, 0x11389, 'L'},
    {0x1138B, 0x1138B, 'L'}, {0x1138E, 0x1138E, 'L'}, {0x11390, 0x113B5, 'L'}, {0x113B7, 0x113B7, 'L'},
    {0x113B8, 0x113C0, 'M'}, {0x113C2, 0x113C2, 'M'}, {0x113C5, 0x113C5, 'M'}, {0x113C7, 0x113CA, 'M'},
    {0x113CC, 0x113D0, 'M'}, {0x113D1, 0x113D1, 'L'}, {0x113D2, 0x113D2, 'M'}, {0x113D3, 0x113D3, 'L'},
    {0x113D4, 0x113D5, 'P'}, {0x113D7, 0x113D8, 'P'}, {0x113E1, 0x113E2, 'M'}, {0x116D0, 0x116E3, 'N'},
    {0x11BC0, 0x11BE0, 'L'}, {0x11BE1, 0x11BE1, 'P'}, {0x11BF0, 0x11BF9, 'N'}, {0x11F5A, 0x11F5A, 'M'},
    {0x13460, 0x143FA, 'L'}, {0x16100, 0x1611D, 'L'}, {0x1611E, 0x1612F, 'M'}, {0x16130, 0x16139, 'N'},
    {0x16D40, 0x16D6C, 'L'}, {0x16D6D, 0x16D6F, 'P'}, {0x16D70, 0x16D79, 'N'}, {0x18CFF, 0x18CFF, 'L'},
    {0x1CC00, 0x1CCEF, 'S'}, {0x1CCF0, 0x1CCF9, 'N'}, {0x1CD00, 0x1CEB3, 'S'}, {0x1E5D0, 0x1E5ED, 'L'},
    {0x1E5EE, 0x1E5EF, 'M'}, {0x1E5F0, 0x1E5F0, 'L'}, {0x1E5F1, 0x1E5FA, 'N'}, {0x1E5FF, 0x1E5FF, 'P'},
    {0x1F8B2, 0x1F8BB, 'S'}, {0x1F8C0, 0x1F8C1, 'S'}, {0x1FA89, 0x1FA89, 'S'}, {0x1FA8F, 0x1FA8F, 'S'},
    {0x1FABE, 0x1FABE, 'S'}, {0x1FAC6, 0x1FAC6, 'S'}, {0x1FADC, 0x1FADC, 'S'}, {0x1FADF, 0x1FADF, 'S'},
    {0x1FAE9, 0x1FAE9, 'S'}, {0x1FBCB, 0x1FBEF, 'S'}, {0x2EBF0, 0x2EE5D, 'L'},
};

char icu_group(int32_t cp) {
  UVersionInfo age;
  u_charAge(cp, age);
  if (age[0] > 15 || (age[0] == 15 && age[1] > 0)) return 0;  // newer than HF's tables handled above
  switch (u_charType(cp)) {
    case U_UPPERCASE_LETTER: case U_LOWERCASE_LETTER: case U_TITLECASE_LETTER: case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return 'L';
    case U_NON_SPACING_MARK: case U_ENCLOSING_MARK: case U_COMBINING_SPACING_MARK:
      return 'M';
    case U_DECIMAL_DIGIT_NUMBER: case U_LETTER_NUMBER: case U_OTHER_NUMBER:
      return 'N';
    case U_CONNECTOR_PUNCTUATION: case U_DASH_PUNCTUATION: case U_START_PUNCTUATION: case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION: case U_FINAL_PUNCTUATION: case U_OTHER_PUNCTUATION:
      return 'P';
    case U_MATH_SYMBOL: case U_CURRENCY_SYMBOL: case U_MODIFIER_SYMBOL: case U_OTHER_SYMBOL:
      return 'S';
    default:
      return 0;
  }
}

struct CategoryClasses {
  std::string items[5];  // L M N P S
  std::vector<char> group;  // per code point: 'L', 'M', 'N', 'P', 'S' or 0
  CategoryClasses() : group(0x110000, 0) {
    const std::string groups = "LMNPS";
    for (int32_t cp = 0; cp < 0x110000; ++cp) group[cp] = icu_group(cp);
    for (const ExtraRange& r : kUnicode16Additions)
      for (int32_t cp = r.lo; cp <= r.hi; ++cp) group[cp] = r.group;
    char buf[32];
    for (int32_t cp = 0; cp < 0x110000;) {
      const char g = group[cp];
      int32_t end = cp;
      while (end + 1 < 0x110000 && group[end + 1] == g) ++end;
      if (g) {
        std::snprintf(buf, sizeof(buf), cp == end ? "\\x{%X}" : "\\x{%X}-\\x{%X}", cp, end);
        items[groups.find(g)] += buf;
      }
      cp = end + 1;
    }
  }
};

const CategoryClasses& category_classes() {
  static const CategoryClasses classes;
  return classes;
}

}  // namespace

const char* category_table() { return category_classes().group.data(); }

const std::string& category_class_items(char group) {
  const CategoryClasses& classes = category_classes();
  static const std::string none;
  const char* groups = "LMNPS";
  for (int i = 0; i < 5; ++i)
    if (groups[i] == group) return classes.items[i];
  return none;
}

bool is_word_char(int32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  if (u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL)) return true;
  const int8_t t = u_charType(cp);
  return t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK || t == U_COMBINING_SPACING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  cp_to_byte_.fill(-1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const int cp = printable ? b : next++;
    byte_to_cp[b] = cp;
    cp_to_byte_[cp] = static_cast<int16_t>(b);
    byte_to_utf8[b].clear();
    append_utf8(&byte_to_utf8[b], cp);
  }
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& a = byte_level_alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += a.byte_to_utf8[static_cast<uint8_t>(c)];
  return out;
}

bool byte_level_to_bytes(std::string_view text, std::string* out) {
  const auto& a = byte_level_alphabet();
  for (size_t i = 0; i < text.size();) {
    int len;
    const int32_t cp = decode_utf8(text, i, &len);
    const int16_t b = a.cp_to_byte(cp);
    if (b < 0) return false;
    out->push_back(static_cast<char>(b));
    i += len;
  }
  return true;
}

}  // namespace r1kit::unicode
