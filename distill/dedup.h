// Exact and near-duplicate detection for generated training data.
//
// Exact: a 64-bit hash of the normalised text (ASCII lower-cased, whitespace runs collapsed to one
// space, trimmed), with the text length as a second key.
// Near: MinHash over shingles (k consecutive words, or k consecutive code points) with LSH banding
// (bands x rows = num_perm): texts sharing a band bucket are candidates, and a candidate counts as
// a near duplicate when the fraction of equal signature entries (an unbiased estimate of the
// Jaccard similarity of the shingle sets) is >= threshold. Texts with fewer than k units are one
// shingle. Deterministic: signatures depend only on the text and `seed`.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace r1kit::distill {

struct DedupOptions {
  bool exact = true;           // drop exact duplicates (after normalisation)
  bool near = true;            // drop near duplicates (MinHash)
  double threshold = 0.8;      // estimated Jaccard similarity at or above which texts are near duplicates
  std::string unit = "words";  // shingle unit: "words" or "chars" (code points; for text without spaces)
  int shingle = 5;             // units per shingle (k)
  int num_perm = 128;          // MinHash permutations (signature length)
  int bands = 32;              // LSH bands; num_perm must be a multiple of it
  uint64_t seed = 1;           // of the hash family
};

// Throws Error (naming `where`) for bad values.
void validate_dedup_options(const DedupOptions& o, const std::string& where = "dedup");

// The normalised text that exact duplicates share.
std::string normalize_for_dedup(std::string_view text);
// The set of shingle hashes of a text (sorted, unique).
std::vector<uint64_t> shingle_hashes(std::string_view text, const DedupOptions& o);
// Exact Jaccard similarity of two texts' shingle sets (for tests and diagnostics).
double shingle_jaccard(std::string_view a, std::string_view b, const DedupOptions& o);

class DedupIndex {
 public:
  enum class Verdict { kUnique, kExactDuplicate, kNearDuplicate };

  explicit DedupIndex(DedupOptions options = {});
  const DedupOptions& options() const { return options_; }

  // The verdict for `text` against every text added so far (kUnique when both checks are off).
  Verdict check(std::string_view text) const;
  // Adds `text` to the index (whatever its verdict).
  void add(std::string_view text);
  // check() then add() when unique.
  Verdict check_and_add(std::string_view text);
  int64_t size() const { return static_cast<int64_t>(signatures_.size()); }

  std::vector<uint64_t> signature(std::string_view text) const;
  // Fraction of equal entries of two signatures.
  static double estimated_jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

 private:
  static uint64_t exact_key(std::string_view normalised);
  std::vector<uint64_t> band_keys(const std::vector<uint64_t>& sig) const;

  DedupOptions options_;
  std::vector<uint64_t> perm_seeds_;
  std::unordered_set<uint64_t> exact_;
  std::vector<std::vector<uint64_t>> signatures_;
  std::unordered_map<uint64_t, std::vector<int64_t>> buckets_;  // band key -> indices into signatures_
};

const char* verdict_name(DedupIndex::Verdict v);

}  // namespace r1kit::distill
