#include "distill/dedup.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "core/hash.h"
#include "rewards/text_util.h"

namespace r1kit::distill {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// The units of a normalised text: words (split at single spaces) or code points (spaces skipped).
std::vector<std::string_view> units(std::string_view s, bool words) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    if (words) {
      size_t end = s.find(' ', i);
      if (end == std::string_view::npos) end = s.size();
      if (end > i) out.push_back(s.substr(i, end - i));
      i = end + 1;
    } else {
      const size_t start = i;
      rewards::next_code_point(s, i);
      if (s[start] != ' ') out.push_back(s.substr(start, i - start));
    }
  }
  return out;
}

}  // namespace

void validate_dedup_options(const DedupOptions& o, const std::string& where) {
  R1_CHECK(o.threshold > 0 && o.threshold <= 1, where, ": threshold must be in (0, 1], got ", o.threshold);
  R1_CHECK(o.unit == "words" || o.unit == "chars", where, ": unit must be words or chars, got '", o.unit, "'");
  R1_CHECK(o.shingle >= 1, where, ": shingle must be >= 1, got ", o.shingle);
  R1_CHECK(o.num_perm >= 1 && o.bands >= 1 && o.num_perm % o.bands == 0, where,
           ": num_perm must be a positive multiple of bands, got num_perm ", o.num_perm, " and bands ", o.bands);
}

std::string normalize_for_dedup(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

std::vector<uint64_t> shingle_hashes(std::string_view text, const DedupOptions& o) {
  const std::string norm = normalize_for_dedup(text);
  const std::vector<std::string_view> u = units(norm, o.unit == "words");
  std::vector<uint64_t> out;
  const size_t k = static_cast<size_t>(o.shingle);
  if (u.size() <= k) {
    uint64_t h = kFnv1aOffset;
    for (auto w : u) h = fnv1a("\x1f", fnv1a(w, h));
    out.push_back(h);
    return out;
  }
  out.reserve(u.size() - k + 1);
  for (size_t i = 0; i + k <= u.size(); ++i) {
    uint64_t h = kFnv1aOffset;
    for (size_t j = i; j < i + k; ++j) h = fnv1a("\x1f", fnv1a(u[j], h));  // unit separator: "ab c" != "a bc"
    out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double shingle_jaccard(std::string_view a, std::string_view b, const DedupOptions& o) {
  const auto sa = shingle_hashes(a, o), sb = shingle_hashes(b, o);
  std::vector<uint64_t> inter;
  std::set_intersection(sa.begin(), sa.end(), sb.begin(), sb.end(), std::back_inserter(inter));
  const double uni = static_cast<double>(sa.size() + sb.size() - inter.size());
  return uni == 0 ? 1.0 : inter.size() / uni;
}

DedupIndex::DedupIndex(DedupOptions options) : options_(std::move(options)) {
  validate_dedup_options(options_);
  for (int i = 0; i < options_.num_perm; ++i) perm_seeds_.push_back(splitmix64(options_.seed * 0x100000001B3ULL + i));
}

std::vector<uint64_t> DedupIndex::signature(std::string_view text) const {
  const std::vector<uint64_t> shingles = shingle_hashes(text, options_);
  std::vector<uint64_t> sig(perm_seeds_.size(), std::numeric_limits<uint64_t>::max());
  // Permutation i is approximated by the hash h_i(x) = splitmix64(x ^ seed_i), as usual for MinHash.
  for (uint64_t s : shingles)
    for (size_t i = 0; i < sig.size(); ++i) sig[i] = std::min(sig[i], splitmix64(s ^ perm_seeds_[i]));
  return sig;
}

double DedupIndex::estimated_jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  R1_CHECK(a.size() == b.size() && !a.empty(), "estimated_jaccard: signatures of different lengths");
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / a.size();
}

uint64_t DedupIndex::exact_key(std::string_view normalised) {
  return splitmix64(fnv1a(normalised) ^ (static_cast<uint64_t>(normalised.size()) << 1));
}

std::vector<uint64_t> DedupIndex::band_keys(const std::vector<uint64_t>& sig) const {
  const int rows = options_.num_perm / options_.bands;
  std::vector<uint64_t> keys;
  for (int b = 0; b < options_.bands; ++b) {
    uint64_t h = splitmix64(static_cast<uint64_t>(b) + 0x51ED27ULL);
    for (int r = 0; r < rows; ++r) h = splitmix64(h ^ sig[b * rows + r]);
    keys.push_back(h);
  }
  return keys;
}

DedupIndex::Verdict DedupIndex::check(std::string_view text) const {
  if (options_.exact && exact_.count(exact_key(normalize_for_dedup(text)))) return Verdict::kExactDuplicate;
  if (!options_.near || signatures_.empty()) return Verdict::kUnique;
  const std::vector<uint64_t> sig = signature(text);
  std::unordered_set<int64_t> seen;
  for (uint64_t key : band_keys(sig)) {
    auto it = buckets_.find(key);
    if (it == buckets_.end()) continue;
    for (int64_t idx : it->second) {
      if (!seen.insert(idx).second) continue;
      if (estimated_jaccard(sig, signatures_[idx]) >= options_.threshold) return Verdict::kNearDuplicate;
    }
  }
  return Verdict::kUnique;
}

void DedupIndex::add(std::string_view text) {
  if (options_.exact) exact_.insert(exact_key(normalize_for_dedup(text)));
  if (!options_.near) return;
  const int64_t idx = static_cast<int64_t>(signatures_.size());
  signatures_.push_back(signature(text));
  for (uint64_t key : band_keys(signatures_.back())) buckets_[key].push_back(idx);
}

DedupIndex::Verdict DedupIndex::check_and_add(std::string_view text) {
  const Verdict v = check(text);
  if (v == Verdict::kUnique) add(text);
  return v;
}

const char* verdict_name(DedupIndex::Verdict v) {
  switch (v) {
    case DedupIndex::Verdict::kUnique: return "unique";
    case DedupIndex::Verdict::kExactDuplicate: return "exact_duplicate";
    case DedupIndex::Verdict::kNearDuplicate: return "near_duplicate";
  }
  return "?";
}

}  // namespace r1kit::distill
