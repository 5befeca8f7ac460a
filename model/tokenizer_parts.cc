#include "model/tokenizer_parts.h"

#include <algorithm>

#include "core/check.h"

namespace r1kit {
namespace {

// The ByteLevel pre-tokenizer's own regex (GPT-2), used when "use_regex": true.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

int32_t last_char(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  int len;
  return unicode::decode_utf8(s, i, &len);
}

int32_t first_char(std::string_view s) {
  int len;
  return unicode::decode_utf8(s, 0, &len);
}

bool json_bool(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

std::string json_type(const json& j, const std::string& where, const std::string& field) {
  R1_CHECK(j.is_object(), where, ": ", field, " must be an object");
  auto it = j.find("type");
  R1_CHECK(it != j.end() && it->is_string(), where, ": ", field, ".type missing");
  return it->get<std::string>();
}

}  // namespace

void AddedTokenMatcher::build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns) {
  tokens_ = tokens;
  nodes_.assign(1, Node{});
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    first_byte_[static_cast<uint8_t>(p[0])] = true;
    int32_t node = 0;
    for (char ch : p) {
      const auto c = static_cast<uint8_t>(ch);
      int32_t next = -1;
      for (const auto& [b, n] : nodes_[node].children)
        if (b == c) next = n;
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.emplace_back(c, next);
        nodes_.emplace_back();
      }
      node = next;
    }
    // Two tokens with the same pattern: the first one listed wins, like the first Aho-Corasick pattern.
    if (nodes_[node].token < 0) nodes_[node].token = static_cast<int32_t>(t);
  }
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t i, int32_t* token) const {
  int best = -1;
  int32_t node = 0;
  for (size_t j = i; j < text.size(); ++j) {
    const auto c = static_cast<uint8_t>(text[j]);
    int32_t next = -1;
    for (const auto& [b, n] : nodes_[node].children)
      if (b == c) {
        next = n;
        break;
      }
    if (next < 0) break;
    node = next;
    if (nodes_[node].token >= 0) {
      best = static_cast<int>(j + 1 - i);
      *token = nodes_[node].token;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text,
                              const std::function<void(std::string_view, const AddedToken*)>& fn) const {
  size_t emitted = 0;  // text[0, emitted) has been handed to fn
  size_t i = 0;
  while (!tokens_.empty() && i < text.size()) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) {
      ++i;
      continue;
    }
    int32_t t = -1;
    const int len = longest_at(text, i, &t);
    if (len < 0) {
      ++i;
      continue;
    }
    size_t start = i, stop = i + len;
    i = stop;  // matches never overlap, even when one is discarded below
    const AddedToken& tok = *tokens_[t];
    if (tok.single_word) {
      const bool start_ok = start == 0 || !unicode::is_word_char(last_char(text.substr(0, start)));
      const bool stop_ok = stop == text.size() || !unicode::is_word_char(first_char(text.substr(stop)));
      if (!start_ok || !stop_ok) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > emitted) {
        size_t p = s - 1;
        while (p > 0 && (static_cast<uint8_t>(text[p]) & 0xC0) == 0x80) --p;
        int l;
        if (!unicode::is_white_space(unicode::decode_utf8(text, p, &l))) break;
        s = p;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        int l;
        if (!unicode::is_white_space(unicode::decode_utf8(text, stop, &l))) break;
        stop += l;
      }
      i = stop;
    }
    if (emitted < start) fn(text.substr(emitted, start - emitted), nullptr);
    fn(text.substr(start, stop - start), &tok);
    emitted = stop;
  }
  if (emitted < text.size()) fn(text.substr(emitted), nullptr);
}

Normalizer::Normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return;
  std::function<void(const json&, const std::string&)> add = [&](const json& n, const std::string& field) {
    const std::string type = json_type(n, where, field);
    if (type == "Sequence") {
      auto it = n.find("normalizers");
      R1_CHECK(it != n.end() && it->is_array(), where, ": ", field, ".normalizers must be an array");
      for (size_t i = 0; i < it->size(); ++i) add((*it)[i], str_cat(field, ".normalizers[", i, "]"));
    } else if (type == "NFC") {
      forms_.push_back(unicode::NormalForm::kNFC);
    } else if (type == "NFD") {
      forms_.push_back(unicode::NormalForm::kNFD);
    } else if (type == "NFKC") {
      forms_.push_back(unicode::NormalForm::kNFKC);
    } else if (type == "NFKD") {
      forms_.push_back(unicode::NormalForm::kNFKD);
    } else {
      R1_FAIL(where, ": ", field, ".type \"", type, "\" is unsupported (supported: NFC, NFD, NFKC, NFKD, Sequence)");
    }
  };
  add(j, "normalizer");
}

std::string Normalizer::apply(std::string_view s) const {
  std::string out(s);
  for (auto f : forms_) out = unicode::normalize_like_hf(out, f);
  return out;
}

PreTokenizer::PreTokenizer(const json& j, const std::string& where) {
  if (!j.is_null()) add(j, where, "pre_tokenizer");
}

void PreTokenizer::add(const json& j, const std::string& where, const std::string& field) {
  const std::string type = json_type(j, where, field);
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    R1_CHECK(it != j.end() && it->is_array(), where, ": ", field, ".pretokenizers must be an array");
    for (size_t i = 0; i < it->size(); ++i) add((*it)[i], where, str_cat(field, ".pretokenizers[", i, "]"));
  } else if (type == "ByteLevel") {
    Step s;
    s.byte_level = true;
    s.add_prefix_space = json_bool(j, "add_prefix_space", true);
    if (json_bool(j, "use_regex", true)) s.regex = &regexes_.emplace_back(kGpt2Pattern, where + ": " + field);
    steps_.push_back(s);
  } else if (type == "Split") {
    Step s;
    auto pat = j.find("pattern");
    R1_CHECK(pat != j.end() && pat->is_object(), where, ": ", field, ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    const std::string ctx = where + ": " + field + ".pattern";
    if (auto r = pat->find("Regex"); r != pat->end() && r->is_string()) {
      s.regex = &regexes_.emplace_back(r->get<std::string>(), ctx);
    } else if (auto t = pat->find("String"); t != pat->end() && t->is_string()) {
      s.regex = &regexes_.emplace_back(SplitRegex::quote(t->get<std::string>()), ctx);
    } else {
      R1_FAIL(ctx, " must be {\"Regex\": ...} or {\"String\": ...}");
    }
    auto b = j.find("behavior");
    R1_CHECK(b != j.end() && b->is_string(), where, ": ", field, ".behavior missing");
    const std::string bs = b->get<std::string>();
    if (bs == "Removed") s.behavior = Behavior::kRemoved;
    else if (bs == "Isolated") s.behavior = Behavior::kIsolated;
    else if (bs == "MergedWithPrevious") s.behavior = Behavior::kMergedWithPrevious;
    else if (bs == "MergedWithNext") s.behavior = Behavior::kMergedWithNext;
    else if (bs == "Contiguous") s.behavior = Behavior::kContiguous;
    else R1_FAIL(where, ": ", field, ".behavior \"", bs, "\" is unknown");
    s.invert = json_bool(j, "invert", false);
    steps_.push_back(s);
  } else {
    R1_FAIL(where, ": ", field, ".type \"", type, "\" is unsupported (supported: Split, ByteLevel, Sequence)");
  }
}

void PreTokenizer::apply_split(const Step& step, std::string_view piece, std::vector<std::string_view>* out) const {
  thread_local std::vector<std::pair<size_t, size_t>> matches;
  matches.clear();
  step.regex->find_all(piece, &matches);
  if (step.behavior == Behavior::kIsolated && !step.invert) {
    size_t prev = 0;
    for (const auto& [s, e] : matches) {
      if (prev < s) out->push_back(piece.substr(prev, s - prev));
      if (s < e) out->push_back(piece.substr(s, e - s));
      prev = e;
    }
    if (prev < piece.size()) out->push_back(piece.substr(prev));
    return;
  }
  // General case, following HF's SplitDelimiterBehavior on (range, is_match) pairs.
  struct Part {
    size_t b, e;
    bool match;
  };
  std::vector<Part> parts;
  size_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) parts.push_back({prev, s, step.invert});
    parts.push_back({s, e, !step.invert});
    prev = e;
  }
  if (prev != piece.size()) parts.push_back({prev, piece.size(), step.invert});
  std::vector<Part> res;
  bool previous_match = false;
  switch (step.behavior) {
    case Behavior::kIsolated: res = parts; break;
    case Behavior::kRemoved:
      for (const Part& p : parts)
        if (!p.match) res.push_back(p);
      break;
    case Behavior::kMergedWithPrevious:
      for (const Part& p : parts) {
        if (p.match && !previous_match && !res.empty()) res.back().e = p.e;
        else res.push_back(p);
        previous_match = p.match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->match && !previous_match && !res.empty()) res.back().b = it->b;
        else res.push_back(*it);
        previous_match = it->match;
      }
      std::reverse(res.begin(), res.end());
      break;
    case Behavior::kContiguous:
      for (const Part& p : parts) {
        if (p.match == previous_match && !res.empty()) res.back().e = p.e;
        else res.push_back(p);
        previous_match = p.match;
      }
      break;
  }
  for (const Part& p : res)
    if (p.b < p.e) out->push_back(piece.substr(p.b, p.e - p.b));
}

void PreTokenizer::split(std::string_view text, std::deque<std::string>* storage,
                         std::vector<std::string_view>* words) const {
  words->clear();
  if (text.empty()) return;
  words->push_back(text);
  std::vector<std::string_view> next;
  for (const Step& step : steps_) {
    if (step.byte_level && step.add_prefix_space) {
      for (auto& w : *words) {
        if (w.empty() || w[0] != ' ') w = storage->emplace_back(" " + std::string(w));
      }
    }
    if (!step.regex) continue;  // ByteLevel without regex: the byte mapping happens in the BPE model
    next.clear();
    for (std::string_view w : *words) apply_split(step, w, &next);
    words->swap(next);
  }
}

}  // namespace r1kit
