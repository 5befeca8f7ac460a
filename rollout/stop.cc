#include "rollout/stop.h"

#include <algorithm>

#include "core/check.h"

namespace r1kit {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, kReplacement) == 0;
}

// Length of `text` without trailing U+FFFD characters (the part a later token cannot rewrite).
size_t stable_length(const std::string& text) {
  size_t n = text.size();
  while (n >= 3 && text.compare(n - 3, 3, kReplacement) == 0) n -= 3;
  return n;
}

}  // namespace

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (const auto& s : stops_) {
    R1_CHECK(!s.empty(), "stop strings: an empty stop string would stop every generation");
    longest_ = std::max(longest_, s.size());
  }
}

size_t StopStringMatcher::find_in(const std::string& text, const std::vector<std::string>& stops, size_t from,
                                  size_t* which) {
  size_t best = std::string::npos;
  for (size_t i = 0; i < stops.size(); ++i) {
    size_t p = text.find(stops[i], from);
    if (p < best) {
      best = p;
      if (which) *which = i;
    }
  }
  return best;
}

size_t StopStringMatcher::find(const std::string& text) {
  if (stops_.empty()) return std::string::npos;
  // A match not seen before must end beyond the previous stable text, so it starts at most
  // longest_ - 1 bytes before it.
  size_t from = std::min(text.size(), stable_ > longest_ - 1 ? stable_ - (longest_ - 1) : size_t{0});
  size_t p = find_in(text, stops_, from, &matched_);
  stable_ = stable_length(text);
  return p;
}

const std::string& IncrementalDecoder::update(const std::vector<int64_t>& ids) {
  if (!decode_ || ids.size() <= read_) return text_;
  std::vector<int64_t> window(ids.begin() + prefix_, ids.end());
  std::string full = decode_(window);
  std::string known = decode_(std::vector<int64_t>(ids.begin() + prefix_, ids.begin() + read_));
  // The window's text extends the known text; hold back while it ends in an incomplete
  // character. A decoder that rewrites earlier text (none of ours does) gets a full re-decode.
  if (full.size() >= known.size() && full.compare(0, known.size(), known) == 0) {
    if (full.size() > known.size() && !ends_with_replacement(full)) {
      text_ += full.substr(known.size());
      prefix_ = read_;
      read_ = ids.size();
    }
  } else {
    text_ = decode_(ids);
    prefix_ = read_ = ids.size();
  }
  return text_;
}

}  // namespace r1kit
