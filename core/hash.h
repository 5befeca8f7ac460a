// Small non-cryptographic hashes shared by seeding (rollout/sampler, datagen), deduplication
// (distill/dedup) and provenance (r1kit distill's input fingerprints).
#pragma once
#include <cstdint>
#include <string_view>

namespace r1kit {

// SplitMix64 finaliser: a well-mixed 64-bit bijection (seed derivation, MinHash permutations).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// FNV-1a, 64-bit: the bytes of `s` hashed on from `h` (chain calls to hash several pieces).
inline constexpr uint64_t kFnv1aOffset = 1469598103934665603ULL;
inline uint64_t fnv1a(std::string_view s, uint64_t h = kFnv1aOffset) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace r1kit
