#include "grpo/prompt_source.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>

#include "core/check.h"

namespace r1kit::grpo {

PromptSource shuffled_records(std::vector<json> records, uint64_t seed) {
  R1_CHECK(!records.empty(), "prompt source: no records");
  struct State {
    std::vector<json> records;
    uint64_t seed;
    std::mutex mu;
    std::map<int64_t, std::vector<int64_t>> orders;  // epoch -> permutation (a few cached)
  };
  auto st = std::make_shared<State>();
  st->records = std::move(records);
  st->seed = seed;
  return [st](int64_t first, int64_t n) {
    R1_CHECK(first >= 0 && n >= 0, "prompt source: bad range ", first, " + ", n);
    std::lock_guard<std::mutex> lock(st->mu);
    const int64_t size = static_cast<int64_t>(st->records.size());
    std::vector<json> out;
    for (int64_t p = first; p < first + n; ++p) {
      const int64_t epoch = p / size;
      auto it = st->orders.find(epoch);
      if (it == st->orders.end()) {
        std::vector<int64_t> order(size);
        std::iota(order.begin(), order.end(), 0);
        std::mt19937_64 rng(st->seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1);
        std::shuffle(order.begin(), order.end(), rng);
        if (st->orders.size() > 4) st->orders.erase(st->orders.begin());
        it = st->orders.emplace(epoch, std::move(order)).first;
      }
      out.push_back(st->records[it->second[p % size]]);
    }
    return out;
  };
}

}  // namespace r1kit::grpo
