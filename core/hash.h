// Small non-cryptographic hashes shared by seeding (rollout/sampler) and deduplication (distill/dedup).
#pragma once
#include <cstdint>

namespace r1kit {

// SplitMix64 finaliser: a well-mixed 64-bit bijection (seed derivation, MinHash permutations).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace r1kit
