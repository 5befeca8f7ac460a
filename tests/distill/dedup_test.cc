// Exact and MinHash near-duplicate detection: normalisation, shingles, the Jaccard estimate
// against the exact Jaccard similarity, LSH recall/precision on edited texts, determinism.
#include "distill/dedup.h"

#include <gtest/gtest.h>

#include <random>

#include "core/check.h"

using namespace r1kit;
using distill::DedupIndex;
using distill::DedupOptions;

namespace {

// A pseudo-random "reasoning trace" of n words from a small vocabulary.
std::string random_text(std::mt19937_64& rng, int n) {
  static const char* words[] = {"so", "the", "sum", "is", "then", "we", "add", "carry", "wait", "check", "answer",
                                "digit", "next", "value", "borrow", "minus", "plus", "equals", "step", "first"};
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + words[rng() % 20] + std::to_string(rng() % 7);
  return s;
}

// Replaces `edits` random words of `text` with a fresh word.
std::string edit_words(const std::string& text, std::mt19937_64& rng, int edits) {
  std::vector<std::string> w;
  size_t i = 0;
  while (i <= text.size()) {
    size_t e = text.find(' ', i);
    if (e == std::string::npos) e = text.size();
    w.push_back(text.substr(i, e - i));
    i = e + 1;
  }
  for (int k = 0; k < edits; ++k) w[rng() % w.size()] = "EDIT" + std::to_string(k);
  std::string out;
  for (size_t j = 0; j < w.size(); ++j) out += (j ? " " : "") + w[j];
  return out;
}

}  // namespace

TEST(Dedup, NormalisationAndShingles) {
  EXPECT_EQ(distill::normalize_for_dedup("  The  Answer\n\tIS 4 "), "the answer is 4");
  DedupOptions o;
  o.shingle = 2;
  // "a b c" has word 2-shingles {a b, b c}; "a b d" shares one of three distinct shingles.
  EXPECT_EQ(distill::shingle_hashes("a b c", o).size(), 2u);
  EXPECT_DOUBLE_EQ(distill::shingle_jaccard("a b c", "a b d", o), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(distill::shingle_jaccard("A  b c", "a b c", o), 1.0);
  // Units are separated: "ab c" and "a bc" differ.
  EXPECT_LT(distill::shingle_jaccard("ab c", "a bc", o), 1.0);
  // Short texts are one shingle; chars unit splits code points (here CJK, 3 bytes each).
  o.unit = "chars";
  o.shingle = 2;
  EXPECT_EQ(distill::shingle_hashes("\xe4\xbd\xa0\xe5\xa5\xbd\xe5\x90\x97", o).size(), 2u);
  EXPECT_EQ(distill::shingle_hashes("x", o).size(), 1u);
}

TEST(Dedup, MinHashEstimateTracksExactJaccard) {
  std::mt19937_64 rng(7);
  DedupOptions o;
  o.num_perm = 256;
  o.bands = 32;
  DedupIndex index(o);
  double max_err = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const std::string a = random_text(rng, 120);
    const std::string b = edit_words(a, rng, trial % 20);
    const double exact = distill::shingle_jaccard(a, b, o);
    const double est = DedupIndex::estimated_jaccard(index.signature(a), index.signature(b));
    max_err = std::max(max_err, std::abs(exact - est));
  }
  // Standard error of the estimate is sqrt(J(1-J)/256) <= 0.031; 40 trials stay within 4 sigma.
  EXPECT_LE(max_err, 0.125);
  std::printf("MinHash (256 permutations) vs exact Jaccard over 40 edited pairs: max |diff| %.3f\n", max_err);
}

TEST(Dedup, FindsExactAndNearDuplicatesAndKeepsDistinctTexts) {
  std::mt19937_64 rng(11);
  DedupIndex index;  // words, 5-shingles, threshold 0.8
  std::vector<std::string> originals;
  for (int i = 0; i < 50; ++i) {
    originals.push_back(random_text(rng, 200));
    EXPECT_EQ(index.check_and_add(originals.back()), DedupIndex::Verdict::kUnique) << i;
  }
  int near_found = 0, far_kept = 0, exact_found = 0;
  for (int i = 0; i < 50; ++i) {
    // Whitespace/case changes only: exact duplicate after normalisation.
    std::string shouted = originals[i];
    for (auto& c : shouted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    exact_found += index.check("  " + shouted + "\n") == DedupIndex::Verdict::kExactDuplicate;
    // One edited word in 200: Jaccard ~0.95 -> near duplicate.
    const std::string near = edit_words(originals[i], rng, 1);
    ASSERT_GE(distill::shingle_jaccard(near, originals[i], index.options()), 0.9);
    near_found += index.check(near) == DedupIndex::Verdict::kNearDuplicate;
    // A quarter of the words edited: Jaccard well below 0.8 -> kept.
    const std::string far = edit_words(originals[i], rng, 50);
    ASSERT_LE(distill::shingle_jaccard(far, originals[i], index.options()), 0.5);
    far_kept += index.check(far) == DedupIndex::Verdict::kUnique;
  }
  EXPECT_EQ(exact_found, 50);
  EXPECT_EQ(near_found, 50);
  EXPECT_EQ(far_kept, 50);
  std::printf("dedup: exact %d/50, near (1 word in 200 edited) %d/50, distinct (50 edited) kept %d/50\n", exact_found,
              near_found, far_kept);
}

TEST(Dedup, DeterministicAndSwitchable) {
  DedupIndex a, b;
  EXPECT_EQ(a.signature("some text to hash here and there"), b.signature("some text to hash here and there"));
  DedupOptions off;
  off.exact = false;
  off.near = false;
  DedupIndex none(off);
  none.add("x y z");
  EXPECT_EQ(none.check("x y z"), DedupIndex::Verdict::kUnique);
  DedupOptions only_exact;
  only_exact.near = false;
  DedupIndex e(only_exact);
  e.add("the same words in a row here");
  EXPECT_EQ(e.check("the same words in a row here"), DedupIndex::Verdict::kExactDuplicate);
  EXPECT_EQ(e.check("the same words in a row there"), DedupIndex::Verdict::kUnique);
  DedupOptions bad;
  bad.num_perm = 100;
  bad.bands = 32;
  EXPECT_THROW(DedupIndex{bad}, Error);
}
