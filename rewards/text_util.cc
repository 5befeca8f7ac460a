#include "rewards/text_util.h"

#include <cmath>

namespace r1kit::rewards {

char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  // Overlong encodings, surrogates and values past U+10FFFF are invalid.
  static const char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

std::size_t count_code_points(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) next_code_point(s, i);
  return n;
}

Script script_of(char32_t c) {
  if (c < 0x80) return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ? Script::kLatin : Script::kNone;
  // Latin-1 letters, Latin Extended-A/B, IPA, Latin Extended Additional.
  if ((c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x1E00 && c <= 0x1EFF)) return Script::kLatin;
  if (c >= 0xFF21 && c <= 0xFF3A) return Script::kLatin;  // fullwidth A-Z
  if (c >= 0xFF41 && c <= 0xFF5A) return Script::kLatin;  // fullwidth a-z
  if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2EBEF) ||
      (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x30000 && c <= 0x3134F))
    return Script::kHan;
  if (c >= 0x3041 && c <= 0x309F) return Script::kHiragana;
  if ((c >= 0x30A0 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9D))
    return Script::kKatakana;
  if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F))
    return Script::kHangul;
  if (c >= 0x0400 && c <= 0x052F) return Script::kCyrillic;
  if ((c >= 0x0620 && c <= 0x064A) || (c >= 0x066E && c <= 0x06D3) || (c >= 0x0750 && c <= 0x077F))
    return Script::kArabic;
  // Letters of other scripts: Greek, Armenian, Hebrew, Devanagari .. Thai .. Georgian, Ethiopic.
  if ((c >= 0x0370 && c <= 0x03FF && c != 0x37E && c != 0x387) || (c >= 0x0531 && c <= 0x058F) ||
      (c >= 0x05D0 && c <= 0x05EA) || (c >= 0x0900 && c <= 0x0DFF) || (c >= 0x0E01 && c <= 0x0E30) ||
      (c >= 0x10A0 && c <= 0x10FF) || (c >= 0x1200 && c <= 0x137F))
    return Script::kOtherLetter;
  return Script::kNone;
}

std::size_t count_occurrences(std::string_view hay, std::string_view needle) {
  if (needle.empty()) return 0;
  std::size_t n = 0;
  for (std::size_t pos = hay.find(needle); pos != std::string_view::npos; pos = hay.find(needle, pos + needle.size()))
    ++n;
  return n;
}

bool prompt_prefills_think(std::string_view prompt) {
  std::size_t end = prompt.size();
  while (end > 0 && (prompt[end - 1] == ' ' || prompt[end - 1] == '\n' || prompt[end - 1] == '\t' ||
                     prompt[end - 1] == '\r'))
    --end;
  constexpr std::string_view kOpen = "<think>";
  return end >= kOpen.size() && prompt.substr(end - kOpen.size(), kOpen.size()) == kOpen;
}

std::string_view thought_of(std::string_view completion, bool prefilled) {
  std::size_t start = 0;
  if (!prefilled) {
    auto open = completion.find("<think>");
    if (open != std::string_view::npos) start = open + 7;
  }
  auto close = completion.find("</think>", start);
  return completion.substr(start, close == std::string_view::npos ? std::string_view::npos : close - start);
}

double completion_length_tokens(const RewardInput& input, double chars_per_token) {
  if (input.fields.is_object()) {
    auto it = input.fields.find("completion_tokens");
    if (it != input.fields.end() && it->is_number_integer() && it->get<long long>() >= 0)
      return static_cast<double>(it->get<long long>());
  }
  return std::ceil(static_cast<double>(count_code_points(input.completion)) / chars_per_token);
}

bool is_prefilled(Prefill mode, const RewardInput& input) {
  if (mode == Prefill::kAuto) return prompt_prefills_think(input.prompt);
  return mode == Prefill::kYes;
}

void read_prefill(ConfigNode& node, const std::string& key, Prefill& out) {
  json value;
  node.read(key, value);
  if (value.is_null()) return;
  if (value.is_boolean()) {
    out = value.get<bool>() ? Prefill::kYes : Prefill::kNo;
  } else if (value == "auto") {
    out = Prefill::kAuto;
  } else {
    node.fail(key, str_cat("expected true, false or \"auto\", got ", value.dump()));
  }
}

}  // namespace r1kit::rewards
