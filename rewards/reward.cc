#include "rewards/reward.h"

#include "core/check.h"
#include "core/thread_pool.h"

namespace r1kit::rewards {

RewardOutput Reward::score_one(const RewardInput&) const {
  R1_FAIL("this reward scores batches only (score_batch)");
}

std::vector<RewardOutput> Reward::score_batch(const std::vector<RewardInput>& inputs, ThreadPool* pool) const {
  std::vector<RewardOutput> out(inputs.size());
  if (pool == nullptr || inputs.size() < 2) {
    for (std::size_t i = 0; i < inputs.size(); ++i) out[i] = score_one(inputs[i]);
  } else {
    parallel_for(*pool, inputs.size(), [&](std::size_t i) { out[i] = score_one(inputs[i]); });
  }
  return out;
}

}  // namespace r1kit::rewards
